#include "core/sdp/candidate_line.hpp"

#include <charconv>

#include "core/base/printable.hpp"
#include "core/net/address.hpp"

namespace rtcat::sdp {
namespace {

template <typename T> std::optional<T> to_number(std::string_view s) {
    T v{};
    if (s.empty())
        return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size())
        return std::nullopt;
    return v;
}

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

// RFC 8839 §5.1: foundation = 1*32 ice-char; ice-char = ALPHA / DIGIT / "+" / "/".
bool valid_foundation(std::string_view s) {
    if (s.empty() || s.size() > 32)
        return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    return true;
}

// An IP literal or something shaped like a host name (RFC 8839 allows an FQDN; mDNS candidates
// use "<uuid>.local"). Related addresses are held to the same rule.
bool valid_address(std::string_view s) {
    if (s.empty() || s.size() > 255)
        return false;
    if (net::IpAddr::parse(s))
        return true;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    return true;
}

std::optional<CandidateType> parse_type(std::string_view s) {
    if (s == "host")
        return CandidateType::Host;
    if (s == "srflx")
        return CandidateType::ServerReflexive;
    if (s == "prflx")
        return CandidateType::PeerReflexive;
    if (s == "relay")
        return CandidateType::Relay;
    return std::nullopt;
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

bool CandidateLine::is_tcp() const {
    return iequals(transport, "tcp");
}

base::Result<CandidateLine> parse_candidate_line(std::string_view text) {
    if (text.size() > 1024)
        return base::Error{"candidate: longer than 1024 characters"};
    for (char c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return base::Error{"candidate: contains a control character"};
    if (text.substr(0, 10) == "candidate:")
        text.remove_prefix(10);
    std::vector<std::string_view> f;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && text[i] == ' ')
            ++i;
        std::size_t start = i;
        while (i < text.size() && text[i] != ' ')
            ++i;
        if (i > start)
            f.push_back(text.substr(start, i - start));
    }
    if (f.size() < 8)
        return base::Error{"candidate: needs <foundation> <component> <transport> <priority> "
                           "<address> <port> typ <type>"};
    CandidateLine c;
    if (!valid_foundation(f[0]))
        return base::make_error("candidate: invalid foundation '{}'", base::printable(f[0]));
    c.foundation = std::string(f[0]);
    auto comp = to_number<std::uint16_t>(f[1]);
    if (!comp || *comp < 1 || *comp > 256)
        return base::make_error("candidate: component '{}' is not a number 1-256",
                                base::printable(f[1]));
    c.component = *comp;
    if (!iequals(f[2], "udp") && !iequals(f[2], "tcp"))
        return base::make_error("candidate: unsupported transport '{}'", base::printable(f[2]));
    c.transport = std::string(f[2]);
    auto prio = to_number<std::uint32_t>(f[3]);
    if (!prio)
        return base::make_error("candidate: priority '{}' is not a 32-bit number",
                                base::printable(f[3]));
    c.priority = *prio;
    if (!valid_address(f[4]))
        return base::make_error("candidate: invalid address '{}'", base::printable(f[4]));
    c.address = std::string(f[4]);
    auto port = to_number<std::uint16_t>(f[5]);
    if (!port)
        return base::make_error("candidate: port '{}' is not a number 0-65535",
                                base::printable(f[5]));
    c.port = *port;
    if (f[6] != "typ")
        return base::Error{"candidate: expected 'typ' after the port"};
    auto type = parse_type(f[7]);
    if (!type)
        return base::make_error("candidate: unknown candidate type '{}'", base::printable(f[7]));
    c.type = *type;

    std::size_t k = 8;
    if (k < f.size() && f[k] == "raddr") {
        if (k + 1 >= f.size() || !valid_address(f[k + 1]))
            return base::Error{"candidate: raddr needs an address"};
        c.related_address = std::string(f[k + 1]);
        k += 2;
        if (k + 1 >= f.size() || f[k] != "rport")
            return base::Error{"candidate: raddr without rport"};
        auto rp = to_number<std::uint16_t>(f[k + 1]);
        if (!rp)
            return base::make_error("candidate: rport '{}' is not a number 0-65535",
                                    base::printable(f[k + 1]));
        c.related_port = *rp;
        k += 2;
    }
    for (; k < f.size(); k += 2) {
        if (k + 1 >= f.size())
            return base::make_error("candidate: extension '{}' has no value",
                                    base::printable(f[k]));
        if (f[k] == "raddr" || f[k] == "rport")
            return base::make_error("candidate: misplaced or repeated {}", f[k]);
        if (f[k] == "tcptype") {
            if (c.tcp_type)
                return base::Error{"candidate: repeated tcptype"};
            if (f[k + 1] != "active" && f[k + 1] != "passive" && f[k + 1] != "so")
                return base::make_error("candidate: invalid tcptype '{}'",
                                        base::printable(f[k + 1]));
            c.tcp_type = std::string(f[k + 1]);
            continue;
        }
        c.extensions.emplace_back(std::string(f[k]), std::string(f[k + 1]));
    }
    return c;
}

std::string format_candidate_line(const CandidateLine& c) {
    std::string out = c.foundation + " " + std::to_string(c.component) + " " + c.transport + " " +
                      std::to_string(c.priority) + " " + c.address + " " + std::to_string(c.port) +
                      " typ " + std::string(candidate_type_name(c.type));
    if (c.related_address && c.related_port)
        out += " raddr " + *c.related_address + " rport " + std::to_string(*c.related_port);
    if (c.tcp_type)
        out += " tcptype " + *c.tcp_type;
    for (const auto& [k, v] : c.extensions)
        out += " " + k + " " + v;
    return out;
}

} // namespace rtcat::sdp
