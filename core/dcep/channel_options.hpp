#pragma once
// Data channel parameters (RFC 8831 §6.4; W3C RTCDataChannelInit).

#include <cstdint>
#include <optional>
#include <string>

namespace rtcat::dcep {

enum class Reliability { Reliable, MaxRetransmits, MaxLifetime };

struct ChannelOptions {
    std::string label;
    std::string protocol;
    bool ordered = true;
    Reliability reliability = Reliability::Reliable;
    std::uint32_t reliability_value = 0;        // retransmits, or lifetime in ms
    std::uint16_t priority = 256;               // RFC 8832 §5.1 ("normal")
    std::optional<std::uint16_t> negotiated_id; // negotiated out of band (no DCEP)

    bool operator==(const ChannelOptions&) const = default;
};

struct ChannelInfo {
    std::uint16_t id = 0;
    ChannelOptions options;
};

} // namespace rtcat::dcep
