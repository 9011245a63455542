#pragma once
// Client state of the STUN long-term credential mechanism (RFC 8489 §9.2): the realm and
// nonce learnt from a 401/438 challenge, password-algorithm negotiation (§9.2.4, §9.2.5,
// §18.5) and the "nonce cookie" that carries the server's security features (§9.2, §18.1).
// Pure values: no I/O, no clock.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/stun/message.hpp"

namespace rtcat::stun {

// RFC 8489 §9.2: a NONCE starting with this cookie is followed by 4 base64 characters
// encoding a 24-bit STUN Security Feature set.
inline constexpr std::string_view kNonceCookie = "obMatJos2";

// Bits of the 24-bit feature set as decoded (first byte most significant). Verified erratum
// 6290 to RFC 8489 numbers the bits from the least significant end (the Appendix B.1 sample
// nonce "obMatJos2AAAC..." asks for username anonymity with 0x000002); implementations
// written against the original figure use the most significant end ("obMatJos2gAAA" for
// password algorithms). Only two features are assigned, so both readings are accepted
// without ambiguity.
inline constexpr std::uint32_t kFeaturePasswordAlgorithms = 0x000001;
inline constexpr std::uint32_t kFeatureUsernameAnonymity = 0x000002;
inline constexpr std::uint32_t kFeaturePasswordAlgorithmsMsb = 0x800000;
inline constexpr std::uint32_t kFeatureUsernameAnonymityMsb = 0x400000;

struct SecurityFeatures {
    std::uint32_t bits = 0; // 24 bits
    bool password_algorithms() const {
        return (bits & (kFeaturePasswordAlgorithms | kFeaturePasswordAlgorithmsMsb)) != 0;
    }
    bool username_anonymity() const {
        return (bits & (kFeatureUsernameAnonymity | kFeatureUsernameAnonymityMsb)) != 0;
    }
};

// The security features when `nonce` starts with the cookie followed by 4 valid base64
// characters; nullopt otherwise (a plain RFC 5389 nonce).
std::optional<SecurityFeatures> parse_nonce_cookie(std::string_view nonce);
// "obMatJos2" + base64 of the 24 bits (servers and tests build nonces with it).
std::string make_nonce_cookie(std::uint32_t bits);

// RFC 8489 §9.2.5: a response whose NONCE has the cookie with the password-algorithms bit
// set but that lacks PASSWORD-ALGORITHMS may be a bid-down attack and MUST be ignored (a
// 401/438 must not be retried).
bool nonce_bid_down(const Message& response);

class LongTermCredentials {
public:
    LongTermCredentials() = default;
    LongTermCredentials(std::string username, std::string password)
        : username_(std::move(username)), password_(std::move(password)) {}

    enum class Challenge {
        Accepted,            // realm/nonce (and algorithm) taken; retry with credentials
        MissingRealmOrNonce, // malformed challenge
        BidDown,             // cookie says "password algorithms" but none were listed
        NoCommonAlgorithm,   // PASSWORD-ALGORITHMS lists nothing we support
    };
    // Takes the REALM, NONCE and PASSWORD-ALGORITHMS of a 401 or 438 error response
    // (RFC 8489 §9.2.5). A 438 may omit REALM: the known one is kept.
    Challenge accept_challenge(const Message& error_response);

    // True once a challenge was accepted: requests can then carry credentials.
    bool ready() const { return ready_; }
    // Adds USERNAME, REALM, NONCE and, when negotiated, PASSWORD-ALGORITHMS (echoing the
    // server's list byte for byte) and PASSWORD-ALGORITHM (RFC 8489 §9.2.4).
    void add_attributes(Message& request) const;
    // The HMAC key for MESSAGE-INTEGRITY(-SHA256) (RFC 8489 §9.2.2) and which one to use.
    const base::Bytes& key() const { return key_; }
    bool use_sha256() const { return algorithm_ == PasswordAlgorithm::Sha256; }
    PasswordAlgorithm algorithm() const { return algorithm_; }

    const std::string& username() const { return username_; }
    const std::string& realm() const { return realm_; }
    const std::string& nonce() const { return nonce_; }
    std::optional<SecurityFeatures> features() const { return parse_nonce_cookie(nonce_); }

private:
    std::string username_;
    std::string password_;
    std::string realm_;
    std::string nonce_;
    std::optional<base::Bytes> password_algorithms_raw_; // as the server sent it
    PasswordAlgorithm algorithm_ = PasswordAlgorithm::Md5;
    base::Bytes key_;
    bool ready_ = false;
};

} // namespace rtcat::stun
