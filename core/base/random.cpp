#include "core/base/random.hpp"

#include <openssl/rand.h>

#include "core/base/check.hpp"

namespace rtcat::base {

void random_bytes(std::span<std::uint8_t> out) {
    RTCAT_CHECK(RAND_bytes(out.data(), static_cast<int>(out.size())) == 1,
                "OpenSSL RAND_bytes failed");
}

std::uint64_t random_u64() {
    std::uint8_t b[8];
    random_bytes(b);
    std::uint64_t v = 0;
    for (auto c : b)
        v = (v << 8) | c;
    return v;
}

} // namespace rtcat::base
