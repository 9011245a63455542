#include "core/ice/candidate.hpp"

#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "core/base/check.hpp"

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

// RFC 8445 §5.1.1.3 / RFC 8839 §5.1: ice-char = ALPHA / DIGIT / "+" / "/".
bool is_ice_chars(std::string_view s) {
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (!ok)
            return false;
    }
    return true;
}

// RFC 8839 §5.1 byte-string for extension names and values: any byte but NUL, CR, LF (and
// the space that separates tokens).
bool is_byte_string(std::string_view s) {
    if (s.empty())
        return false;
    for (char c : s)
        if (c == '\0' || c == '\r' || c == '\n')
            return false;
    return true;
}

// A syntactically plausible DNS name (letters, digits, '-', '.', '_'), containing a letter.
bool looks_like_hostname(std::string_view s) {
    if (s.empty() || s.size() > 253)
        return false;
    bool letter = false;
    for (char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            letter = true;
        else if (!((c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return false;
    }
    return letter;
}

template <typename T> std::optional<T> parse_uint(std::string_view s, std::uint64_t max) {
    if (s.empty() || s.size() > 20)
        return std::nullopt;
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > max)
        return std::nullopt;
    return static_cast<T>(v);
}

std::vector<std::string_view> split_spaces(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
            ++i;
        std::size_t start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t')
            ++i;
        if (i > start)
            out.push_back(s.substr(start, i - start));
    }
    return out;
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
    if (starts_with_ci(v, "a="))
        v.remove_prefix(2);
    if (starts_with_ci(v, "candidate:"))
        v.remove_prefix(10);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n'))
        v.remove_suffix(1);
    auto t = split_spaces(v);
    if (t.size() < 8)
        return base::make_error("candidate has {} fields, needs at least 8", t.size());

    Candidate c;
    if (t[0].size() > 32 || !is_ice_chars(t[0]))
        return base::make_error("bad foundation '{}'", t[0]);
    c.foundation = std::string(t[0]);
    auto comp = parse_uint<std::uint32_t>(t[1], 256);
    if (!comp || *comp == 0)
        return base::make_error("bad component id '{}'", t[1]);
    c.component = *comp;
    if (!iequals(t[2], "udp")) {
        if (iequals(t[2], "tcp"))
            return base::make_error("unsupported transport tcp");
        return base::make_error("unsupported transport {}", t[2]);
    }
    auto prio = parse_uint<std::uint32_t>(t[3], 0xFFFFFFFFu);
    if (!prio || *prio == 0)
        return base::make_error("bad priority '{}'", t[3]);
    c.priority = *prio;
    auto port = parse_uint<std::uint16_t>(t[5], 65535);
    if (!port)
        return base::make_error("bad port '{}'", t[5]);
    auto ip = net::IpAddr::parse(t[4]);
    if (!ip) {
        if (looks_like_hostname(t[4]))
            return base::make_error("hostname candidate (mDNS) not resolvable: {}", t[4]);
        return base::make_error("bad connection address '{}'", t[4]);
    }
    c.address = net::SocketAddr(*ip, *port);
    c.base = c.address;
    if (!iequals(t[6], "typ"))
        return base::make_error("expected 'typ', got '{}'", t[6]);
    if (iequals(t[7], "host"))
        c.type = CandidateType::Host;
    else if (iequals(t[7], "srflx"))
        c.type = CandidateType::ServerReflexive;
    else if (iequals(t[7], "prflx"))
        c.type = CandidateType::PeerReflexive;
    else if (iequals(t[7], "relay"))
        c.type = CandidateType::Relay;
    else
        return base::make_error("unknown candidate type '{}'", t[7]);

    std::size_t i = 8;
    // RFC 8839 §5.1: rel-addr and rel-port come first, together.
    if (i < t.size() && iequals(t[i], "raddr")) {
        if (i + 3 >= t.size())
            return base::make_error("raddr without rport");
        if (!iequals(t[i + 2], "rport"))
            return base::make_error("raddr not followed by rport");
        auto rport = parse_uint<std::uint16_t>(t[i + 3], 65535);
        if (!rport)
            return base::make_error("bad rport '{}'", t[i + 3]);
        // The related address is informational only (RFC 8445 §5.1.3 does not use it for
        // connectivity); stacks put odd things there, so an unparsable one is left out.
        if (auto rip = net::IpAddr::parse(t[i + 1]))
            c.related = net::SocketAddr(*rip, *rport);
        i += 4;
    }
    for (; i < t.size(); i += 2) {
        if (i + 1 >= t.size())
            return base::make_error("extension '{}' without a value", t[i]);
        if (!is_byte_string(t[i]) || !is_byte_string(t[i + 1]))
            return base::make_error("bad extension '{}'", t[i]);
        if (iequals(t[i], "raddr") || iequals(t[i], "rport"))
            return base::make_error("misplaced {}", t[i]);
    }
    return c;
}

std::string format_candidate(const Candidate& c) {
    std::string out =
        fmt::format("{} {} udp {} {} {} typ {}", c.foundation, c.component, c.priority,
                    c.address.ip().to_string(), c.address.port(), candidate_type_name(c.type));
    if (c.related)
        out += fmt::format(" raddr {} rport {}", c.related->ip().to_string(), c.related->port());
    return out;
}

} // namespace rtcat::ice
