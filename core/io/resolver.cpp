#include "core/io/resolver.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <string>

#include <netdb.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include "core/io/sockaddr.hpp"
#include "core/io/sys_error.hpp"

namespace rtcat::io {

namespace {

bool accepts(FamilyFilter filter, net::Family family) {
    switch (filter) {
    case FamilyFilter::Any:
        return true;
    case FamilyFilter::V4Only:
        return family == net::Family::V4;
    case FamilyFilter::V6Only:
        return family == net::Family::V6;
    }
    return false;
}

std::string_view filter_name(FamilyFilter filter) {
    return filter == FamilyFilter::V4Only ? "IPv4" : "IPv6";
}

// `host` is `label` or a name under it, case-insensitively; `label` is lower case.
bool ends_with_label(std::string_view host, std::string_view label) {
    if (host.ends_with('.'))
        host.remove_suffix(1);
    if (host.size() < label.size())
        return false;
    std::string_view tail = host.substr(host.size() - label.size());
    const auto same = [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == b;
    };
    if (!std::equal(tail.begin(), tail.end(), label.begin(), label.end(), same))
        return false;
    return host.size() == label.size() || host[host.size() - label.size() - 1] == '.';
}

// Rejects what no resolver could answer, before it costs a DNS round trip (RFC 1035 §2.3.4
// lengths; names with spaces, controls or slashes are typing mistakes, not hosts).
bool plausible_name(std::string_view host) {
    if (host.empty() || host.size() > 254 || (host.size() == 254 && !host.ends_with('.')))
        return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i < host.size(); ++i) {
        const auto c = static_cast<unsigned char>(host[i]);
        if (c <= ' ' || c == 0x7f || c == '/' || c == '\\' || c == '[' || c == ']')
            return false;
        if (c == '.') {
            // Only the root's (trailing) dot may follow an empty label.
            if (label == 0)
                return false;
            label = 0;
        } else if (++label > 63) {
            return false;
        }
    }
    return true;
}

} // namespace

base::Result<std::vector<net::SocketAddr>> resolve(std::string_view host, std::uint16_t port,
                                                   FamilyFilter filter) {
    const std::string_view original = host;
    const bool bracketed = host.starts_with('[');
    if (bracketed) {
        if (!host.ends_with(']') || host.size() < 3)
            return base::make_error("invalid host '{}': unbalanced brackets", original);
        host = host.substr(1, host.size() - 2);
    }

    if (auto ip = net::IpAddr::parse(host)) {
        if (bracketed && !ip->is_v6())
            return base::make_error("invalid host '{}': brackets are for IPv6 addresses", original);
        if (!accepts(filter, ip->family()))
            return base::make_error("host '{}' is not an {} address", original,
                                    filter_name(filter));
        return std::vector<net::SocketAddr>{net::SocketAddr(*ip, port)};
    }
    if (bracketed)
        return base::make_error("invalid host '{}': not an IPv6 address in brackets", original);
    if (!plausible_name(host))
        return base::make_error("invalid host name '{}'", original);

    // RFC 6761 §6.3: "localhost" and names under it are loopback, answered without DNS (and
    // without depending on /etc/hosts listing ::1). IPv4 first: every stack has it.
    if (ends_with_label(host, "localhost")) {
        std::vector<net::SocketAddr> out;
        if (accepts(filter, net::Family::V4))
            out.emplace_back(net::IpAddr::v4(127, 0, 0, 1), port);
        if (accepts(filter, net::Family::V6)) {
            std::array<std::uint8_t, 16> loopback{};
            loopback[15] = 1;
            out.emplace_back(net::IpAddr::v6(loopback), port);
        }
        return out;
    }
    // RFC 6761 §6.4: resolver libraries should answer ".invalid" negatively at once; glibc
    // would ask the DNS servers, and stall when none is reachable.
    if (ends_with_label(host, "invalid"))
        return base::make_error("cannot resolve '{}': {}", original, ::gai_strerror(EAI_NONAME));

    addrinfo hints{};
    hints.ai_family = filter == FamilyFilter::V4Only   ? AF_INET
                      : filter == FamilyFilter::V6Only ? AF_INET6
                                                       : AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_protocol = IPPROTO_UDP;
    // No AI_ADDRCONFIG: it hides IPv6 (even ::1) when the only interface is lo, which is
    // exactly the network-namespace setup of the tests.
    hints.ai_flags = 0;
    addrinfo* list = nullptr;
    const std::string name(host);
    const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &list);
    if (rc != 0) {
        if (rc == EAI_SYSTEM)
            return base::make_error("cannot resolve '{}': {}", original, errno_text(errno));
        return base::make_error("cannot resolve '{}': {}", original, ::gai_strerror(rc));
    }
    std::vector<net::SocketAddr> out;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        auto addr = from_sockaddr(ai->ai_addr, ai->ai_addrlen);
        if (!addr || !accepts(filter, addr->family()))
            continue;
        addr->set_port(port);
        if (std::find(out.begin(), out.end(), *addr) == out.end())
            out.push_back(*addr);
    }
    ::freeaddrinfo(list);
    if (out.empty()) {
        return base::make_error(
            "cannot resolve '{}': no {}address", original,
            filter == FamilyFilter::Any ? std::string() : fmt::format("{} ", filter_name(filter)));
    }
    return out;
}

} // namespace rtcat::io
