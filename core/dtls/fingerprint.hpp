#pragma once
// Certificate fingerprints as SDP carries them (RFC 8122 §5, a=fingerprint): the hash function
// name, a space, then the digest as colon-separated uppercase hex pairs. WebRTC authenticates
// the DTLS peer by this value alone (RFC 8827 §6.5): certificates are self-signed.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.hpp"

namespace rtcat::dtls {

struct Fingerprint {
    std::string algorithm; // lower case hash function name: "sha-256"
    std::vector<std::uint8_t> value;

    bool operator==(const Fingerprint&) const = default;
};

// Digest size in bytes of a hash function we accept ("sha-1", "sha-224", "sha-256", "sha-384",
// "sha-512", any case), 0 for anything else (RFC 8122 also lists md2/md5: refused, RFC 8827
// §6.5 asks for strong hashes).
std::size_t fingerprint_digest_size(std::string_view algorithm);

// "sha-256 AB:CD:..." (the value of an SDP a=fingerprint line).
std::string format_fingerprint(const Fingerprint& fp);
// Inverse of format_fingerprint. Hash names are case-insensitive (RFC 8122 §5), hex digits of
// either case; the digest length must match the hash function.
base::Result<Fingerprint> parse_fingerprint(std::string_view text);

} // namespace rtcat::dtls
