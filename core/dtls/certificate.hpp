#pragma once
// A DTLS identity: an ECDSA P-256 key and its self-signed certificate. WebRTC peers are
// authenticated by the certificate's fingerprint carried in signaling (RFC 8827 §6.5), so the
// certificate itself carries nothing but a key: CN=rtcat, a random serial, short validity.
//
// A cheap, copyable shared handle (the key never changes after creation). OpenSSL types stay
// behind the pimpl; core/dtls/openssl_glue.hpp exposes them to the session only.

#include <memory>
#include <string>
#include <string_view>

#include "core/base/result.hpp"
#include "core/dtls/fingerprint.hpp"

namespace rtcat::dtls {

class Certificate {
public:
    // An empty handle (valid() == false); a Session given one fails at once.
    Certificate() = default;

    // ECDSA P-256, self-signed (SHA-256), random 127-bit serial, CN=rtcat, valid from one day
    // ago (clock skew between peers) to 30 days ahead. The validity dates come from OpenSSL
    // reading the wall clock (X509_gmtime_adj): certificate dates are a wall-clock notion and
    // WebRTC ignores them anyway (RFC 8827 §6.5), so this is not a sans-IO timing input.
    static base::Result<Certificate> generate();
    // PEM contents (not paths: core does no file I/O) of a certificate and its private key;
    // the key must belong to the certificate.
    static base::Result<Certificate> load_pem(const std::string& cert_pem_text,
                                              const std::string& key_pem_text);

    bool valid() const { return impl_ != nullptr; }
    // Digest of the DER certificate; `algorithm` as in SDP ("sha-256"). Aborts on an unknown
    // algorithm (a programming error: fingerprint_digest_size() tells what is supported).
    Fingerprint fingerprint(std::string_view algorithm = "sha-256") const;
    std::string cert_pem() const;
    std::string key_pem() const; // PKCS#8, unencrypted

    struct Impl;
    const Impl* impl() const { return impl_.get(); }

private:
    explicit Certificate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const Impl> impl_;
};

} // namespace rtcat::dtls
