#include "core/base/printable.hpp"

#include <cstdint>

namespace rtcat::base {

namespace {

// Length of the UTF-8 sequence at s[i] and its code point; 0 when it is not valid UTF-8
// (overlong forms, surrogates and code points beyond U+10FFFF are invalid, RFC 3629 §3).
size_t utf8_sequence(std::string_view s, size_t i, char32_t& cp) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    }
    size_t len = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2;
        cp = b0 & 0x1F;
        min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3;
        cp = b0 & 0x0F;
        min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4;
        cp = b0 & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > s.size()) {
        return 0;
    }
    for (size_t k = 1; k < len; ++k) {
        const auto b = static_cast<uint8_t>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

bool is_control(char32_t cp) {
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

void append_hex(std::string& out, uint8_t b) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
}

} // namespace

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        char32_t cp = 0;
        const size_t len = utf8_sequence(text, i, cp);
        if (len == 0) {
            append_hex(out, static_cast<uint8_t>(text[i]));
            ++i;
            continue;
        }
        if (!is_control(cp)) {
            out.append(text.substr(i, len));
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp == 0x1B) {
            out += "\\e";
        } else {
            for (size_t k = 0; k < len; ++k) {
                append_hex(out, static_cast<uint8_t>(text[i + k]));
            }
        }
        i += len;
    }
    return out;
}

bool is_clean_utf8(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        char32_t cp = 0;
        const size_t len = utf8_sequence(text, i, cp);
        if (len == 0 || is_control(cp)) {
            return false;
        }
        i += len;
    }
    return true;
}

} // namespace rtcat::base
