#include "core/sctp/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace rtcat::sctp {
namespace {

constexpr std::uint32_t kPolynomial = 0x82F63B78; // reflected Castagnoli

constexpr std::array<std::uint32_t, 256> make_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) != 0 ? (c >> 1) ^ kPolynomial : c >> 1;
        t[i] = c;
    }
    return t;
}

constexpr auto kTable = make_table();

std::uint32_t update_table(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
// SSE4.2's crc32 computes exactly this polynomial, 8 bytes per instruction.
[[gnu::target("sse4.2")]] std::uint32_t update_sse42(std::uint32_t crc, const std::uint8_t* p,
                                                     std::size_t n) {
    std::uint64_t c = crc;
    while (n >= 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    auto c32 = static_cast<std::uint32_t>(c);
    while (n > 0) {
        c32 = _mm_crc32_u8(c32, *p++);
        --n;
    }
    return c32;
}

bool have_sse42() {
    static const bool yes = __builtin_cpu_supports("sse4.2");
    return yes;
}
#endif

std::uint32_t update(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
#if defined(__x86_64__)
    if (have_sse42())
        return update_sse42(crc, p, n);
#endif
    return update_table(crc, p, n);
}

constexpr std::size_t kChecksumOffset = 8; // source port, destination port, verification tag
constexpr std::size_t kCommonHeader = 12;

} // namespace

std::uint32_t crc32c(const std::uint8_t* data, std::size_t size) {
    return update(0xFFFFFFFF, data, size) ^ 0xFFFFFFFF;
}

void set_packet_checksum(std::uint8_t* packet, std::size_t size) {
    if (size < kCommonHeader)
        return;
    std::memset(packet + kChecksumOffset, 0, 4);
    const std::uint32_t c = crc32c(packet, size);
    // RFC 9260 Appendix A: the CRC goes out least significant byte first.
    packet[kChecksumOffset + 0] = static_cast<std::uint8_t>(c);
    packet[kChecksumOffset + 1] = static_cast<std::uint8_t>(c >> 8);
    packet[kChecksumOffset + 2] = static_cast<std::uint8_t>(c >> 16);
    packet[kChecksumOffset + 3] = static_cast<std::uint8_t>(c >> 24);
}

bool packet_checksum_ok(const std::uint8_t* packet, std::size_t size) {
    if (size < kCommonHeader)
        return false;
    const std::uint32_t stored = static_cast<std::uint32_t>(packet[kChecksumOffset]) |
                                 static_cast<std::uint32_t>(packet[kChecksumOffset + 1]) << 8 |
                                 static_cast<std::uint32_t>(packet[kChecksumOffset + 2]) << 16 |
                                 static_cast<std::uint32_t>(packet[kChecksumOffset + 3]) << 24;
    static constexpr std::uint8_t kZero[4] = {0, 0, 0, 0};
    std::uint32_t c = update(0xFFFFFFFF, packet, kChecksumOffset);
    c = update(c, kZero, 4);
    c = update(c, packet + kCommonHeader, size - kCommonHeader);
    return (c ^ 0xFFFFFFFF) == stored;
}

} // namespace rtcat::sctp
