#pragma once
// CRC-32 as in ITU-T V.42 / zlib / IEEE 802.3 (reflected polynomial 0xEDB88320, initial value
// and final XOR 0xFFFFFFFF). STUN's FINGERPRINT uses it (RFC 8489 §14.7), and so does the
// signaling token's checksum: it detects every error burst of up to 32 bits, so any one changed
// base64 character (6 bits within two bytes) is always caught, not just usually.

#include <cstdint>

#include "core/base/bytes.hpp"

namespace rtcat::base {

std::uint32_t crc32(ByteView data);

} // namespace rtcat::base
