#pragma once
// Data Channel Establishment Protocol messages (RFC 8832 §5) and the WebRTC PPIDs (RFC 8831 §8).

#include <cstdint>
#include <string>
#include <variant>

#include "core/base/bytes.hpp"
#include "core/base/result.hpp"
#include "core/dcep/channel_options.hpp"

namespace rtcat::dcep {

// RFC 8831 §8 / RFC 8832 §8.1 payload protocol identifiers.
namespace ppid {
inline constexpr std::uint32_t kDcep = 50;
inline constexpr std::uint32_t kString = 51;
inline constexpr std::uint32_t kBinaryPartial = 52; // deprecated
inline constexpr std::uint32_t kBinary = 53;
inline constexpr std::uint32_t kStringPartial = 54; // deprecated
inline constexpr std::uint32_t kStringEmpty = 56;
inline constexpr std::uint32_t kBinaryEmpty = 57;
} // namespace ppid

// RFC 8832 §8.2.1 message types.
inline constexpr std::uint8_t kTypeAck = 0x02;
inline constexpr std::uint8_t kTypeOpen = 0x03;

// RFC 8832 §5.1 channel types: bit 7 = unordered; low bits = reliability.
namespace channel_type {
inline constexpr std::uint8_t kReliable = 0x00;
inline constexpr std::uint8_t kPartialReliableRexmit = 0x01;
inline constexpr std::uint8_t kPartialReliableTimed = 0x02;
inline constexpr std::uint8_t kUnorderedBit = 0x80;
} // namespace channel_type

// DATA_CHANNEL_OPEN. For Reliable channels the reliability parameter is ignored (RFC 8832
// §5.1) and decodes as 0. negotiated_id is never set by decode.
struct OpenMessage {
    ChannelOptions options;
};
struct AckMessage {};
using Message = std::variant<OpenMessage, AckMessage>;

// Parses one DCEP message (the payload of a PPID 50 message). Unknown message types, unknown
// channel types and truncated label/protocol are errors. Bytes after the protocol field are
// ignored (the RFC defines no extensions; lenient like browsers).
base::Result<Message> decode(base::ByteView in);

// Encodes DATA_CHANNEL_OPEN. Label and protocol longer than 65535 bytes are a programming error
// (DataChannels::open rejects them).
base::Bytes encode_open(const ChannelOptions& options);
base::Bytes encode_ack();

std::uint8_t channel_type_of(const ChannelOptions& options);

} // namespace rtcat::dcep
