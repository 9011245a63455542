#include "core/io/interfaces.hpp"

#include <bit>
#include <cerrno>
#include <memory>

#include <ifaddrs.h>
#include <net/if.h>
#include <sys/socket.h>

#include "core/base/log.hpp"
#include "core/io/sockaddr.hpp"
#include "core/io/sys_error.hpp"

namespace rtcat::io {

namespace {

socklen_t sockaddr_len(const sockaddr* sa) {
    if (sa == nullptr)
        return 0;
    if (sa->sa_family == AF_INET)
        return sizeof(sockaddr_in);
    if (sa->sa_family == AF_INET6)
        return sizeof(sockaddr_in6);
    return 0;
}

std::uint8_t prefix_length(const sockaddr* netmask) {
    const socklen_t len = sockaddr_len(netmask);
    if (len == 0)
        return 0;
    auto mask = from_sockaddr(netmask, len);
    if (!mask)
        return 0;
    int bits = 0;
    for (std::size_t i = 0; i < mask->ip().size(); ++i)
        bits += std::popcount(mask->ip().data()[i]);
    return static_cast<std::uint8_t>(bits);
}

} // namespace

std::vector<Interface> list_interfaces() {
    ifaddrs* raw = nullptr;
    if (::getifaddrs(&raw) != 0) {
        RTCAT_WARN("io", "getifaddrs: {}", errno_text(errno));
        return {};
    }
    std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> list(raw, ::freeifaddrs);

    std::vector<Interface> out;
    for (const ifaddrs* ifa = list.get(); ifa != nullptr; ifa = ifa->ifa_next) {
        const socklen_t len = sockaddr_len(ifa->ifa_addr);
        if (len == 0)
            continue;
        auto addr = from_sockaddr(ifa->ifa_addr, len);
        if (!addr)
            continue;
        Interface i;
        i.name = ifa->ifa_name;
        i.address = addr->ip();
        i.prefix_length = prefix_length(ifa->ifa_netmask);
        i.index = ::if_nametoindex(ifa->ifa_name);
        i.flags = ifa->ifa_flags;
        i.is_up = (ifa->ifa_flags & IFF_UP) != 0 && (ifa->ifa_flags & IFF_RUNNING) != 0;
        i.is_loopback = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
        out.push_back(std::move(i));
    }
    return out;
}

} // namespace rtcat::io
