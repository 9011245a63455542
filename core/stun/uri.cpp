#include "core/stun/uri.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "core/net/address.hpp"

namespace rtcat::stun {

namespace {

bool is_reg_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

base::Result<std::string> percent_decode(std::string_view s, std::string_view what) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        unsigned v = 0;
        if (i + 2 >= s.size() ||
            std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr != s.data() + i + 3)
            return base::make_error("bad percent-escape in {}", what);
        out.push_back(static_cast<char>(v));
        i += 2;
    }
    return out;
}

base::Result<std::uint16_t> parse_port(std::string_view s) {
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || v == 0 || v > 65535)
        return base::make_error("bad port '{}' (expected 1-65535)", s);
    return static_cast<std::uint16_t>(v);
}

} // namespace

std::string_view scheme_name(Scheme s) {
    switch (s) {
    case Scheme::Stun:
        return "stun";
    case Scheme::Stuns:
        return "stuns";
    case Scheme::Turn:
        return "turn";
    case Scheme::Turns:
        return "turns";
    }
    return "?";
}

std::string ServerUri::host_port() const {
    bool v6 = host.find(':') != std::string::npos;
    return v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string ServerUri::to_string() const {
    std::string s = fmt::format("{}:{}", scheme_name(scheme), host_port());
    if (is_turn() && transport_given)
        s += transport == UriTransport::Udp ? "?transport=udp" : "?transport=tcp";
    return s;
}

base::Result<ServerUri> parse_server_uri(std::string_view text, Scheme default_scheme) {
    ServerUri uri;
    uri.scheme = default_scheme;
    std::string_view rest = text;
    if (rest.empty())
        return base::make_error("empty server address");
    for (char c : rest)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return base::make_error("server address '{}' contains whitespace or control characters",
                                    text);

    // Scheme: only the four known ones; anything else with "://" is an error, while a bare
    // "host:port" or IPv6 literal has no scheme.
    for (auto s : {Scheme::Stuns, Scheme::Stun, Scheme::Turns, Scheme::Turn}) {
        auto name = scheme_name(s);
        if (rest.size() > name.size() && rest.substr(0, name.size()) == name &&
            rest[name.size()] == ':') {
            uri.scheme = s;
            rest.remove_prefix(name.size() + 1);
            // RFC 7064 has no "//", but people paste "stun://host": accept it.
            if (rest.starts_with("//"))
                rest.remove_prefix(2);
            break;
        }
    }
    if (auto p = rest.find("://"); p != std::string_view::npos)
        return base::make_error("unsupported URI scheme '{}' (use stun:, turn:, or host:port)",
                                rest.substr(0, p));

    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        auto colon = userinfo.find(':');
        auto user = percent_decode(userinfo.substr(0, colon), "the user name");
        if (!user)
            return user.error();
        if (user->empty())
            return base::make_error("empty user name before '@' in '{}'", text);
        uri.username = *user;
        if (colon != std::string_view::npos) {
            auto pass = percent_decode(userinfo.substr(colon + 1), "the password");
            if (!pass)
                return pass.error();
            uri.password = *pass;
        }
    }

    std::string_view host, port;
    if (rest.starts_with("[")) {
        auto close = rest.find(']');
        if (close == std::string_view::npos)
            return base::make_error("unterminated '[' in '{}'", text);
        host = rest.substr(1, close - 1);
        auto after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':')
                return base::make_error("unexpected '{}' after ']' in '{}'", after, text);
            port = after.substr(1);
            if (port.empty())
                return base::make_error("missing port after ':' in '{}'", text);
        }
        if (!net::IpAddr::parse(host) || !net::IpAddr::parse(host)->is_v6())
            return base::make_error("'{}' is not an IPv6 address", host);
        uri.host_is_ip = true;
    } else if (std::count(rest.begin(), rest.end(), ':') > 1) {
        // A bare IPv6 literal cannot carry a port (it would be ambiguous).
        host = rest;
        if (!net::IpAddr::parse(host))
            return base::make_error(
                "'{}' is not a valid address (write IPv6 with a port as [addr]:port)", rest);
        uri.host_is_ip = true;
    } else {
        auto colon = rest.find(':');
        host = rest.substr(0, colon);
        if (colon != std::string_view::npos) {
            port = rest.substr(colon + 1);
            if (port.empty())
                return base::make_error("missing port after ':' in '{}'", text);
        }
        if (host.empty())
            return base::make_error("missing host in '{}'", text);
        for (char c : host)
            if (!is_reg_name_char(c))
                return base::make_error("invalid character '{}' in host name '{}'", c, host);
        if (host.front() == '.' || host.front() == '-' || host.find("..") != std::string_view::npos)
            return base::make_error("invalid host name '{}'", host);
        uri.host_is_ip = net::IpAddr::parse(host).has_value();
        // Something that looks like a dotted quad but does not parse is a typo, not a name.
        if (!uri.host_is_ip && host.find_first_not_of("0123456789.") == std::string_view::npos)
            return base::make_error("'{}' is not a valid IPv4 address", host);
    }
    uri.host = std::string(host);
    if (!port.empty()) {
        auto p = parse_port(port);
        if (!p)
            return base::make_error("{} in '{}'", p.error().message, text);
        uri.port = *p;
    } else {
        uri.port = uri.is_tls() ? kDefaultStunsPort : kDefaultStunPort;
    }

    if (!query.empty()) {
        if (!uri.is_turn())
            return base::make_error("'{}': stun: URIs take no query (RFC 7064)", text);
        if (!query.starts_with("transport="))
            return base::make_error("'{}': unknown query '{}' (only ?transport=udp|tcp)", text,
                                    query);
        auto t = query.substr(10);
        if (t == "udp")
            uri.transport = UriTransport::Udp;
        else if (t == "tcp")
            uri.transport = UriTransport::Tcp;
        else
            return base::make_error("'{}': unknown transport '{}' (udp or tcp)", text, t);
        uri.transport_given = true;
    }
    if (uri.username && !uri.is_turn())
        return base::make_error("'{}': credentials only make sense in a turn: URI", text);
    return uri;
}

} // namespace rtcat::stun
