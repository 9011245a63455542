#pragma once
// ICE candidates (RFC 8445 §5.1) and their SDP form (RFC 8839 §5.1): parse, format, priority
// and foundation. Only UDP candidates exist here: rtcat speaks ICE over UDP only, so TCP
// candidates (RFC 6544) are refused by the parser with a recognisable message.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/result.hpp"
#include "core/net/address.hpp"

namespace rtcat::ice {

enum class CandidateType { Host, ServerReflexive, PeerReflexive, Relay };
std::string_view candidate_type_name(CandidateType t); // "host", "srflx", "prflx", "relay"

struct Candidate {
    std::string foundation;
    std::uint32_t component = 1;
    std::uint32_t priority = 0;
    net::SocketAddr address;
    CandidateType type = CandidateType::Host;
    std::optional<net::SocketAddr> related; // raddr/rport (informational, RFC 8839 §5.1)
    // Local candidates: the socket address they are sent from; for a relayed candidate the
    // relayed address itself (RFC 8445 §5.1.1.2). Remote candidates: equal to `address`.
    net::SocketAddr base;
};

// RFC 8445 §5.1.2.2 type preferences (the recommended values of §5.1.2.2).
inline constexpr std::uint32_t kTypePreferenceHost = 126;
inline constexpr std::uint32_t kTypePreferencePeerReflexive = 110;
inline constexpr std::uint32_t kTypePreferenceServerReflexive = 100;
inline constexpr std::uint32_t kTypePreferenceRelay = 0;
std::uint32_t type_preference(CandidateType t);

// RFC 8445 §5.1.2.1: (2^24)*type pref + (2^8)*local pref + (256 - component).
// local_preference is 0..65535, component 1..256.
std::uint32_t compute_priority(CandidateType type, std::uint32_t local_preference,
                               std::uint32_t component);

// RFC 8445 §5.1.1.3: candidates share a foundation when they have the same type, base IP
// address, STUN/TURN server IP address and transport. The foundation is a stable hash of
// those (decimal digits: a valid ice-char string of at most 10 characters).
std::string compute_foundation(CandidateType type, const net::IpAddr& base_ip,
                               const std::optional<net::IpAddr>& server_ip);

// Parses an a=candidate value: "1 1 udp 2122260223 192.0.2.1 54321 typ host [raddr A rport P]
// [ext-name ext-value]...", with or without a leading "candidate:" (or "a=candidate:", and a
// trailing CRLF). The grammar is sdp::parse_candidate_line's (RFC 8839 §5.1, one
// implementation); its errors start with "candidate: ". On top of it ICE refuses what it cannot
// use: TCP, host names, priority 0. Extensions (generation, network-id, ufrag, ...) are
// skipped. Errors a caller may want to tell apart (the messages start with these words):
//   "hostname candidate (mDNS) not resolvable: <name>"  the address is an FQDN / .local name
//   "unsupported transport tcp"                          RFC 6544 TCP candidates
base::Result<Candidate> parse_candidate(std::string_view sdp_value);

// The a=candidate value without the "candidate:" prefix (sdp::format_candidate_line). raddr/
// rport are written when `related` is set.
std::string format_candidate(const Candidate& c);

} // namespace rtcat::ice
