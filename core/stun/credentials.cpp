#include "core/stun/credentials.hpp"

#include <algorithm>

namespace rtcat::stun {

namespace {

constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
    auto pos = kBase64.find(c);
    return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

bool supported(PasswordAlgorithm alg) {
    return alg == PasswordAlgorithm::Md5 || alg == PasswordAlgorithm::Sha256;
}

} // namespace

std::optional<SecurityFeatures> parse_nonce_cookie(std::string_view nonce) {
    if (nonce.size() < kNonceCookie.size() + 4 || !nonce.starts_with(kNonceCookie))
        return std::nullopt;
    // Four base64 characters carry exactly 24 bits, no padding (RFC 8489 §9.2).
    std::uint32_t bits = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        int v = base64_value(nonce[kNonceCookie.size() + i]);
        if (v < 0)
            return std::nullopt;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
    }
    return SecurityFeatures{bits};
}

std::string make_nonce_cookie(std::uint32_t bits) {
    std::string out(kNonceCookie);
    for (int shift = 18; shift >= 0; shift -= 6)
        out.push_back(kBase64[(bits >> shift) & 0x3F]);
    return out;
}

bool nonce_bid_down(const Message& response) {
    auto nonce = response.get_string(attr::Nonce);
    if (!nonce)
        return false;
    auto features = parse_nonce_cookie(*nonce);
    return features && features->password_algorithms() && !response.has(attr::PasswordAlgorithms);
}

LongTermCredentials::Challenge LongTermCredentials::accept_challenge(const Message& response) {
    auto nonce = response.get_string(attr::Nonce);
    auto realm = response.get_string(attr::Realm);
    // RFC 8489 §9.2.5: a 401 carries REALM and NONCE; a 438 carries a NONCE and, from some
    // servers, no REALM (the one from the earlier 401 stays valid).
    if (!nonce || nonce->empty() || (!realm && !ready_))
        return Challenge::MissingRealmOrNonce;
    // RFC 8489 §9.2.5: "password algorithms" in the cookie but no PASSWORD-ALGORITHMS
    // attribute: the list was stripped on the way, so the client MUST NOT retry.
    if (nonce_bid_down(response))
        return Challenge::BidDown;

    PasswordAlgorithm alg = PasswordAlgorithm::Md5;
    std::optional<base::Bytes> raw;
    if (const auto* a = response.find(attr::PasswordAlgorithms)) {
        auto algs = response.password_algorithms();
        if (!algs)
            return Challenge::MissingRealmOrNonce;
        // RFC 8489 §9.2.5: PASSWORD-ALGORITHM carries "the first algorithm supported on the
        // list" -- the server's order is its preference, and the list itself is echoed so
        // the server can detect tampering (§9.2.4).
        auto it = std::find_if(algs->begin(), algs->end(), supported);
        if (it == algs->end())
            return Challenge::NoCommonAlgorithm;
        alg = *it;
        raw = a->value;
    }

    if (realm)
        realm_ = *realm;
    nonce_ = *nonce;
    password_algorithms_raw_ = std::move(raw);
    algorithm_ = alg;
    // RFC 8489 §9.2.2: key = MD5 or SHA-256 of "username:realm:password".
    key_ = long_term_key(username_, realm_, password_, algorithm_);
    ready_ = true;
    return Challenge::Accepted;
}

void LongTermCredentials::add_attributes(Message& request) const {
    if (!ready_)
        return;
    // TODO(lead): RFC 8489 §9.2.5 wants USERHASH when the cookie's "username anonymity" bit
    // is set; that needs a SHA-256(username:realm) helper in message.hpp. USERNAME is sent
    // meanwhile (a server insisting on USERHASH answers 401 and we report AuthFailed).
    request.add_string(attr::Username, username_);
    request.add_string(attr::Realm, realm_);
    request.add_string(attr::Nonce, nonce_);
    if (password_algorithms_raw_) {
        request.add_raw(attr::PasswordAlgorithms, *password_algorithms_raw_);
        request.add_password_algorithm(algorithm_);
    }
}

} // namespace rtcat::stun
