#pragma once
// Host name resolution for command-line targets, before the event loop starts.
//
// Blocking, and glibc's getaddrinfo has no timeout argument: an unreachable DNS server stalls
// it for resolv.conf's `timeout` x `attempts` per server and query (5 s x 2 by default). IP
// literals (bare or bracketed), "localhost" and ".invalid" names are answered without DNS, so
// a caller holding a --timeout should pass literals where it matters; they return at once.

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/base/result.hpp"
#include "core/net/address.hpp"

namespace rtcat::io {

enum class FamilyFilter { Any, V4Only, V6Only };

// Addresses of `host` with `port`, in resolver order, without duplicates. Accepts an IPv4 or
// IPv6 literal, an IPv6 literal in brackets ("[::1]"), or a name. Errors name the host.
base::Result<std::vector<net::SocketAddr>> resolve(std::string_view host, std::uint16_t port,
                                                   FamilyFilter filter = FamilyFilter::Any);

} // namespace rtcat::io
