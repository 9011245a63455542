#include "core/base/bytes.hpp"

#include "core/base/check.hpp"

namespace rtcat::base {

void ByteWriter::patch_u16(std::size_t at, std::uint16_t v) {
    RTCAT_CHECK(at + 2 <= out_.size(), "patch_u16 past the end");
    out_[at] = static_cast<std::uint8_t>(v >> 8);
    out_[at + 1] = static_cast<std::uint8_t>(v);
}

void ByteWriter::patch_u32(std::size_t at, std::uint32_t v) {
    patch_u16(at, static_cast<std::uint16_t>(v >> 16));
    patch_u16(at + 2, static_cast<std::uint16_t>(v));
}

std::string to_hex(ByteView b) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    s.reserve(b.size() * 2);
    for (auto c : b) {
        s.push_back(kDigits[c >> 4]);
        s.push_back(kDigits[c & 15]);
    }
    return s;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

Bytes from_hex(std::string_view s) {
    Bytes out;
    int hi = -1;
    for (char c : s) {
        if (c == ' ' || c == ':' || c == '\n')
            continue;
        int v = hex_value(c);
        if (v < 0)
            return {};
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    if (hi >= 0)
        return {};
    return out;
}

} // namespace rtcat::base
