#pragma once
// net::SocketAddr <-> sockaddr conversions. io-internal: the only header that exposes sockaddr
// types, so that the rest of the tree sees plain values.
//
// net::SocketAddr carries no IPv6 scope id, so link-local IPv6 destinations convert with
// sin6_scope_id = 0 (the kernel then needs a socket bound to the interface to route them).

#include <optional>

#include <netinet/in.h>
#include <sys/socket.h>

#include "core/net/address.hpp"

namespace rtcat::io {

// In the address's own family (sockaddr_in or sockaddr_in6). Returns the length to pass to
// the kernel.
socklen_t to_sockaddr(const net::SocketAddr& addr, sockaddr_storage& out);

// For sending from an AF_INET6 socket: an IPv4 address becomes ::ffff:a.b.c.d, the form a
// dual-stack (IPV6_V6ONLY=0) socket requires. IPv6 addresses convert unchanged.
socklen_t to_sockaddr_v6(const net::SocketAddr& addr, sockaddr_storage& out);

// AF_INET / AF_INET6 only (nullopt for other families or a short `len`). IPv4-mapped IPv6
// (::ffff:a.b.c.d, what dual-stack sockets report for IPv4 peers) is normalised to IPv4 so
// the same peer always compares equal whichever socket it arrived on.
std::optional<net::SocketAddr> from_sockaddr(const sockaddr* sa, socklen_t len);
std::optional<net::SocketAddr> from_sockaddr(const sockaddr_storage& ss, socklen_t len);

net::IpAddr from_in_addr(const in_addr& a);
// Normalises IPv4-mapped addresses to IPv4, like from_sockaddr.
net::IpAddr from_in6_addr(const in6_addr& a);

} // namespace rtcat::io
