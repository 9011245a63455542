#include "core/dtls/fingerprint.hpp"

#include <algorithm>
#include <cctype>

#include "core/base/bytes.hpp"

namespace rtcat::dtls {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    });
    return out;
}

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

} // namespace

std::size_t fingerprint_digest_size(std::string_view algorithm) {
    const std::string a = lower(algorithm);
    if (a == "sha-1")
        return 20;
    if (a == "sha-224")
        return 28;
    if (a == "sha-256")
        return 32;
    if (a == "sha-384")
        return 48;
    if (a == "sha-512")
        return 64;
    return 0;
}

std::string format_fingerprint(const Fingerprint& fp) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out = fp.algorithm;
    out.reserve(out.size() + 1 + fp.value.size() * 3);
    out.push_back(' ');
    for (std::size_t i = 0; i < fp.value.size(); ++i) {
        if (i != 0)
            out.push_back(':');
        out.push_back(kHex[fp.value[i] >> 4]);
        out.push_back(kHex[fp.value[i] & 0x0f]);
    }
    return out;
}

base::Result<Fingerprint> parse_fingerprint(std::string_view text) {
    while (!text.empty() && is_space(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && (is_space(text.back()) || text.back() == '\r' || text.back() == '\n'))
        text.remove_suffix(1);
    const auto sp = std::find_if(text.begin(), text.end(), is_space);
    if (sp == text.end())
        return base::make_error("fingerprint: expected '<hash> <hex>'");
    const std::string_view name(text.begin(), sp);
    std::string_view hex(sp, text.end());
    while (!hex.empty() && is_space(hex.front()))
        hex.remove_prefix(1);

    Fingerprint fp;
    fp.algorithm = lower(name);
    const std::size_t size = fingerprint_digest_size(fp.algorithm);
    if (size == 0)
        return base::make_error("fingerprint: unsupported hash function '{}'", name);
    // Exactly "XX:XX:...:XX" (RFC 8122 §5: 2UHEX *(":" 2UHEX)); lower case is tolerated.
    if (hex.size() != size * 3 - 1)
        return base::make_error("fingerprint: {} needs {} bytes of hex", fp.algorithm, size);
    fp.value.reserve(size);
    for (std::size_t i = 0; i < size; ++i) {
        const int hi = base::hex_value(hex[i * 3]);
        const int lo = base::hex_value(hex[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i + 1 < size && hex[i * 3 + 2] != ':'))
            return base::make_error("fingerprint: malformed hex at byte {}", i);
        fp.value.push_back(static_cast<std::uint8_t>((hi << 4) | lo));
    }
    return fp;
}

} // namespace rtcat::dtls
