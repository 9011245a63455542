// STUN codec against RFC 5769 / RFC 8489 B.1 vectors, browser captures and round trips.

#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "core/base/bytes.hpp"
#include "core/base/crc32.hpp"
#include "core/stun/message.hpp"

using namespace rtcat;
using namespace rtcat::stun;

namespace {

base::Bytes read_vector(const std::string& name) {
    std::ifstream f(std::string(RTCAT_SOURCE_DIR) + "/tests/data/stun/" + name, std::ios::binary);
    EXPECT_TRUE(f.good()) << name;
    return base::Bytes(std::istreambuf_iterator<char>(f), {});
}

TransactionId tid_from_hex(const char* hex) {
    auto b = base::from_hex(hex);
    TransactionId t{};
    std::copy(b.begin(), b.end(), t.begin());
    return t;
}

const base::Bytes kShortTermKey = short_term_key("VOkJxbRl1RmTxUk/WvJxBt");
// U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9 in UTF-8.
const std::string kMatrixUser =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";

} // namespace

TEST(StunRfc5769, SampleRequest) {
    auto raw = read_vector("rfc5769_2.1_sample_request.bin");
    auto m = decode(raw);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->method(), Method::Binding);
    EXPECT_EQ(m->cls(), Class::Request);
    EXPECT_EQ(m->transaction_id(), tid_from_hex("b7e7a701bc34d686fa87dfae"));
    EXPECT_EQ(m->get_string(attr::Username), "evtj:h6vY");
    EXPECT_EQ(m->get_string(attr::Software), "STUN test client");
    EXPECT_EQ(m->get_u32(attr::Priority), 0x6e0001ffu);
    EXPECT_EQ(m->get_u64(attr::IceControlled), 0x932ff9b151263b36ull);
    EXPECT_TRUE(m->has(attr::Fingerprint));
    EXPECT_TRUE(m->unknown_comprehension_required().empty());
    EXPECT_EQ(check_integrity(raw, kShortTermKey), IntegrityResult::Valid);
    EXPECT_EQ(check_integrity(raw, short_term_key("wrong")), IntegrityResult::Invalid);
}

TEST(StunRfc5769, SampleIpv4Response) {
    auto raw = read_vector("rfc5769_2.2_sample_ipv4_response.bin");
    auto m = decode(raw);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->cls(), Class::Success);
    EXPECT_EQ(m->get_string(attr::Software), "test vector");
    auto mapped = m->get_xor_address(attr::XorMappedAddress);
    ASSERT_TRUE(mapped);
    EXPECT_EQ(mapped->to_string(), "192.0.2.1:32853");
    EXPECT_EQ(check_integrity(raw, kShortTermKey), IntegrityResult::Valid);
}

TEST(StunRfc5769, SampleIpv6Response) {
    auto raw = read_vector("rfc5769_2.3_sample_ipv6_response.bin");
    auto m = decode(raw);
    ASSERT_TRUE(m.ok()) << m.error().message;
    auto mapped = m->mapped_address();
    ASSERT_TRUE(mapped);
    EXPECT_EQ(mapped->to_string(), "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
    EXPECT_EQ(check_integrity(raw, kShortTermKey), IntegrityResult::Valid);
}

TEST(StunRfc5769, LongTermRequest) {
    auto raw = read_vector("rfc5769_2.4_sample_request_long_term_auth.bin");
    auto m = decode(raw);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->get_string(attr::Username), kMatrixUser);
    EXPECT_EQ(m->get_string(attr::Realm), "example.org");
    EXPECT_EQ(m->get_string(attr::Nonce), "f//499k954d6OL34oL9FSTvy64sA");
    EXPECT_FALSE(m->has(attr::Fingerprint));
    auto key = long_term_key(kMatrixUser, "example.org", "TheMatrIX");
    EXPECT_EQ(check_integrity(raw, key), IntegrityResult::Valid);
    EXPECT_EQ(check_integrity(raw, long_term_key(kMatrixUser, "example.org", "TheMatrix")),
              IntegrityResult::Invalid);
}

TEST(StunRfc8489, AppendixB1Sha256) {
    auto raw = read_vector("message2.raw");
    auto m = decode(raw);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_TRUE(m->has(attr::Userhash));
    EXPECT_TRUE(m->has(attr::MessageIntegritySha256));
    EXPECT_EQ(m->get_string(attr::Realm), "example.org");
    EXPECT_EQ(m->get_string(attr::Nonce), "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA");
    auto alg = m->password_algorithm();
    ASSERT_TRUE(alg);
    EXPECT_EQ(*alg, PasswordAlgorithm::Sha256);
    auto key = long_term_key(kMatrixUser, "example.org", "TheMatrIX", PasswordAlgorithm::Sha256);
    EXPECT_EQ(check_integrity(raw, key), IntegrityResult::Valid);
    EXPECT_EQ(check_integrity(raw, long_term_key(kMatrixUser, "example.org", "TheMatrIX")),
              IntegrityResult::Invalid);
}

TEST(StunVectors, AioiceAndPionAndBrowsers) {
    for (const char* name : {"binding_request.bin", "binding_request_ice_controlled.bin",
                             "binding_request_ice_controlling.bin", "binding_response.bin",
                             "ex1_chrome.stun", "message1.raw"}) {
        auto raw = read_vector(name);
        auto m = decode(raw);
        ASSERT_TRUE(m.ok()) << name << ": " << m.error().message;
        EXPECT_TRUE(looks_like_stun(raw)) << name;
    }
    auto resp = decode(read_vector("binding_response.bin"));
    ASSERT_TRUE(resp.ok());
    EXPECT_EQ(resp->cls(), Class::Success);
    EXPECT_TRUE(resp->mapped_address().has_value());
    auto controlling = decode(read_vector("binding_request_ice_controlling.bin"));
    ASSERT_TRUE(controlling.ok());
    EXPECT_TRUE(controlling->has(attr::IceControlling));
    EXPECT_TRUE(controlling->has(attr::UseCandidate));
    // Chrome's ORIGIN (0x802F) is comprehension-optional: not reported as unknown-required.
    auto chrome = decode(read_vector("ex1_chrome.stun"));
    ASSERT_TRUE(chrome.ok());
    EXPECT_TRUE(chrome->unknown_comprehension_required().empty());
}

TEST(StunVectors, BrowserCaptureCsv) {
    std::ifstream f(std::string(RTCAT_SOURCE_DIR) + "/tests/data/stun/frombrowsers.csv");
    ASSERT_TRUE(f.good());
    std::string line;
    int decoded = 0;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#' || line.starts_with("ip,"))
            continue;
        auto c1 = line.find(',');
        auto c2 = line.find(',', c1 + 1);
        ASSERT_NE(c2, std::string::npos);
        std::string b64 = line.substr(c1 + 1, c2 - c1 - 1);
        // Minimal base64 decode for the fixture.
        static const std::string kAlphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        base::Bytes raw;
        unsigned acc = 0;
        int bits = 0;
        for (char ch : b64) {
            if (ch == '=')
                break;
            auto pos = kAlphabet.find(ch);
            ASSERT_NE(pos, std::string::npos) << line;
            acc = (acc << 6) | static_cast<unsigned>(pos);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                raw.push_back(static_cast<std::uint8_t>(acc >> bits));
            }
        }
        auto m = decode(raw);
        ASSERT_TRUE(m.ok()) << line << ": " << m.error().message;
        EXPECT_EQ(m->method(), Method::Binding);
        // Chrome 55 sent no FINGERPRINT (at most ORIGIN, comprehension-optional); Firefox
        // added one, which decode() has verified.
        EXPECT_EQ(m->has(attr::Fingerprint), line.find("Firefox") != std::string::npos) << line;
        EXPECT_TRUE(m->unknown_comprehension_required().empty()) << line;
        ++decoded;
    }
    EXPECT_GE(decoded, 10);
}

TEST(StunCodec, RoundTripEveryAttribute) {
    auto req = Message::request(Method::Allocate);
    auto v4 = *net::SocketAddr::parse("203.0.113.7:3478");
    auto v6 = *net::SocketAddr::parse("[2001:db8::42]:50000");
    req.add_string(attr::Username, "alice");
    req.add_string(attr::Realm, "example.org");
    req.add_string(attr::Nonce, "abc123");
    req.add_string(attr::Software, "rtcat test");
    req.add_address(attr::MappedAddress, v4);
    req.add_xor_address(attr::XorMappedAddress, v6);
    req.add_xor_address(attr::XorPeerAddress, v4);
    req.add_xor_address(attr::XorRelayedAddress, v6);
    req.add_address(attr::AlternateServer, v6);
    req.add_address(attr::ResponseOrigin, v4);
    req.add_address(attr::OtherAddress, v6);
    req.add_change_request(true, false);
    req.add_u32(attr::ResponsePort, std::uint32_t{4242} << 16);
    req.add_raw(attr::Padding, base::Bytes(7, 0));
    req.add_requested_transport(17);
    req.add_u32(attr::Lifetime, 600);
    req.add_channel_number(0x4001);
    req.add_raw(attr::Data, base::Bytes{1, 2, 3, 4, 5});
    req.add_u32(attr::Priority, 0x7e0000ff);
    req.add_flag(attr::UseCandidate);
    req.add_u64(attr::IceControlling, 0x0102030405060708ull);
    req.add_u64(attr::IceControlled, 0x1112131415161718ull);
    req.add_unknown_attributes({0x0031, 0x0032});
    req.add_password_algorithms({PasswordAlgorithm::Md5, PasswordAlgorithm::Sha256});
    req.add_password_algorithm(PasswordAlgorithm::Sha256);
    req.add_error_code(438, "Stale Nonce");

    auto key = long_term_key("alice", "example.org", "secret");
    for (bool sha256 : {false, true}) {
        EncodeOptions opt{&key, sha256, true};
        auto wire = encode(req, opt);
        ASSERT_TRUE(looks_like_stun(wire));
        auto m = decode(wire);
        ASSERT_TRUE(m.ok()) << m.error().message;
        EXPECT_EQ(check_integrity(wire, key), IntegrityResult::Valid);
        EXPECT_EQ(m->transaction_id(), req.transaction_id());
        EXPECT_EQ(m->method(), Method::Allocate);
        EXPECT_EQ(m->get_address(attr::MappedAddress), v4);
        EXPECT_EQ(m->get_xor_address(attr::XorMappedAddress), v6);
        EXPECT_EQ(m->get_xor_address(attr::XorPeerAddress), v4);
        EXPECT_EQ(m->get_xor_address(attr::XorRelayedAddress), v6);
        EXPECT_EQ(m->get_address(attr::AlternateServer), v6);
        EXPECT_EQ(m->get_address(attr::ResponseOrigin), v4);
        EXPECT_EQ(m->get_address(attr::OtherAddress), v6);
        EXPECT_EQ(m->change_request(), std::make_pair(true, false));
        EXPECT_EQ(m->requested_transport(), 17);
        EXPECT_EQ(m->get_u32(attr::Lifetime), 600u);
        EXPECT_EQ(m->channel_number(), 0x4001);
        EXPECT_EQ(m->find(attr::Data)->value, (base::Bytes{1, 2, 3, 4, 5}));
        EXPECT_EQ(m->find(attr::Padding)->value.size(), 7u);
        EXPECT_TRUE(m->has(attr::UseCandidate));
        EXPECT_EQ(m->get_u64(attr::IceControlling), 0x0102030405060708ull);
        EXPECT_EQ(m->unknown_attributes(), (std::vector<std::uint16_t>{0x0031, 0x0032}));
        EXPECT_EQ(m->password_algorithms(),
                  (std::vector{PasswordAlgorithm::Md5, PasswordAlgorithm::Sha256}));
        auto ec = m->error_code();
        ASSERT_TRUE(ec);
        EXPECT_EQ(ec->code, 438);
        EXPECT_EQ(ec->reason, "Stale Nonce");
        EXPECT_EQ(m->get_string(attr::Username), "alice");
        // Re-encoding the decoded message reproduces the bytes exactly.
        EXPECT_EQ(encode(*m, opt), wire);
        // Any flipped bit in the body breaks integrity (or the fingerprint).
        auto tampered = wire;
        tampered[30] ^= 0x01;
        auto t = decode(tampered);
        EXPECT_FALSE(t.ok()); // FINGERPRINT catches it first
    }
}

TEST(StunCodec, ErrorReasonDropsNulPadding) {
    auto m = Message::request(Method::Allocate);
    m.add_raw(attr::ErrorCode, base::Bytes{0, 0, 4, 40, 'B', 'a', 'd', 0, 0});
    auto d = decode(encode(m));
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(d->error_code());
    EXPECT_EQ(d->error_code()->code, 440);
    EXPECT_EQ(d->error_code()->reason, "Bad");
}

TEST(StunCodec, IntegrityWithoutFingerprintDetectsTampering) {
    auto req = Message::request(Method::Binding);
    req.add_string(attr::Username, "a:b");
    auto key = short_term_key("pw");
    auto wire = encode(req, {&key, false, false});
    EXPECT_EQ(check_integrity(wire, key), IntegrityResult::Valid);
    wire[24] ^= 0x20;
    ASSERT_TRUE(decode(wire).ok());
    EXPECT_EQ(check_integrity(wire, key), IntegrityResult::Invalid);
    auto plain = encode(req);
    EXPECT_EQ(check_integrity(plain, key), IntegrityResult::Absent);
}

TEST(StunCodec, UnknownComprehensionRequiredIsReported) {
    auto m = Message::request(Method::Binding);
    m.add_raw(0x0031, base::Bytes{1, 2, 3, 4});
    m.add_raw(0x8031, base::Bytes{1, 2, 3, 4}); // comprehension-optional: not reported
    auto d = decode(encode(m));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->unknown_comprehension_required(), std::vector<std::uint16_t>{0x0031});
}

TEST(StunCodec, AttributesAfterIntegrityAreIgnored) {
    auto m = Message::request(Method::Binding);
    auto key = short_term_key("k");
    auto wire = encode(m, {&key, false, false});
    // Append SOFTWARE after MESSAGE-INTEGRITY and fix the length.
    base::ByteWriter w(wire);
    w.u16(attr::Software);
    w.u16(4);
    w.bytes(std::string_view("evil"));
    w.patch_u16(2, static_cast<std::uint16_t>(wire.size() - kHeaderSize));
    auto d = decode(wire);
    ASSERT_TRUE(d.ok());
    EXPECT_FALSE(d->has(attr::Software));
    EXPECT_EQ(check_integrity(wire, key), IntegrityResult::Valid);
}

TEST(StunCodec, RejectsMalformed) {
    auto good = encode(Message::request(Method::Binding), {nullptr, false, true});
    EXPECT_FALSE(decode(base::ByteView(good).first(19)).ok());
    auto bad_cookie = good;
    bad_cookie[4] ^= 1;
    EXPECT_FALSE(decode(bad_cookie).ok());
    auto top_bits = good;
    top_bits[0] |= 0x80;
    EXPECT_FALSE(decode(top_bits).ok());
    auto long_len = good;
    long_len[3] += 4;
    EXPECT_FALSE(decode(long_len).ok());
    auto bad_fp = good;
    bad_fp.back() ^= 0xFF;
    auto r = decode(bad_fp);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("FINGERPRINT"), std::string::npos);
    // Attribute whose length overruns the message.
    auto m = Message::request(Method::Binding);
    m.add_string(attr::Software, "abcd");
    auto wire = encode(m);
    wire[kHeaderSize + 3] = 40;
    EXPECT_FALSE(decode(wire).ok());
    // Bad address families and sizes are rejected by the typed accessor, not the codec.
    auto a = Message::request(Method::Binding);
    a.add_raw(attr::XorMappedAddress, base::Bytes{0, 3, 0, 1, 1, 2, 3, 4});
    auto da = decode(encode(a));
    ASSERT_TRUE(da.ok());
    EXPECT_FALSE(da->mapped_address().has_value());
    auto e = Message::request(Method::Binding);
    e.add_raw(attr::ErrorCode, base::Bytes{0, 0, 9, 0});
    auto de = decode(encode(e));
    ASSERT_TRUE(de.ok());
    EXPECT_FALSE(de->error_code().has_value());
}

// FINGERPRINT's CRC-32 (now core/base/crc32, shared with the signaling token): the standard
// check value of ITU-T V.42 / zlib.
TEST(StunCodec, Crc32CheckValue) {
    const std::string text = "123456789";
    EXPECT_EQ(base::crc32(
                  base::ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())),
              0xCBF43926u);
    EXPECT_EQ(base::crc32({}), 0u);
}

TEST(StunCodec, MethodAndClassBits) {
    for (auto method : {Method::Binding, Method::Allocate, Method::Refresh, Method::Send,
                        Method::Data, Method::CreatePermission, Method::ChannelBind}) {
        for (auto cls : {Class::Request, Class::Indication, Class::Success, Class::Error}) {
            Message m(method, cls, new_transaction_id());
            auto d = decode(encode(m));
            ASSERT_TRUE(d.ok());
            EXPECT_EQ(d->method(), method);
            EXPECT_EQ(d->cls(), cls);
        }
    }
    // RFC 8489 §5: a Binding success response is type 0x0101, an Allocate error 0x0113.
    auto w = encode(Message(Method::Binding, Class::Success, {}));
    EXPECT_EQ(w[0], 0x01);
    EXPECT_EQ(w[1], 0x01);
    w = encode(Message(Method::Allocate, Class::Error, {}));
    EXPECT_EQ(w[0], 0x01);
    EXPECT_EQ(w[1], 0x13);
}

TEST(StunChannelData, RoundTripAndRejects) {
    base::Bytes payload{9, 8, 7};
    auto wire = encode_channel_data(0x4000, payload);
    EXPECT_EQ(wire.size(), 8u);
    auto cd = parse_channel_data(wire);
    ASSERT_TRUE(cd);
    EXPECT_EQ(cd->channel, 0x4000);
    EXPECT_EQ(base::Bytes(cd->data.begin(), cd->data.end()), payload);
    // Unpadded (allowed over UDP).
    auto unpadded = base::ByteView(wire).first(7);
    EXPECT_TRUE(parse_channel_data(unpadded));
    // Channel outside 0x4000-0x4FFF, short length, overlong length.
    auto bad = wire;
    bad[0] = 0x50;
    EXPECT_FALSE(parse_channel_data(bad));
    bad = wire;
    bad[3] = 20;
    EXPECT_FALSE(parse_channel_data(bad));
    auto extra = wire;
    extra.insert(extra.end(), 8, 0);
    EXPECT_FALSE(parse_channel_data(extra));
    EXPECT_FALSE(parse_channel_data(base::ByteView(wire).first(3)));
}

TEST(StunKeys, LongTermKeyIsMd5OfUserRealmPass) {
    // MD5("user:realm:pass") = 8493fbc53ba582fb4c044c456bdc40eb
    EXPECT_EQ(base::to_hex(long_term_key("user", "realm", "pass")),
              "8493fbc53ba582fb4c044c456bdc40eb");
}
