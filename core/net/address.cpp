#include "core/net/address.hpp"

#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "core/base/bytes.hpp"

namespace rtcat::net {

IpAddr IpAddr::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return v4(std::array<std::uint8_t, 4>{a, b, c, d});
}

IpAddr IpAddr::v4(const std::array<std::uint8_t, 4>& b) {
    IpAddr ip;
    ip.family_ = Family::V4;
    for (int i = 0; i < 4; ++i)
        ip.bytes_[i] = b[i];
    return ip;
}

IpAddr IpAddr::v6(const std::array<std::uint8_t, 16>& b) {
    IpAddr ip;
    ip.family_ = Family::V6;
    ip.bytes_ = b;
    return ip;
}

std::array<std::uint8_t, 4> IpAddr::v4_bytes() const {
    return {bytes_[0], bytes_[1], bytes_[2], bytes_[3]};
}

static std::optional<std::array<std::uint8_t, 4>> parse_v4(std::string_view s) {
    std::array<std::uint8_t, 4> out{};
    std::size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
        if (i > 0) {
            if (pos >= s.size() || s[pos] != '.')
                return std::nullopt;
            ++pos;
        }
        std::size_t start = pos;
        unsigned v = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 3) {
            v = v * 10 + static_cast<unsigned>(s[pos] - '0');
            ++pos;
        }
        // No empty octets, no leading zeros (ambiguous octal in other parsers).
        if (pos == start || v > 255 || (pos - start > 1 && s[start] == '0'))
            return std::nullopt;
        out[i] = static_cast<std::uint8_t>(v);
    }
    if (pos != s.size())
        return std::nullopt;
    return out;
}

static std::optional<std::array<std::uint8_t, 16>> parse_v6(std::string_view s) {
    if (auto pct = s.find('%'); pct != std::string_view::npos) {
        if (pct + 1 == s.size())
            return std::nullopt; // RFC 4007 §11: a zone id is not empty
        s = s.substr(0, pct);
    }
    std::vector<std::uint16_t> head, tail;
    bool seen_gap = false;
    std::size_t pos = 0;
    if (s.starts_with("::")) {
        seen_gap = true;
        pos = 2;
    } else if (s.starts_with(":")) {
        return std::nullopt;
    }
    std::optional<std::array<std::uint8_t, 4>> v4tail;
    while (pos < s.size()) {
        std::size_t end = s.find(':', pos);
        std::string_view group = s.substr(pos, end == std::string_view::npos ? s.npos : end - pos);
        if (group.empty())
            return std::nullopt;
        auto& groups = seen_gap ? tail : head;
        if (group.find('.') != std::string_view::npos) {
            // Embedded IPv4 must be last.
            if (end != std::string_view::npos)
                return std::nullopt;
            v4tail = parse_v4(group);
            if (!v4tail)
                return std::nullopt;
            groups.push_back(static_cast<std::uint16_t>((*v4tail)[0] << 8 | (*v4tail)[1]));
            groups.push_back(static_cast<std::uint16_t>((*v4tail)[2] << 8 | (*v4tail)[3]));
            pos = s.size();
            break;
        }
        if (group.size() > 4)
            return std::nullopt;
        unsigned v = 0;
        for (char c : group) {
            int d = base::hex_value(c);
            if (d < 0)
                return std::nullopt;
            v = v * 16 + static_cast<unsigned>(d);
        }
        groups.push_back(static_cast<std::uint16_t>(v));
        if (end == std::string_view::npos) {
            pos = s.size();
            break;
        }
        pos = end + 1;
        if (pos < s.size() && s[pos] == ':') {
            if (seen_gap)
                return std::nullopt;
            seen_gap = true;
            ++pos;
        } else if (pos == s.size()) {
            return std::nullopt; // trailing single colon
        }
    }
    std::size_t total = head.size() + tail.size();
    if ((seen_gap && total > 7) || (!seen_gap && total != 8))
        return std::nullopt;
    std::array<std::uint16_t, 8> g{};
    for (std::size_t i = 0; i < head.size(); ++i)
        g[i] = head[i];
    for (std::size_t i = 0; i < tail.size(); ++i)
        g[8 - tail.size() + i] = tail[i];
    std::array<std::uint8_t, 16> out{};
    for (int i = 0; i < 8; ++i) {
        out[2 * i] = static_cast<std::uint8_t>(g[i] >> 8);
        out[2 * i + 1] = static_cast<std::uint8_t>(g[i]);
    }
    return out;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    if (text.find(':') != std::string_view::npos) {
        if (auto b = parse_v6(text))
            return v6(*b);
        return std::nullopt;
    }
    if (auto b = parse_v4(text))
        return v4(*b);
    return std::nullopt;
}

bool IpAddr::is_loopback() const {
    if (is_v4())
        return bytes_[0] == 127;
    for (int i = 0; i < 15; ++i)
        if (bytes_[i] != 0)
            return false;
    return bytes_[15] == 1;
}

bool IpAddr::is_unspecified() const {
    for (std::size_t i = 0; i < size(); ++i)
        if (bytes_[i] != 0)
            return false;
    return true;
}

bool IpAddr::is_link_local() const {
    if (is_v4())
        return bytes_[0] == 169 && bytes_[1] == 254;
    return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
}

bool IpAddr::is_private() const {
    if (is_v4()) {
        return bytes_[0] == 10 || (bytes_[0] == 172 && (bytes_[1] & 0xf0) == 16) ||
               (bytes_[0] == 192 && bytes_[1] == 168) ||
               (bytes_[0] == 100 && (bytes_[1] & 0xc0) == 64);
    }
    return (bytes_[0] & 0xfe) == 0xfc;
}

std::string IpAddr::to_string() const {
    if (is_v4())
        return fmt::format("{}.{}.{}.{}", bytes_[0], bytes_[1], bytes_[2], bytes_[3]);
    std::array<std::uint16_t, 8> g{};
    for (int i = 0; i < 8; ++i)
        g[i] = static_cast<std::uint16_t>(bytes_[2 * i] << 8 | bytes_[2 * i + 1]);
    // RFC 5952 §4.2: compress the longest run (length >= 2) of zero groups, the first on ties.
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (g[i] != 0) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && g[j] == 0)
            ++j;
        if (j - i > best_len && j - i >= 2) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
    bool mapped = best == 0 && best_len == 5 && g[5] == 0xffff;
    std::string out;
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            out += "::";
            i += best_len - 1;
            continue;
        }
        if (mapped && i == 6) {
            if (out.back() != ':')
                out += ':';
            out += fmt::format("{}.{}.{}.{}", bytes_[12], bytes_[13], bytes_[14], bytes_[15]);
            break;
        }
        if (!out.empty() && out.back() != ':')
            out += ':';
        out += fmt::format("{:x}", g[i]);
    }
    return out;
}

std::optional<SocketAddr> SocketAddr::parse(std::string_view text) {
    std::string_view host, port;
    if (text.starts_with("[")) {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon)
            return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    auto ip = IpAddr::parse(host);
    // Brackets are for IPv6 only (RFC 3986 §3.2.2), and IPv6 needs them.
    if (!ip || ip->is_v6() != text.starts_with("["))
        return std::nullopt;
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || ptr != port.data() + port.size() || port.empty() || p > 65535)
        return std::nullopt;
    return SocketAddr(*ip, static_cast<std::uint16_t>(p));
}

std::string SocketAddr::to_string() const {
    if (ip_.is_v6())
        return fmt::format("[{}]:{}", ip_.to_string(), port_);
    return fmt::format("{}:{}", ip_.to_string(), port_);
}

} // namespace rtcat::net
