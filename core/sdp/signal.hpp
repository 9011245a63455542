#pragma once
// The three forms in which rtcat reads and writes a session description (docs/DESIGN.md §4):
//
// Plain  — the SDP text, ended by one blank line (or end of input). The type (offer/answer) is
//          not in the text: the reader says which it expects.
// Json   — {"type":"offer","sdp":"v=0\r\n..."} on one line, what JSON.stringify(
//          pc.localDescription) prints in a browser. Keys in any order, extra keys ignored.
// Token  — "rtcat2:<base64url>" on one line, short enough for a terminal paste (< 400
//          characters for a data-channel session with 4 candidates; the checksum adds 5 or 6).
//          It carries only what a data-channel session needs; decoding rebuilds a full SDP
//          (make_description()).
//
// Token = "rtcat2:" base64url(payload | crc32), RFC 4648 §5 alphabet, no padding ('+', '/' and
// trailing '=' are tolerated on input). crc32 is the CRC-32 of core/base/crc32.hpp over the
// payload, 4 bytes least significant first (so payload|crc32 is one CRC codeword: any one
// changed character is always detected; a lost or added one but for a 2^-32 chance). A token
// whose checksum or base64 does not hold is reported as damaged ("copy it again"), apart from
// other decoding errors. "rtcat1:" tokens, printed by rtcat before the checksum, are the same
// payload without it and are still read; they are no longer written (older builds do not
// read "rtcat2:": give them --sdp-format json).
//
// Payload (all integers big-endian; "varint" = unsigned LEB128, at most 5 bytes;
// "str" = varint length + bytes):
//   u8   flags   bit0 answer | bits1-2 setup (0 actpass, 1 active, 2 passive)
//                | bit3 end-of-candidates | bit4 ice-lite | bit5 ice-options:trickle
//   str  ice-ufrag, str ice-pwd, str mid
//   u8   fingerprint count (1..4), each: u8 hash (1 sha-1, 2 sha-224, 3 sha-256, 4 sha-384,
//        5 sha-512) + the digest (length implied by the hash)
//   varint sctp-port, varint max-message-size
//   varint candidate count (<= 64), each:
//     u8   flags  bits0-1 type (0 host, 1 srflx, 2 prflx, 3 relay) | bit2 TCP
//                 | bit3 transport written upper-case | bits4-5 tcptype (0 none, 1 active,
//                 2 passive, 3 so) | bit6 has raddr/rport | bit7 foundation is a decimal number
//     foundation: varint if bit7, else str
//     varint component, u32 priority
//     addr: u8 kind (4: 4 bytes IPv4, 6: 16 bytes IPv6, 0: str host name) ; u16 port
//     [addr raddr ; u16 rport]            if bit6
//     varint extension count (<= 16), each: str name, str value
// The extensions generation, network-id, network-cost and ufrag are dropped: they are hints
// between browsers of one vendor and cost ~35 bytes per candidate; everything else is kept.
// Whatever the decoder refuses (counts over the limits above, a token over
// kMaxTokenSignalBytes, a transport in mixed case, which bit3 cannot carry) the encoder refuses
// too, so a description it cannot carry falls back to JSON instead of becoming a token the peer
// cannot read: decode_token(encode_token(m)) gives back m as far as the token carries it.

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/result.hpp"
#include "core/sdp/datachannel.hpp"

namespace rtcat::sdp {

struct SignalMessage {
    SdpType type = SdpType::Offer;
    std::string sdp;
    bool operator==(const SignalMessage&) const = default;
};

enum class SignalFormat { Plain, Json, Token };
std::string_view signal_format_name(SignalFormat f); // "plain", "json", "token"

inline constexpr std::string_view kTokenPrefix = "rtcat2:";       // written and read
inline constexpr std::string_view kLegacyTokenPrefix = "rtcat1:"; // read: no checksum
// Candidate extensions a token leaves out (see the layout above).
inline constexpr std::array<std::string_view, 4> kTokenDroppedExtensions = {
    "generation", "network-id", "network-cost", "ufrag"};
// A JSON-escaped SDP of kMaxSdpBytes stays below this unless it is mostly \u escapes.
inline constexpr std::size_t kMaxJsonSignalBytes = 2 * kMaxSdpBytes;
inline constexpr std::size_t kMaxTokenSignalBytes = 16 * 1024;

// Plain: the SDP (its last line terminated) and one blank line. Json: one line + "\n". Token:
// one line + "\n"; fails when the SDP cannot be represented (media sections other than one data
// channel, unparsable candidates, ...) so the caller can fall back to Json.
base::Result<std::string> encode_signal(const SignalMessage& msg, SignalFormat format);

// Streaming detection over everything buffered so far. Returns the number of bytes forming one
// complete message (leading whitespace included), or nullopt when more input is needed (or, at
// eof, when only whitespace is left). Plain SDP ends at a blank line or eof; JSON when the
// top-level object closes (strings and escapes tracked); a token at the newline or eof.
// Errors: unrecognized input, input over the size limits, JSON cut short by eof.
struct Framed {
    std::size_t consumed = 0;
    SignalFormat format = SignalFormat::Plain;
};
base::Result<std::optional<Framed>> frame_signal(std::string_view buffered, bool eof);

// Decodes one message (as framed above). Plain SDP needs `plain_type`; it is returned as given
// (whitespace around it trimmed, last line terminated) once it parses. JSON: the flat
// {"type":..,"sdp":..} object; type must be "offer" or "answer". Token: rebuilt into SDP text.
base::Result<SignalMessage> decode_signal(std::string_view one_message,
                                          std::optional<SdpType> plain_type);

// The token alone (no newline), and its inverse; exposed for tests and `rtcat` diagnostics.
// decode_token() reads both prefixes; a checked token that fails its checksum gives "the token
// is damaged (a character was changed, lost or added): copy it again".
base::Result<std::string> encode_token(const SignalMessage& msg);
base::Result<SignalMessage> decode_token(std::string_view token);

// JSON string body escaping as JSON.stringify does it (", \, control characters; non-ASCII
// passes through), and the inverse (all RFC 8259 escapes incl. surrogate pairs to UTF-8).
std::string json_escape(std::string_view s);
base::Result<std::string> json_unescape(std::string_view body);

} // namespace rtcat::sdp
