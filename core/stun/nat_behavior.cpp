#include "core/stun/nat_behavior.hpp"

namespace rtcat::stun {

std::string_view mapping_name(Mapping m) {
    switch (m) {
    case Mapping::Unknown:
        return "unknown";
    case Mapping::NoNat:
        return "no-nat";
    case Mapping::EndpointIndependent:
        return "endpoint-independent";
    case Mapping::AddressDependent:
        return "address-dependent";
    case Mapping::AddressAndPortDependent:
        return "address-and-port-dependent";
    case Mapping::DependentUnspecified:
        return "address-dependent-or-stricter";
    }
    return "unknown";
}

std::string_view filtering_name(Filtering f) {
    switch (f) {
    case Filtering::Unknown:
        return "unknown";
    case Filtering::EndpointIndependent:
        return "endpoint-independent";
    case Filtering::AddressDependent:
        return "address-dependent";
    case Filtering::AddressAndPortDependent:
        return "address-and-port-dependent";
    }
    return "unknown";
}

std::string_view verdict_code_name(VerdictCode c) {
    switch (c) {
    case VerdictCode::Direct:
        return "direct";
    case VerdictCode::NoNat:
        return "no-nat";
    case VerdictCode::NeedsTurnForSymmetric:
        return "needs-turn-for-symmetric-peers";
    case VerdictCode::UdpBlocked:
        return "udp-blocked";
    case VerdictCode::Unknown:
        return "unknown";
    }
    return "unknown";
}

Mapping classify_mapping_rfc5780(const net::SocketAddr& test1, const net::SocketAddr& test2,
                                 const net::SocketAddr& test3) {
    if (test1 == test2)
        return Mapping::EndpointIndependent;
    if (test2 == test3)
        return Mapping::AddressDependent;
    return Mapping::AddressAndPortDependent;
}

Mapping classify_mapping_servers(const std::vector<MappingObservation>& obs) {
    bool distinct_servers = false, all_equal = true;
    bool same_ip_pair = false, same_ip_pair_differs = false;
    for (std::size_t i = 0; i < obs.size(); ++i) {
        for (std::size_t j = i + 1; j < obs.size(); ++j) {
            if (obs[i].server == obs[j].server)
                continue;
            distinct_servers = true;
            bool equal = obs[i].mapped == obs[j].mapped;
            all_equal = all_equal && equal;
            if (obs[i].server.ip() == obs[j].server.ip()) {
                same_ip_pair = true;
                same_ip_pair_differs = same_ip_pair_differs || !equal;
            }
        }
    }
    if (!distinct_servers)
        return Mapping::Unknown;
    if (all_equal)
        return Mapping::EndpointIndependent;
    if (same_ip_pair_differs)
        return Mapping::AddressAndPortDependent;
    if (same_ip_pair)
        return Mapping::AddressDependent;
    return Mapping::DependentUnspecified;
}

Filtering classify_filtering(std::optional<bool> change_ip_port_answered,
                             std::optional<bool> change_port_answered) {
    if (!change_ip_port_answered)
        return Filtering::Unknown;
    if (*change_ip_port_answered)
        return Filtering::EndpointIndependent;
    if (!change_port_answered)
        return Filtering::Unknown;
    return *change_port_answered ? Filtering::AddressDependent : Filtering::AddressAndPortDependent;
}

Verdict make_verdict(Reach reach, Mapping mapping, Filtering filtering,
                     std::optional<bool> turn_works) {
    Verdict v;
    std::string turn_note;
    if (turn_works)
        turn_note = *turn_works ? " The TURN relay works, so a relayed fallback is available."
                                : " The TURN relay check failed: there is no relayed fallback.";
    if (reach == Reach::NoServer) {
        v.code = VerdictCode::Unknown;
        v.summary = "no STUN server was probed";
        v.detail = "No server resolved to an address (of the family in use): see the errors "
                   "above." +
                   turn_note;
        return v;
    }
    if (reach == Reach::RefusedOnly) {
        // An error response crossed the path both ways: UDP is not what failed.
        v.code = VerdictCode::Unknown;
        v.summary = "no STUN server gave a mapped address: the servers that answered sent errors";
        v.detail = "An error response came back, so UDP gets through, but no server accepted the "
                   "Binding request (see the errors above); probe a server that answers it to "
                   "learn the NAT's behaviour." +
                   turn_note;
        return v;
    }
    if (reach == Reach::Silent) {
        v.code = VerdictCode::UdpBlocked;
        v.summary = "no STUN server answered: UDP looks blocked; peers will need TURN over "
                    "TCP/TLS";
        v.detail = "No binding response arrived from any server. Check the addresses and any "
                   "firewall between here and the servers." +
                   turn_note;
        return v;
    }
    switch (mapping) {
    case Mapping::NoNat:
        v.code = VerdictCode::NoNat;
        v.summary = "direct connections likely: this host is not behind a NAT";
        v.detail = "The servers saw our own address. ";
        if (filtering == Filtering::AddressAndPortDependent ||
            filtering == Filtering::AddressDependent)
            v.detail += "A stateful firewall filters unsolicited traffic; ICE's simultaneous "
                        "checks still open it.";
        else
            v.detail += "Peers can reach this host directly.";
        break;
    case Mapping::EndpointIndependent:
        v.code = VerdictCode::Direct;
        v.summary = "direct connections likely: the NAT maps endpoint-independently";
        v.detail = "The NAT keeps one public address per local socket, so ICE hole punching "
                   "works with peers behind most NATs; only two symmetric NATs facing each "
                   "other need TURN.";
        if (filtering == Filtering::AddressAndPortDependent)
            v.detail += " Filtering is address-and-port-dependent: a peer behind a symmetric "
                        "NAT will need TURN.";
        break;
    case Mapping::AddressDependent:
    case Mapping::AddressAndPortDependent:
    case Mapping::DependentUnspecified:
        v.code = VerdictCode::NeedsTurnForSymmetric;
        v.summary = "needs TURN for peers behind symmetric NATs: this NAT is symmetric";
        v.detail = "The public address changes with the destination, so the address learned "
                   "from STUN is useless to other peers. Direct connections work only with "
                   "peers that have a public address or an endpoint-independent NAT; configure "
                   "a TURN server for the rest.";
        break;
    case Mapping::Unknown:
        v.code = VerdictCode::Unknown;
        v.summary = "NAT mapping behaviour unknown";
        v.detail = "Probe at least two servers with different addresses, or one that supports "
                   "RFC 5780 (OTHER-ADDRESS), to tell an endpoint-independent NAT from a "
                   "symmetric one.";
        break;
    }
    v.detail += turn_note;
    return v;
}

} // namespace rtcat::stun
