#include "core/dcep/message.hpp"

#include <limits>

#include "core/base/check.hpp"

namespace rtcat::dcep {

std::uint8_t channel_type_of(const ChannelOptions& options) {
    std::uint8_t t = channel_type::kReliable;
    switch (options.reliability) {
    case Reliability::Reliable:
        t = channel_type::kReliable;
        break;
    case Reliability::MaxRetransmits:
        t = channel_type::kPartialReliableRexmit;
        break;
    case Reliability::MaxLifetime:
        t = channel_type::kPartialReliableTimed;
        break;
    }
    if (!options.ordered)
        t |= channel_type::kUnorderedBit;
    return t;
}

base::Result<Message> decode(base::ByteView in) {
    base::ByteReader r(in);
    std::uint8_t type = r.u8();
    if (r.failed())
        return base::make_error("empty DCEP message");
    if (type == kTypeAck) {
        // RFC 8832 §5.2: the ACK is the type byte alone.
        return Message{AckMessage{}};
    }
    if (type != kTypeOpen)
        return base::make_error("unknown DCEP message type 0x{:02x}", type);

    // RFC 8832 §5.1: type(1) channel type(1) priority(2) reliability(4) label len(2)
    // protocol len(2) label protocol.
    std::uint8_t ctype = r.u8();
    std::uint16_t priority = r.u16();
    std::uint32_t reliability = r.u32();
    std::uint16_t label_len = r.u16();
    std::uint16_t protocol_len = r.u16();
    auto label = r.bytes(label_len);
    auto protocol = r.bytes(protocol_len);
    if (r.failed())
        return base::make_error("truncated DATA_CHANNEL_OPEN");

    OpenMessage m;
    auto& o = m.options;
    o.ordered = (ctype & channel_type::kUnorderedBit) == 0;
    switch (ctype & static_cast<std::uint8_t>(~channel_type::kUnorderedBit)) {
    case channel_type::kReliable:
        o.reliability = Reliability::Reliable;
        o.reliability_value = 0;
        break;
    case channel_type::kPartialReliableRexmit:
        o.reliability = Reliability::MaxRetransmits;
        o.reliability_value = reliability;
        break;
    case channel_type::kPartialReliableTimed:
        o.reliability = Reliability::MaxLifetime;
        o.reliability_value = reliability;
        break;
    default:
        return base::make_error("unknown DCEP channel type 0x{:02x}", ctype);
    }
    o.priority = priority;
    o.label.assign(label.begin(), label.end());
    o.protocol.assign(protocol.begin(), protocol.end());
    return Message{std::move(m)};
}

base::Bytes encode_open(const ChannelOptions& options) {
    constexpr auto kMax = std::numeric_limits<std::uint16_t>::max();
    RTCAT_CHECK(options.label.size() <= kMax && options.protocol.size() <= kMax,
                "DCEP label/protocol longer than 65535 bytes");
    base::Bytes out;
    out.reserve(12 + options.label.size() + options.protocol.size());
    base::ByteWriter w(out);
    w.u8(kTypeOpen);
    w.u8(channel_type_of(options));
    w.u16(options.priority);
    w.u32(options.reliability == Reliability::Reliable ? 0 : options.reliability_value);
    w.u16(static_cast<std::uint16_t>(options.label.size()));
    w.u16(static_cast<std::uint16_t>(options.protocol.size()));
    w.bytes(options.label);
    w.bytes(options.protocol);
    return out;
}

base::Bytes encode_ack() {
    return base::Bytes{kTypeAck};
}

} // namespace rtcat::dcep
