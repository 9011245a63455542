#include "core/dtls/certificate.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/base/check.hpp"
#include "core/base/random.hpp"
#include "core/dtls/openssl_glue.hpp"

namespace rtcat::dtls {
namespace {

// Certificate parameters (see Certificate::generate). One day of back-dating absorbs clock
// skew between peers that do check dates; 30 days outlives any session while keeping a saved
// identity from living forever.
constexpr long kNotBeforeSeconds = -24L * 3600;
constexpr long kNotAfterSeconds = 30L * 24 * 3600;
constexpr std::size_t kSerialBytes = 16;
constexpr const char* kCommonName = "rtcat";

struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct BnDeleter {
    void operator()(BIGNUM* b) const { BN_free(b); }
};

std::string bio_to_string(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || data == nullptr)
        return {};
    return std::string(data, static_cast<std::size_t>(n));
}

BioPtr read_bio(const std::string& text) {
    return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

} // namespace

std::string openssl_error_text() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return "unknown OpenSSL error";
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    return buf.data();
}

const EVP_MD* fingerprint_digest(std::string_view algorithm) {
    std::string a(algorithm);
    std::transform(a.begin(), a.end(), a.begin(), [](char c) {
        return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    });
    if (a == "sha-1")
        return EVP_sha1();
    if (a == "sha-224")
        return EVP_sha224();
    if (a == "sha-256")
        return EVP_sha256();
    if (a == "sha-384")
        return EVP_sha384();
    if (a == "sha-512")
        return EVP_sha512();
    return nullptr;
}

Fingerprint compute_fingerprint(X509* cert, std::string_view algorithm) {
    Fingerprint fp;
    fp.algorithm = std::string(algorithm);
    std::transform(fp.algorithm.begin(), fp.algorithm.end(), fp.algorithm.begin(), [](char c) {
        return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    });
    const EVP_MD* md = fingerprint_digest(algorithm);
    if (md == nullptr || cert == nullptr)
        return fp;
    std::array<unsigned char, EVP_MAX_MD_SIZE> buf{};
    unsigned int n = 0;
    if (X509_digest(cert, md, buf.data(), &n) != 1)
        return fp;
    fp.value.assign(buf.begin(), buf.begin() + n);
    return fp;
}

base::Result<Certificate> Certificate::generate() {
    ERR_clear_error();
    auto impl = std::make_shared<Impl>();
    impl->key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!impl->key)
        return base::make_error("certificate: key generation failed: {}", openssl_error_text());
    impl->x509.reset(X509_new());
    X509* x = impl->x509.get();
    if (x == nullptr)
        return base::make_error("certificate: {}", openssl_error_text());

    // A positive random serial (top bit cleared) so two runs never issue the same
    // issuer/serial pair (RFC 5280 §4.1.2.2).
    std::array<std::uint8_t, kSerialBytes> serial{};
    base::random_bytes(serial);
    serial[0] &= 0x7f;
    serial[0] |= 0x01; // never zero
    std::unique_ptr<BIGNUM, BnDeleter> bn(
        BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
    X509_NAME* name = X509_get_subject_name(x);
    const bool ok = bn && X509_set_version(x, 2) == 1 &&
                    BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)) != nullptr &&
                    X509_gmtime_adj(X509_getm_notBefore(x), kNotBeforeSeconds) != nullptr &&
                    X509_gmtime_adj(X509_getm_notAfter(x), kNotAfterSeconds) != nullptr &&
                    X509_set_pubkey(x, impl->key.get()) == 1 &&
                    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                               reinterpret_cast<const unsigned char*>(kCommonName),
                                               -1, -1, 0) == 1 &&
                    X509_set_issuer_name(x, name) == 1 &&
                    X509_sign(x, impl->key.get(), EVP_sha256()) > 0;
    if (!ok)
        return base::make_error("certificate: signing failed: {}", openssl_error_text());
    return Certificate(std::move(impl));
}

base::Result<Certificate> Certificate::load_pem(const std::string& cert_pem_text,
                                                const std::string& key_pem_text) {
    ERR_clear_error();
    auto impl = std::make_shared<Impl>();
    auto cb = read_bio(cert_pem_text);
    auto kb = read_bio(key_pem_text);
    if (!cb || !kb)
        return base::make_error("certificate: {}", openssl_error_text());
    impl->x509.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
    if (!impl->x509)
        return base::make_error("certificate: no PEM certificate: {}", openssl_error_text());
    // An empty passphrase: an encrypted key fails instead of prompting on the terminal.
    static char kNoPassphrase[] = "";
    impl->key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, kNoPassphrase));
    if (!impl->key)
        return base::make_error("certificate: no PEM private key: {}", openssl_error_text());
    if (X509_check_private_key(impl->x509.get(), impl->key.get()) != 1)
        return base::make_error("certificate: the private key does not match the certificate");
    return Certificate(std::move(impl));
}

Fingerprint Certificate::fingerprint(std::string_view algorithm) const {
    RTCAT_CHECK(impl_ != nullptr, "fingerprint() of an empty Certificate");
    RTCAT_CHECK(fingerprint_digest(algorithm) != nullptr, "unsupported fingerprint algorithm");
    return compute_fingerprint(impl_->x509.get(), algorithm);
}

std::string Certificate::cert_pem() const {
    RTCAT_CHECK(impl_ != nullptr, "cert_pem() of an empty Certificate");
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), impl_->x509.get()) != 1)
        return {};
    return bio_to_string(bio.get());
}

std::string Certificate::key_pem() const {
    RTCAT_CHECK(impl_ != nullptr, "key_pem() of an empty Certificate");
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->key.get(), nullptr, nullptr, 0, nullptr,
                                         nullptr) != 1)
        return {};
    return bio_to_string(bio.get());
}

} // namespace rtcat::dtls
