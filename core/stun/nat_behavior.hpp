#pragma once
// NAT behaviour vocabulary (RFC 4787 terms, discovered per RFC 5780) and the verdict logic
// that turns observations into advice. Pure functions: no I/O, no time.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/net/address.hpp"

namespace rtcat::stun {

enum class Mapping {
    Unknown,
    NoNat,                   // the mapped address is one of ours
    EndpointIndependent,     // RFC 4787 §4.1 EIM
    AddressDependent,        // ADM
    AddressAndPortDependent, // APDM
    DependentUnspecified,    // ADM or APDM: differs per server, couldn't tell which
};

enum class Filtering { Unknown, EndpointIndependent, AddressDependent, AddressAndPortDependent };

std::string_view mapping_name(Mapping m);     // stable JSON strings
std::string_view filtering_name(Filtering f); // stable JSON strings

// One server's view of our primary socket.
struct MappingObservation {
    net::SocketAddr server;
    net::SocketAddr mapped;
};

// RFC 5780 §4.3: mapped addresses for test I (primary), II (alternate IP, primary port) and
// III (alternate IP and port).
Mapping classify_mapping_rfc5780(const net::SocketAddr& test1, const net::SocketAddr& test2,
                                 const net::SocketAddr& test3);

// Mapping from several servers: equal everywhere → EIM; servers on one IP but different ports
// seeing different mappings → APDM; differing only across IPs → ADM when a same-IP pair agreed,
// else "dependent (unspecified)". Needs two servers with different addresses, else Unknown.
Mapping classify_mapping_servers(const std::vector<MappingObservation>& obs);

// RFC 5780 §4.4 filtering tests: did CHANGE-REQUEST(ip+port) and CHANGE-REQUEST(port) get a
// response? (nullopt = test not done.)
Filtering classify_filtering(std::optional<bool> change_ip_port_answered,
                             std::optional<bool> change_port_answered);

enum class VerdictCode { Direct, NoNat, NeedsTurnForSymmetric, UdpBlocked, Unknown };
std::string_view verdict_code_name(VerdictCode c);

struct Verdict {
    VerdictCode code = VerdictCode::Unknown;
    std::string summary; // one line, plain words
    std::string detail;  // why
};

// How the servers answered the Binding requests, as far as the verdict cares.
enum class Reach {
    Mapped,      // at least one gave a mapped address
    RefusedOnly, // none did, but some answered with an error response: UDP gets through
    Silent,      // servers were probed and none answered
    NoServer,    // nothing was probed: no server resolved (to an address of the family)
};

Verdict make_verdict(Reach reach, Mapping mapping, Filtering filtering,
                     std::optional<bool> turn_works);

} // namespace rtcat::stun
