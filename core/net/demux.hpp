#pragma once
// RFC 7983 (updated by RFC 9443) demultiplexing of a datagram by its first byte.

#include <cstdint>

#include "core/base/bytes.hpp"

namespace rtcat::net {

enum class PacketKind { Stun, ZrtpOrOther, Dtls, TurnChannel, Rtp, Unknown };

inline PacketKind classify(base::ByteView d) {
    if (d.empty())
        return PacketKind::Unknown;
    std::uint8_t b = d[0];
    if (b <= 3)
        return PacketKind::Stun;
    if (b >= 16 && b <= 19)
        return PacketKind::ZrtpOrOther;
    if (b >= 20 && b <= 63)
        return PacketKind::Dtls;
    if (b >= 64 && b <= 79)
        return PacketKind::TurnChannel;
    if (b >= 128 && b <= 191)
        return PacketKind::Rtp;
    return PacketKind::Unknown;
}

} // namespace rtcat::net
