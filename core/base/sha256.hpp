#pragma once
// Incremental SHA-256 (OpenSSL EVP underneath, kept out of this header). File transfers hash
// every byte on both sides, so this sits on the data path: one context per file, no per-call
// digest fetch.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace rtcat::base {

class Sha256 {
public:
    using Digest = std::array<std::uint8_t, 32>;

    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;

    void update(std::span<const std::uint8_t> data);
    // Finishes this hash and starts a fresh one.
    Digest finish();
    // The digest of what was fed so far, without disturbing the running hash.
    Digest peek() const;

    static Digest of(std::span<const std::uint8_t> data);
    static std::string hex(const Digest& d);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace rtcat::base
