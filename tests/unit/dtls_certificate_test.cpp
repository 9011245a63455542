// Certificates and SDP fingerprints (RFC 8122 §5) of core/dtls.

#include <string>

#include <gtest/gtest.h>

#include "core/dtls/certificate.hpp"
#include "core/dtls/fingerprint.hpp"

namespace rtcat::dtls {
namespace {

TEST(DtlsFingerprint, FormatIsUppercaseColonSeparated) {
    Fingerprint fp{"sha-256", {}};
    for (int i = 0; i < 32; ++i)
        fp.value.push_back(static_cast<std::uint8_t>(i * 8 + 10));
    const std::string s = format_fingerprint(fp);
    EXPECT_EQ(s.substr(0, 17), "sha-256 0A:12:1A:");
    EXPECT_EQ(s.size(), 8u + 32 * 3 - 1);
    auto back = parse_fingerprint(s);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, fp);
}

TEST(DtlsFingerprint, ParseAcceptsEveryShaAndCase) {
    for (auto [name, size] :
         {std::pair{"sha-1", 20}, std::pair{"SHA-224", 28}, std::pair{"sha-256", 32},
          std::pair{"Sha-384", 48}, std::pair{"sha-512", 64}}) {
        std::string text = std::string(name) + " ";
        for (int i = 0; i < size; ++i)
            text += std::string(i ? ":" : "") + "a" + std::to_string(i % 10);
        auto fp = parse_fingerprint(text);
        ASSERT_TRUE(fp.ok()) << name << ": " << fp.error().message;
        EXPECT_EQ(fp->value.size(), static_cast<std::size_t>(size));
        EXPECT_EQ(fp->value[1], 0xa1);
        EXPECT_EQ(fp->algorithm.find_first_of("SHA"), std::string::npos) << "lower-cased";
        EXPECT_EQ(fingerprint_digest_size(fp->algorithm), static_cast<std::size_t>(size));
    }
}

TEST(DtlsFingerprint, ParseRejectsMalformed) {
    const std::string good32 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
                               "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
    EXPECT_TRUE(parse_fingerprint("sha-256 " + good32).ok());
    EXPECT_TRUE(parse_fingerprint("  sha-256   " + good32 + " \r\n").ok());
    EXPECT_FALSE(parse_fingerprint("md5 " + good32.substr(0, 47)).ok());
    EXPECT_FALSE(parse_fingerprint("sha-256").ok());
    EXPECT_FALSE(parse_fingerprint("").ok());
    EXPECT_FALSE(parse_fingerprint("sha-256 " + good32.substr(3)).ok()); // short
    EXPECT_FALSE(parse_fingerprint("sha-256 " + good32 + ":00").ok());   // long
    EXPECT_FALSE(parse_fingerprint("sha-1 " + good32).ok());             // wrong size
    std::string bad = good32;
    bad[2] = '-';
    EXPECT_FALSE(parse_fingerprint("sha-256 " + bad).ok());
    bad = good32;
    bad[4] = 'G';
    EXPECT_FALSE(parse_fingerprint("sha-256 " + bad).ok());
}

TEST(DtlsCertificate, GenerateGivesDistinctIdentities) {
    auto a = Certificate::generate();
    auto b = Certificate::generate();
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_TRUE(a->valid());
    const Fingerprint fa = a->fingerprint();
    EXPECT_EQ(fa.algorithm, "sha-256");
    EXPECT_EQ(fa.value.size(), 32u);
    EXPECT_NE(fa, b->fingerprint());
    EXPECT_EQ(a->fingerprint("sha-1").value.size(), 20u);
    EXPECT_EQ(a->fingerprint("SHA-512").value.size(), 64u);
    EXPECT_FALSE(Certificate().valid());
}

TEST(DtlsCertificate, PemRoundTripKeepsTheFingerprint) {
    auto a = Certificate::generate();
    ASSERT_TRUE(a.ok());
    const std::string cert = a->cert_pem();
    const std::string key = a->key_pem();
    EXPECT_EQ(cert.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
    EXPECT_EQ(key.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
    auto b = Certificate::load_pem(cert, key);
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_EQ(b->fingerprint(), a->fingerprint());
    EXPECT_EQ(b->cert_pem(), cert);
}

TEST(DtlsCertificate, LoadPemRejectsGarbageAndForeignKeys) {
    auto a = Certificate::generate();
    auto b = Certificate::generate();
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_FALSE(Certificate::load_pem("", "").ok());
    EXPECT_FALSE(Certificate::load_pem(a->cert_pem(), "nonsense").ok());
    EXPECT_FALSE(Certificate::load_pem("nonsense", a->key_pem()).ok());
    auto mixed = Certificate::load_pem(a->cert_pem(), b->key_pem());
    ASSERT_FALSE(mixed.ok());
    EXPECT_NE(mixed.error().message.find("does not match"), std::string::npos);
}

} // namespace
} // namespace rtcat::dtls
