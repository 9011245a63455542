#include "core/base/sha256.hpp"

#include <openssl/evp.h>

#include "core/base/bytes.hpp"
#include "core/base/check.hpp"

namespace rtcat::base {

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
    const EVP_MD* md = nullptr;

    Impl() {
        // Fetch once per hasher: EVP_sha256() goes through the provider lookup each call.
        md = EVP_sha256();
        ctx = EVP_MD_CTX_new();
        RTCAT_CHECK(ctx != nullptr && EVP_DigestInit_ex(ctx, md, nullptr) == 1, "SHA-256 context");
    }
    ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::uint8_t> data) {
    if (!data.empty()) {
        RTCAT_CHECK(EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) == 1, "SHA-256 update");
    }
}

Sha256::Digest Sha256::finish() {
    Digest d{};
    unsigned int len = 0;
    RTCAT_CHECK(EVP_DigestFinal_ex(impl_->ctx, d.data(), &len) == 1 && len == d.size(),
                "SHA-256 final");
    RTCAT_CHECK(EVP_DigestInit_ex(impl_->ctx, impl_->md, nullptr) == 1, "SHA-256 re-init");
    return d;
}

Sha256::Digest Sha256::peek() const {
    EVP_MD_CTX* copy = EVP_MD_CTX_new();
    RTCAT_CHECK(copy != nullptr && EVP_MD_CTX_copy_ex(copy, impl_->ctx) == 1, "SHA-256 copy");
    Digest d{};
    unsigned int len = 0;
    RTCAT_CHECK(EVP_DigestFinal_ex(copy, d.data(), &len) == 1, "SHA-256 final");
    EVP_MD_CTX_free(copy);
    return d;
}

Sha256::Digest Sha256::of(std::span<const std::uint8_t> data) {
    Sha256 h;
    h.update(data);
    return h.finish();
}

std::string Sha256::hex(const Digest& d) {
    return to_hex(d);
}

} // namespace rtcat::base
