#pragma once
// The RFC 8839 §5.1 candidate-attribute grammar, as a value:
//
//   candidate:<foundation> <component-id> <transport> <priority> <connection-address> <port>
//             typ <cand-type> [raddr <address> rport <port>] *(<extension-att-name> <value>)
//
// parse_candidate_line() accepts the attribute value with or without the "candidate:" prefix
// (browsers' RTCIceCandidate.candidate carries it, a=candidate values do not). Choices, checked
// against pion/ice's table of accepted/rejected strings:
// - transport is UDP or TCP (any case; kept as written); other transports are rejected;
// - the address is an IP literal or a host name ([A-Za-z0-9.-], e.g. mDNS "<uuid>.local");
// - raddr and rport come together; tcptype (RFC 6544) must be active/passive/so;
// - extensions are kept in order; control characters anywhere are rejected.
// Formatting writes the canonical form without the "candidate:" prefix.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/result.hpp"

namespace rtcat::sdp {

enum class CandidateType { Host, ServerReflexive, PeerReflexive, Relay };
std::string_view candidate_type_name(CandidateType t); // host, srflx, prflx, relay

struct CandidateLine {
    std::string foundation;
    std::uint16_t component = 1;   // 1..256
    std::string transport = "udp"; // "udp"/"UDP"/"tcp"/"TCP" as written
    std::uint32_t priority = 0;
    std::string address; // IP literal or FQDN
    std::uint16_t port = 0;
    CandidateType type = CandidateType::Host;
    std::optional<std::string> related_address; // raddr
    std::optional<std::uint16_t> related_port;  // rport
    std::optional<std::string> tcp_type;        // active / passive / so (RFC 6544 §4.5)
    std::vector<std::pair<std::string, std::string>> extensions; // generation, network-id, ...

    bool is_tcp() const;
    bool operator==(const CandidateLine&) const = default;
};

base::Result<CandidateLine> parse_candidate_line(std::string_view text);
// "<foundation> <component> <transport> <priority> <address> <port> typ <type> [raddr ...
// rport ...] [tcptype ...] [<ext> <value>]...": parse(format(c)) == c for every parsed c.
std::string format_candidate_line(const CandidateLine& c);

} // namespace rtcat::sdp
