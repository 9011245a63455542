#pragma once
// Internal to core/dtls: the OpenSSL side of Certificate, for session.cpp. Nothing outside
// core/dtls includes this header (OpenSSL types do not leak into other modules).

#include <memory>
#include <string>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/dtls/certificate.hpp"
#include "core/dtls/fingerprint.hpp"

namespace rtcat::dtls {

struct OpenSslDeleter {
    void operator()(X509* p) const { X509_free(p); }
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter>;

struct Certificate::Impl {
    X509Ptr x509;
    EvpPkeyPtr key;
};

// The EVP digest for an SDP hash name ("sha-256", any case), nullptr when unsupported.
const EVP_MD* fingerprint_digest(std::string_view algorithm);
// Fingerprint of `cert` with `algorithm`; empty value when the algorithm is unsupported.
Fingerprint compute_fingerprint(X509* cert, std::string_view algorithm);
// The oldest error on this thread's OpenSSL error queue as text (and clears the queue).
std::string openssl_error_text();

} // namespace rtcat::dtls
