#include "core/ice/candidate.hpp"

#include <fmt/format.h>

#include "core/base/check.hpp"
#include "core/sdp/candidate_line.hpp"

namespace rtcat::ice {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

} // namespace

std::string_view candidate_type_name(CandidateType t) {
    switch (t) {
    case CandidateType::Host:
        return "host";
    case CandidateType::ServerReflexive:
        return "srflx";
    case CandidateType::PeerReflexive:
        return "prflx";
    case CandidateType::Relay:
        return "relay";
    }
    return "host";
}

std::uint32_t type_preference(CandidateType t) {
    switch (t) {
    case CandidateType::Host:
        return kTypePreferenceHost;
    case CandidateType::PeerReflexive:
        return kTypePreferencePeerReflexive;
    case CandidateType::ServerReflexive:
        return kTypePreferenceServerReflexive;
    case CandidateType::Relay:
        return kTypePreferenceRelay;
    }
    return 0;
}

std::uint32_t compute_priority(CandidateType type, std::uint32_t local_preference,
                               std::uint32_t component) {
    RTCAT_CHECK(local_preference <= 65535, "local preference is 16 bits");
    RTCAT_CHECK(component >= 1 && component <= 256, "component is 1..256");
    return (type_preference(type) << 24) + (local_preference << 8) + (256 - component);
}

std::string compute_foundation(CandidateType type, const net::IpAddr& base_ip,
                               const std::optional<net::IpAddr>& server_ip) {
    // FNV-1a over the inputs of RFC 8445 §5.1.1.3 (transport is always UDP here).
    std::uint32_t h = 2166136261u;
    auto mix = [&h](std::uint8_t b) {
        h ^= b;
        h *= 16777619u;
    };
    mix(static_cast<std::uint8_t>(type));
    mix(static_cast<std::uint8_t>(base_ip.family()));
    for (std::size_t i = 0; i < base_ip.size(); ++i)
        mix(base_ip.data()[i]);
    if (server_ip) {
        mix(static_cast<std::uint8_t>(server_ip->family()));
        for (std::size_t i = 0; i < server_ip->size(); ++i)
            mix(server_ip->data()[i]);
    }
    return std::to_string(h);
}

base::Result<Candidate> parse_candidate(std::string_view v) {
    // A whole SDP line is accepted too ("a=candidate:...\r\n"); the grammar itself (RFC 8839
    // §5.1) is core/sdp's, here only what ICE can use is checked on top of it.
    if (starts_with_ci(v, "a="))
        v.remove_prefix(2);
    if (starts_with_ci(v, "candidate:"))
        v.remove_prefix(10);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n'))
        v.remove_suffix(1);
    auto line = sdp::parse_candidate_line(v);
    if (!line)
        return line.error();
    // rtcat speaks ICE over UDP only (RFC 6544 TCP candidates are not gathered or paired).
    if (line->is_tcp())
        return base::make_error("unsupported transport tcp");
    // RFC 8445 §5.1.2.1: a priority is a positive integer.
    if (line->priority == 0)
        return base::make_error("bad priority '0' (RFC 8445 §5.1.2.1: it is positive)");
    auto ip = net::IpAddr::parse(line->address);
    if (!ip) // the grammar allows an FQDN; ICE here has nothing to resolve it with
        return base::make_error("hostname candidate (mDNS) not resolvable: {}", line->address);

    Candidate c;
    c.foundation = std::move(line->foundation);
    c.component = line->component;
    c.priority = line->priority;
    c.address = net::SocketAddr(*ip, line->port);
    c.base = c.address;
    switch (line->type) {
    case sdp::CandidateType::Host:
        c.type = CandidateType::Host;
        break;
    case sdp::CandidateType::ServerReflexive:
        c.type = CandidateType::ServerReflexive;
        break;
    case sdp::CandidateType::PeerReflexive:
        c.type = CandidateType::PeerReflexive;
        break;
    case sdp::CandidateType::Relay:
        c.type = CandidateType::Relay;
        break;
    }
    // The related address is informational only (RFC 8445 §5.1.3 does not use it for
    // connectivity); stacks put odd things there (host names, "0.0.0.0"), so one that is not
    // an IP literal is left out rather than refused.
    if (line->related_address && line->related_port) {
        if (auto rip = net::IpAddr::parse(*line->related_address))
            c.related = net::SocketAddr(*rip, *line->related_port);
    }
    return c;
}

std::string format_candidate(const Candidate& c) {
    sdp::CandidateLine line;
    line.foundation = c.foundation;
    line.component = static_cast<std::uint16_t>(c.component);
    line.transport = "udp";
    line.priority = c.priority;
    line.address = c.address.ip().to_string();
    line.port = c.address.port();
    switch (c.type) {
    case CandidateType::Host:
        line.type = sdp::CandidateType::Host;
        break;
    case CandidateType::ServerReflexive:
        line.type = sdp::CandidateType::ServerReflexive;
        break;
    case CandidateType::PeerReflexive:
        line.type = sdp::CandidateType::PeerReflexive;
        break;
    case CandidateType::Relay:
        line.type = sdp::CandidateType::Relay;
        break;
    }
    if (c.related) {
        line.related_address = c.related->ip().to_string();
        line.related_port = c.related->port();
    }
    return sdp::format_candidate_line(line);
}

} // namespace rtcat::ice
