#include "core/io/sockaddr.hpp"

#include <array>
#include <cstring>

namespace rtcat::io {

namespace {

bool is_v4_mapped(const std::uint8_t* b) {
    for (int i = 0; i < 10; ++i)
        if (b[i] != 0)
            return false;
    return b[10] == 0xff && b[11] == 0xff;
}

} // namespace

socklen_t to_sockaddr(const net::SocketAddr& addr, sockaddr_storage& out) {
    std::memset(&out, 0, sizeof out);
    if (addr.ip().is_v4()) {
        sockaddr_in in{};
        in.sin_family = AF_INET;
        in.sin_port = htons(addr.port());
        std::memcpy(&in.sin_addr, addr.ip().data(), 4);
        std::memcpy(&out, &in, sizeof in);
        return sizeof in;
    }
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(addr.port());
    std::memcpy(&in6.sin6_addr, addr.ip().data(), 16);
    std::memcpy(&out, &in6, sizeof in6);
    return sizeof in6;
}

socklen_t to_sockaddr_v6(const net::SocketAddr& addr, sockaddr_storage& out) {
    if (addr.ip().is_v6())
        return to_sockaddr(addr, out);
    std::array<std::uint8_t, 16> mapped{};
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    std::memcpy(mapped.data() + 12, addr.ip().data(), 4);
    return to_sockaddr(net::SocketAddr(net::IpAddr::v6(mapped), addr.port()), out);
}

net::IpAddr from_in_addr(const in_addr& a) {
    std::array<std::uint8_t, 4> b{};
    std::memcpy(b.data(), &a, 4);
    return net::IpAddr::v4(b);
}

net::IpAddr from_in6_addr(const in6_addr& a) {
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), &a, 16);
    if (is_v4_mapped(b.data()))
        return net::IpAddr::v4(b[12], b[13], b[14], b[15]);
    return net::IpAddr::v6(b);
}

std::optional<net::SocketAddr> from_sockaddr(const sockaddr* sa, socklen_t len) {
    if (sa == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t)))
        return std::nullopt;
    // Copy rather than cast: the caller's buffer may be any byte array.
    sa_family_t family{};
    std::memcpy(&family, sa, sizeof family);
    if (family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
        sockaddr_in in{};
        std::memcpy(&in, sa, sizeof in);
        return net::SocketAddr(from_in_addr(in.sin_addr), ntohs(in.sin_port));
    }
    if (family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, sa, sizeof in6);
        return net::SocketAddr(from_in6_addr(in6.sin6_addr), ntohs(in6.sin6_port));
    }
    return std::nullopt;
}

std::optional<net::SocketAddr> from_sockaddr(const sockaddr_storage& ss, socklen_t len) {
    return from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
}

} // namespace rtcat::io
