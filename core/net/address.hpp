#pragma once
// IP addresses and transport addresses as plain values. No socket headers here: core/io
// converts to and from sockaddr at the boundary.

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rtcat::net {

enum class Family : std::uint8_t { V4 = 4, V6 = 6 };

class IpAddr {
public:
    IpAddr() = default; // 0.0.0.0
    static IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);
    static IpAddr v4(const std::array<std::uint8_t, 4>& b);
    static IpAddr v6(const std::array<std::uint8_t, 16>& b);
    // Dotted quad or RFC 4291 text (with optional %zone, dropped); no brackets.
    static std::optional<IpAddr> parse(std::string_view text);

    Family family() const { return family_; }
    bool is_v4() const { return family_ == Family::V4; }
    bool is_v6() const { return family_ == Family::V6; }
    // 4 bytes for V4, 16 for V6, network order.
    const std::uint8_t* data() const { return bytes_.data(); }
    std::size_t size() const { return is_v4() ? 4 : 16; }
    std::array<std::uint8_t, 4> v4_bytes() const;
    const std::array<std::uint8_t, 16>& v6_bytes() const { return bytes_; }

    bool is_loopback() const;
    bool is_unspecified() const;
    bool is_link_local() const;
    bool is_private() const; // RFC 1918, RFC 6598 shared, RFC 4193 ULA
    // RFC 5952 canonical text for V6.
    std::string to_string() const;

    auto operator<=>(const IpAddr&) const = default;

private:
    Family family_ = Family::V4;
    std::array<std::uint8_t, 16> bytes_{};
};

class SocketAddr {
public:
    SocketAddr() = default;
    SocketAddr(IpAddr ip, std::uint16_t port) : ip_(ip), port_(port) {}
    // "1.2.3.4:5", "[::1]:5"; the port is required.
    static std::optional<SocketAddr> parse(std::string_view text);

    const IpAddr& ip() const { return ip_; }
    std::uint16_t port() const { return port_; }
    Family family() const { return ip_.family(); }
    void set_port(std::uint16_t p) { port_ = p; }
    // "1.2.3.4:5" or "[::1]:5".
    std::string to_string() const;

    auto operator<=>(const SocketAddr&) const = default;

private:
    IpAddr ip_;
    std::uint16_t port_ = 0;
};

} // namespace rtcat::net
