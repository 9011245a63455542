#pragma once
// The host's IP addresses, one entry per (interface, address), for ICE host candidates.

#include <cstdint>
#include <string>
#include <vector>

#include "core/net/address.hpp"

namespace rtcat::io {

struct Interface {
    std::string name;
    net::IpAddr address;
    std::uint8_t prefix_length = 0; // from the netmask; 0 when the kernel gave none
    unsigned index = 0;             // if_nametoindex, the IPv6 scope id for link-local use
    bool is_up = false;             // IFF_UP and IFF_RUNNING: administratively up, link ready
    bool is_loopback = false;
    unsigned flags = 0; // raw IFF_* flags (<net/if.h>) for whatever the above leaves out
};

// IPv4 and IPv6 addresses only (link-layer entries are skipped), in the kernel's order. Empty
// (and logged) if getifaddrs fails, which only happens on resource exhaustion.
std::vector<Interface> list_interfaces();

} // namespace rtcat::io
