#pragma once
// STUN and TURN server designations: RFC 7064 `stun:`/`stuns:` and RFC 7065 `turn:`/`turns:`
// URIs, plus the bare forms people type (`host`, `host:port`, `[v6]:port`, a bare IPv6
// literal). Credentials may ride in a `user:pass@` prefix (common practice, not RFC 7065);
// they are percent-decoded.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/result.hpp"

namespace rtcat::stun {

enum class Scheme { Stun, Stuns, Turn, Turns };
enum class UriTransport { Udp, Tcp };

struct ServerUri {
    Scheme scheme = Scheme::Stun;
    std::string host; // without brackets
    bool host_is_ip = false;
    std::uint16_t port = 0;
    UriTransport transport = UriTransport::Udp;
    bool transport_given = false;
    std::optional<std::string> username;
    std::optional<std::string> password;

    bool is_turn() const { return scheme == Scheme::Turn || scheme == Scheme::Turns; }
    bool is_tls() const { return scheme == Scheme::Stuns || scheme == Scheme::Turns; }
    // Canonical text without credentials: "stun:host:port", "turn:[::1]:3478?transport=udp".
    std::string to_string() const;
    // "host:port" / "[v6]:port".
    std::string host_port() const;
};

inline constexpr std::uint16_t kDefaultStunPort = 3478;
inline constexpr std::uint16_t kDefaultStunsPort = 5349;

std::string_view scheme_name(Scheme s);

// Parses one designation. A string without a scheme gets `default_scheme`.
base::Result<ServerUri> parse_server_uri(std::string_view text,
                                         Scheme default_scheme = Scheme::Stun);

} // namespace rtcat::stun
