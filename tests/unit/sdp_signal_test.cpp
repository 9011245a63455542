// Signaling forms (core/sdp/signal.hpp): plain SDP, browser JSON and the rtcat2: token. Framing
// is checked by feeding every prefix of a stream (as a pipe or terminal delivers it), JSON by
// escape round trips, the token by size and by what extract_remote() reads back.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/base/crc32.hpp"
#include "core/base/printable.hpp"
#include "core/sdp/candidate_line.hpp"
#include "core/sdp/signal.hpp"

namespace rtcat::sdp {
namespace {

namespace fs = std::filesystem;
const fs::path kCorpus = fs::path(RTCAT_SOURCE_DIR) / "tests" / "data" / "corpus" / "sdp";

LocalParams params(std::size_t ncand) {
    LocalParams p;
    p.ice_ufrag = "x9Kq";
    p.ice_pwd = "Zf3nR8vLw0pQ2sT6yU1aB4cD";
    p.fingerprint.algorithm = "sha-256";
    for (int i = 0; i < 32; ++i)
        p.fingerprint.value.push_back(static_cast<std::uint8_t>(0xA0 + i));
    p.session_id = 8148572839875102105ull;
    // Chromium-style candidates, extensions included.
    const char* all[] = {
        "1467250027 1 udp 2122260223 192.168.1.5 46243 typ host generation 0 network-id 1 "
        "network-cost 10",
        "2909131539 1 udp 2122197247 2001:db8:85a3::8a2e:370:7334 51634 typ host generation 0 "
        "network-id 2 network-cost 10",
        "842163049 1 udp 1686052607 203.0.113.7 46243 typ srflx raddr 192.168.1.5 rport 46243 "
        "generation 0 network-id 1 network-cost 10",
        "3745478135 1 udp 41885439 198.51.100.20 63002 typ relay raddr 203.0.113.7 rport 46243 "
        "generation 0 network-id 1 network-cost 10",
        "1 1 TCP 2105458943 e2494022-4d9a-4c1e-a750-cc48d4f8d6ee.local 9 typ host tcptype active",
    };
    for (std::size_t i = 0; i < ncand && i < std::size(all); ++i)
        p.candidates.emplace_back(all[i]);
    return p;
}

SignalMessage offer_message(std::size_t ncand = 4) {
    return SignalMessage{.type = SdpType::Offer, .sdp = serialize(make_offer(params(ncand)))};
}

std::string must_encode(const SignalMessage& m, SignalFormat f) {
    auto r = encode_signal(m, f);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : std::string();
}

// Feeds every prefix of `stream` (eof=false), then the whole with eof=true; checks that framing
// never reports a message before it is complete and splits it exactly where expected.
void check_framing(const std::string& stream, const std::vector<std::size_t>& boundaries,
                   SignalFormat format) {
    std::size_t base = 0;
    for (std::size_t want : boundaries) {
        std::string_view rest = std::string_view(stream).substr(base);
        std::size_t expect = want - base;
        std::optional<Framed> first;
        std::size_t first_at = 0;
        for (std::size_t n = 0; n <= rest.size(); ++n) {
            auto r = frame_signal(rest.substr(0, n), false);
            ASSERT_TRUE(r) << "prefix " << n << ": " << r.error().message;
            if (r->has_value()) {
                first = *r;
                first_at = n;
                break;
            }
        }
        if (!first) {
            // Only a message ended by eof may stay incomplete until eof.
            auto r = frame_signal(rest, true);
            ASSERT_TRUE(r) << r.error().message;
            ASSERT_TRUE(r->has_value());
            first = *r;
            first_at = rest.size();
        }
        EXPECT_EQ(first->consumed, expect);
        EXPECT_EQ(first->format, format);
        EXPECT_LE(first->consumed, first_at);
        auto decoded = decode_signal(rest.substr(0, first->consumed), SdpType::Answer);
        EXPECT_TRUE(decoded) << decoded.error().message;
        base = want;
    }
}

TEST(SdpSignal, PlainFramingAtEveryByte) {
    auto msg = offer_message();
    std::string one = must_encode(msg, SignalFormat::Plain);
    EXPECT_EQ(one.substr(one.size() - 4), "\r\n\r\n");
    std::string stream = "\n  \r\n" + one + one;
    check_framing(stream, {5 + one.size(), 5 + 2 * one.size()}, SignalFormat::Plain);
    // Without the blank line, eof ends the message.
    std::string last = msg.sdp;
    auto none = frame_signal(last, false);
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
    auto at_eof = frame_signal(last, true);
    ASSERT_TRUE(at_eof && at_eof->has_value());
    EXPECT_EQ((*at_eof)->consumed, last.size());
    // LF-only SDP from a terminal.
    auto lf = frame_signal("v=0\no=- 1 2 IN IP4 x\ns=-\n\nv=0", false);
    ASSERT_TRUE(lf && lf->has_value());
    EXPECT_EQ((*lf)->consumed, 26u);
}

TEST(SdpSignal, JsonFramingAtEveryByte) {
    auto msg = offer_message();
    std::string one = must_encode(msg, SignalFormat::Json);
    EXPECT_EQ(one.find('\n'), one.size() - 1);
    EXPECT_EQ(one.rfind("{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- ", 0), 0u);
    // Braces and quotes inside the string must not end the object early.
    SignalMessage tricky{.type = SdpType::Answer, .sdp = msg.sdp + "a=x:}{\"\\\r\n"};
    std::string two = must_encode(tricky, SignalFormat::Json);
    std::string stream = one + two;
    // The '}' ends each message; the newline after it is left for the next call to skip.
    check_framing(stream, {one.size() - 1, one.size() + two.size() - 1}, SignalFormat::Json);
    auto cut = frame_signal(one.substr(0, one.size() - 3), true);
    ASSERT_FALSE(cut);
    EXPECT_EQ(cut.error().message, "JSON signal cut short by the end of input");
}

TEST(SdpSignal, TokenFramingAtEveryByte) {
    auto msg = offer_message();
    std::string one = must_encode(msg, SignalFormat::Token);
    std::string stream = "\n" + one + one;
    check_framing(stream, {1 + one.size(), 1 + 2 * one.size()}, SignalFormat::Token);
    // No newline: complete only at eof.
    std::string bare = one.substr(0, one.size() - 1);
    auto r = frame_signal(bare, false);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->has_value());
    r = frame_signal(bare, true);
    ASSERT_TRUE(r && r->has_value());
    EXPECT_EQ((*r)->consumed, bare.size());
    // A partial prefix waits; a wrong one fails.
    EXPECT_FALSE(frame_signal("rtc", false)->has_value());
    EXPECT_FALSE(frame_signal("rtcx", false));
}

TEST(SdpSignal, EofAndGarbage) {
    auto empty = frame_signal("  \r\n\t", true);
    ASSERT_TRUE(empty);
    EXPECT_FALSE(empty->has_value());
    auto v = frame_signal("v", false);
    ASSERT_TRUE(v);
    EXPECT_FALSE(v->has_value());
    EXPECT_FALSE(frame_signal("v", true));
    auto g = frame_signal("hello world\n", false);
    ASSERT_FALSE(g);
    EXPECT_EQ(g.error().message.rfind("unrecognized signaling input", 0), 0u);
    // Unterminated plain SDP beyond the size limit is refused before eof.
    std::string huge = "v=0\n" + std::string(kMaxSdpBytes + 10, 'x');
    EXPECT_FALSE(frame_signal(huge, false));
    std::string deep(100, '[');
    EXPECT_FALSE(frame_signal("{\"a\":" + deep, false));
    // Seeded random bytes: errors, never crashes, and consumed never exceeds the input.
    std::uint64_t seed = 0x5eed5d9;
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::uint64_t x = seed;
    for (int round = 0; round < 2000; ++round) {
        std::string s;
        std::size_t n = (x >> 7) % 64;
        for (std::size_t i = 0; i < n; ++i) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            const char alphabet[] = "v=0\r\n{}\"\\:rtcat1:ABCxyz-_ ";
            s.push_back(alphabet[(x >> 33) % (sizeof(alphabet) - 1)]);
        }
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        for (bool eof : {false, true}) {
            auto r = frame_signal(s, eof);
            if (r && r->has_value()) {
                EXPECT_LE((*r)->consumed, s.size());
                (void)decode_signal(std::string_view(s).substr(0, (*r)->consumed), SdpType::Offer);
            }
        }
    }
}

TEST(SdpSignal, JsonEscapes) {
    std::string all;
    for (int c = 1; c < 0x80; ++c)
        all.push_back(static_cast<char>(c));
    all += "\xC3\xA9\xF0\x9F\x98\x80"; // é, 😀 pass through as UTF-8
    auto esc = json_escape(all);
    EXPECT_EQ(esc.find('\n'), std::string::npos);
    EXPECT_NE(esc.find("\\u0001"), std::string::npos);
    EXPECT_NE(esc.find("\\n\\u000b\\f\\r"), std::string::npos);
    auto back = json_unescape(esc);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, all);

    EXPECT_EQ(*json_unescape("\\u00e9\\ud83d\\ude00\\/"), "\xC3\xA9\xF0\x9F\x98\x80/");
    EXPECT_EQ(*json_unescape("\\u0041\\u20AC"), "A\xE2\x82\xAC");
    EXPECT_FALSE(json_unescape("\\ud83d"));  // lone high surrogate
    EXPECT_FALSE(json_unescape("\\ud83dx")); // high surrogate + text
    EXPECT_FALSE(json_unescape("\\ude00"));  // lone low surrogate
    EXPECT_FALSE(json_unescape("\\u12"));    // short
    EXPECT_FALSE(json_unescape("\\x41"));    // unknown escape
    EXPECT_FALSE(json_unescape("a\nb"));     // raw control character
    EXPECT_FALSE(json_unescape("\\"));       // dangling backslash
}

TEST(SdpSignal, JsonDecodeIsTolerantOfShapeButStrictOnContent) {
    auto msg = offer_message(1);
    std::string sdp_json = "\"" + json_escape(msg.sdp) + "\"";
    // Key order, whitespace, extra keys of every JSON kind.
    std::string j = " {\n \"sdp\" : " + sdp_json +
                    ",\n \"extra\": {\"a\": [1, -2.5e3, true, false, null, \"}\"]},\n"
                    " \"type\" :\"offer\" }\n";
    auto r = decode_signal(j, std::nullopt);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->type, SdpType::Offer);
    EXPECT_EQ(r->sdp, msg.sdp);
    auto f = frame_signal(j, false);
    ASSERT_TRUE(f && f->has_value());
    EXPECT_EQ((*f)->format, SignalFormat::Json);

    auto err = [](std::string_view text) {
        auto d = decode_signal(text, std::nullopt);
        return d ? std::string("<ok>") : d.error().message;
    };
    EXPECT_EQ(err("{\"sdp\":" + sdp_json + "}"), "JSON signal has no \"type\"");
    EXPECT_EQ(err("{\"type\":\"offer\"}"), "JSON signal has no \"sdp\"");
    EXPECT_EQ(err("{\"type\":\"pranswer\",\"sdp\":" + sdp_json + "}"),
              "unsupported SDP type \"pranswer\" (expected offer or answer)");
    EXPECT_EQ(err("{\"type\":1,\"sdp\":" + sdp_json + "}"),
              "JSON signal: \"type\" must be a string");
    EXPECT_EQ(err("{\"type\":\"offer\",\"sdp\":\"hello\"}"),
              "SDP in JSON: line 1: expected <type>=<value>");
    EXPECT_EQ(err("{\"type\":\"offer\" \"sdp\":\"x\"}"), "invalid JSON: expected ',' or '}'");
    EXPECT_EQ(err("{\"type\":\"offer\",\"sdp\":" + sdp_json + "} x"),
              "invalid JSON: text after the object");
    EXPECT_EQ(err("{\"a\":tru,\"type\":\"offer\"}"), "invalid JSON: unexpected character");
}

TEST(SdpSignal, PlainDecodeNeedsTypeAndValidSdp) {
    auto msg = offer_message(2);
    auto none = decode_signal(msg.sdp, std::nullopt);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().message, "plain SDP does not say whether it is an offer or an answer");
    auto r = decode_signal("\r\n" + msg.sdp + "\r\n\r\n", SdpType::Answer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->type, SdpType::Answer);
    EXPECT_EQ(r->sdp, msg.sdp);
    auto bad = decode_signal("v=0\no=- 1\n", SdpType::Offer);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "line 2: o= needs 6 fields");
}

TEST(SdpSignal, TokenRoundTripIsCompactAndComplete) {
    auto msg = offer_message(4);
    auto token = encode_token(msg);
    ASSERT_TRUE(token) << token.error().message;
    EXPECT_LT(token->size(), 400u) << *token;
    RecordProperty("token_chars", static_cast<int>(token->size()));
    EXPECT_EQ(token->rfind("rtcat2:", 0), 0u);
    EXPECT_EQ(token->find_first_not_of(
                  "rtcat2:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    auto back = decode_signal(*token + "\n", std::nullopt);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->type, SdpType::Offer);
    auto sd = parse(back->sdp);
    ASSERT_TRUE(sd) << sd.error().message;
    auto r = extract_remote(*sd, SdpType::Offer);
    ASSERT_TRUE(r) << r.error().message;
    auto want = params(4);
    EXPECT_EQ(r->ice_ufrag, want.ice_ufrag);
    EXPECT_EQ(r->ice_pwd, want.ice_pwd);
    EXPECT_EQ(r->fingerprints.at(0), want.fingerprint);
    EXPECT_EQ(r->setup, sdp::Setup::ActPass);
    EXPECT_EQ(r->mid, "0");
    EXPECT_EQ(r->sctp_port, 5000);
    EXPECT_EQ(r->max_message_size, 262144u);
    EXPECT_TRUE(r->end_of_candidates);
    ASSERT_EQ(r->candidates.size(), 4u);
    // Candidates come back with the browser-only hints dropped, everything else intact.
    for (std::size_t i = 0; i < 4; ++i) {
        auto a = parse_candidate_line(want.candidates[i]);
        auto b = parse_candidate_line(r->candidates[i]);
        ASSERT_TRUE(a && b);
        a->extensions.clear();
        EXPECT_EQ(*a, *b) << r->candidates[i];
    }
    // Encoding the decoded SDP again gives the same token (a fixed point).
    auto again = encode_token(*back);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(*again, *token);
}

TEST(SdpSignal, TokenKeepsAnswersTcpMdnsAndExtraFingerprints) {
    auto p = params(5);
    p.setup = sdp::Setup::Passive;
    p.mid = "data";
    p.sctp_port = 5001;
    p.max_message_size = 65536;
    p.end_of_candidates = false;
    p.ice_trickle = true;
    p.candidates.push_back("foo+/ 2 udp 7 1.2.3.4 9 typ prflx custom-ext value");
    auto sd = make_description(p, SdpType::Answer);
    sd.media[0].attributes.push_back(
        Attribute{.name = "fingerprint",
                  .value = "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"});
    SignalMessage msg{.type = SdpType::Answer, .sdp = serialize(sd)};
    auto token = encode_token(msg);
    ASSERT_TRUE(token) << token.error().message;
    auto back = decode_token(*token);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->type, SdpType::Answer);
    auto r = extract_remote(*parse(back->sdp), SdpType::Answer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->setup, sdp::Setup::Passive);
    EXPECT_EQ(r->mid, "data");
    EXPECT_EQ(r->sctp_port, 5001);
    EXPECT_EQ(r->max_message_size, 65536u);
    EXPECT_FALSE(r->end_of_candidates);
    EXPECT_EQ(r->fingerprints.size(), 2u);
    ASSERT_EQ(r->candidates.size(), 6u);
    EXPECT_EQ(r->candidates[4],
              "1 1 TCP 2105458943 e2494022-4d9a-4c1e-a750-cc48d4f8d6ee.local 9 typ host "
              "tcptype active");
    EXPECT_EQ(r->candidates[5], "foo+/ 2 udp 7 1.2.3.4 9 typ prflx custom-ext value");
    auto bsd = parse(back->sdp);
    EXPECT_EQ(ice_options(*bsd, bsd->media[0]), std::vector<std::string>{"trickle"});
}

TEST(SdpSignal, TokenRefusesWhatItCannotCarry) {
    auto path = kCorpus / "str0m" / "chrome_2022_datachannel_audio_video_offer.sdp";
    if (fs::exists(path)) {
        std::ifstream f(path, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        SignalMessage msg{.type = SdpType::Offer, .sdp = ss.str()};
        auto t = encode_signal(msg, SignalFormat::Token);
        ASSERT_FALSE(t);
        EXPECT_EQ(t.error().message, "cannot encode as an rtcat2: token: it has sections other "
                                     "than one data channel");
        EXPECT_TRUE(encode_signal(msg, SignalFormat::Json)); // the fallback works
    }
    auto bad_cand = params(1);
    bad_cand.candidates = {"1 1 udp 1 1.2.3.4 5 typ host raddr"};
    SignalMessage m{.type = SdpType::Offer, .sdp = serialize(make_offer(bad_cand))};
    auto t = encode_token(m);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().message,
              "cannot encode as an rtcat2: token: candidate: raddr needs an address");
}

// Regression (fuzz_signal): the encoder wrote candidates with more than 16 extensions, which the
// decoder refuses; a peer got a token it could not read. Every limit of the decoder is now
// checked by the encoder, which fails instead (and the CLI falls back to JSON).
TEST(SdpSignal, TokenEncoderRefusesWhatTheDecoderWould) {
    auto with_candidates = [](std::vector<std::string> candidates) {
        auto p = params(0);
        p.candidates = std::move(candidates);
        return SignalMessage{.type = SdpType::Offer, .sdp = serialize(make_offer(p))};
    };
    auto extensions = [](int n) {
        std::string s = "1 1 udp 2122260223 192.168.1.5 46243 typ host generation 0";
        for (int i = 0; i < n; ++i)
            s += " x" + std::to_string(i) + " " + std::to_string(i);
        return s;
    };
    // 16 kept extensions (generation is dropped) fit and come back in order.
    auto ok = with_candidates({extensions(16)});
    auto token = encode_token(ok);
    ASSERT_TRUE(token) << token.error().message;
    auto back = decode_token(*token);
    ASSERT_TRUE(back) << back.error().message;
    auto r = extract_remote(*parse(back->sdp), SdpType::Offer);
    ASSERT_TRUE(r);
    auto want = parse_candidate_line(extensions(16));
    want->extensions.erase(want->extensions.begin()); // generation
    EXPECT_EQ(*parse_candidate_line(r->candidates.at(0)), *want);

    auto refused = [](const SignalMessage& m, const std::string& why) {
        auto t = encode_token(m);
        ASSERT_FALSE(t) << *t;
        EXPECT_EQ(t.error().message, "cannot encode as an rtcat2: token: " + why);
        EXPECT_FALSE(encode_signal(m, SignalFormat::Token));
        EXPECT_TRUE(encode_signal(m, SignalFormat::Json)); // what write_signal falls back to
    };
    refused(with_candidates({extensions(17)}), "a candidate has more than 16 extensions");
    // The transport's case is one bit: "Udp" would come back as "udp".
    refused(with_candidates({"1 1 Udp 7 1.2.3.4 9 typ host"}),
            "a candidate's transport is in mixed case");
    // The decoder refuses tokens over kMaxTokenSignalBytes; long extension values get there.
    std::vector<std::string> big;
    for (int i = 0; i < 20; ++i)
        big.push_back("1 1 udp 7 1.2.3.4 9 typ host x " + std::string(900, 'a'));
    refused(with_candidates(big), "it would be longer than 16384 bytes");
}

constexpr std::string_view kB64url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const std::string kDamaged =
    "the token is damaged (a character was changed, lost or added): copy it again";

// Test-side base64url (no padding) to build tokens by hand.
std::string b64(const base::Bytes& in) {
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (auto b : in) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(kB64url[(acc >> bits) & 0x3F]);
        }
    }
    if (bits > 0)
        out.push_back(kB64url[(acc << (6 - bits)) & 0x3F]);
    return out;
}

base::Bytes unb64(std::string_view s) {
    base::Bytes out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        acc = (acc << 6) | static_cast<std::uint32_t>(kB64url.find(c));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>(acc >> bits));
        }
    }
    return out;
}

std::string checked_token(base::Bytes payload) {
    std::uint32_t crc = base::crc32(payload);
    for (int k = 0; k < 4; ++k)
        payload.push_back(static_cast<std::uint8_t>(crc >> (8 * k)));
    return "rtcat2:" + b64(payload);
}

// A token is copy-pasted between terminals: a typo must not decode to a plausible description
// (a wrong port or fingerprint byte would only show as a confusing connect failure later).
TEST(SdpSignal, TokenChecksumCatchesEveryTypo) {
    auto msg = offer_message(4);
    auto token = *encode_token(msg);
    ASSERT_EQ(token.rfind("rtcat2:", 0), 0u);
    // The layout is the rtcat1: payload plus its CRC-32, least significant byte first.
    auto raw = unb64(std::string_view(token).substr(7));
    ASSERT_GT(raw.size(), 4u);
    base::Bytes payload(raw.begin(), raw.end() - 4);
    EXPECT_EQ(checked_token(payload), token);
    // Still short for a paste: 4 bytes more than the unchecked form.
    EXPECT_LE(token.size(), 7 + (payload.size() * 4 + 2) / 3 + 6);

    auto damaged = [&](const std::string& t, const std::string& what) {
        auto r = decode_token(t);
        ASSERT_FALSE(r) << what << " decoded: " << t;
        EXPECT_EQ(r.error().message, kDamaged) << what;
        auto s = decode_signal(t + "\n", std::nullopt);
        ASSERT_FALSE(s);
        EXPECT_EQ(s.error().message, kDamaged) << what;
    };
    for (std::size_t i = 7; i < token.size(); ++i) {
        for (char c : kB64url) {
            if (c == token[i])
                continue;
            std::string t = token;
            t[i] = c;
            damaged(t, "changed at " + std::to_string(i));
        }
        for (char c : std::string(".!~ \"")) {
            std::string t = token;
            t[i] = c;
            damaged(t, "non-base64 at " + std::to_string(i));
        }
        std::string lost = token;
        lost.erase(i, 1);
        damaged(lost, "lost at " + std::to_string(i));
        for (char c : std::string("AQg_-")) {
            std::string added = token;
            added.insert(i, 1, c);
            damaged(added, "added at " + std::to_string(i));
        }
    }
    damaged(token + "A", "added at the end");
    damaged("rtcat2:", "empty");

    // A checksum that holds over a bad payload is not damage in transit: its own error.
    base::Bytes bad = payload;
    bad.push_back(0);
    auto r = decode_token(checked_token(bad));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "invalid rtcat token: trailing bytes");

    // rtcat1: tokens (no checksum) from older builds are still read, the same payload.
    auto legacy = decode_token("rtcat1:" + b64(payload));
    ASSERT_TRUE(legacy) << legacy.error().message;
    EXPECT_EQ(legacy->sdp, decode_token(token)->sdp);
}

TEST(SdpSignal, CorruptTokensAreErrors) {
    auto token = *encode_token(offer_message(4));
    EXPECT_FALSE(decode_token("rtcat1:"));
    EXPECT_FALSE(decode_token("rtcat1:!!!!"));
    EXPECT_FALSE(decode_token("rtcat3:" + token.substr(7)));
    // Every truncation and every single-byte change is an error or a valid description.
    for (std::size_t n = 7; n < token.size(); ++n) {
        auto r = decode_token(token.substr(0, n));
        if (r) {
            EXPECT_TRUE(parse(r->sdp).ok());
        }
    }
    for (std::size_t i = 7; i < token.size(); ++i)
        for (char c : std::string("A_z9-")) {
            std::string t = token;
            t[i] = c;
            auto r = decode_token(t);
            if (r) {
                auto sd = parse(r->sdp);
                ASSERT_TRUE(sd);
                EXPECT_TRUE(extract_remote(*sd, r->type).ok());
            }
        }
}

// JSON escapes let a peer put any byte in "type"; the error quotes it printably.
TEST(SdpSignal, JsonErrorsQuotePeerBytesPrintably) {
    auto r = decode_signal(R"({"type":"\u001b[2J\u0007","sdp":"v=0"})", std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "unsupported SDP type \"\\e[2J\\x07\" (expected offer or answer)");
    r = decode_signal(R"({"type":"offer","sdp":"v=0\r\nx\u001b"})", std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_TRUE(base::is_clean_utf8(r.error().message)) << r.error().message;
}

TEST(SdpSignal, BrowserJsonFromCorpusSdps) {
    // Browser SDPs as JSON.stringify(pc.localDescription) would carry them.
    for (const char* name : {"medooze/datachannel_only.sdp", "str0m/parse_safari_data_channel.sdp",
                             "aiortc/datachannel_firefox_63.sdp"}) {
        auto path = kCorpus / name;
        if (!fs::exists(path))
            GTEST_SKIP() << "corpus not present";
        std::ifstream f(path, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        SignalMessage msg{.type = SdpType::Offer, .sdp = ss.str()};
        auto json = must_encode(msg, SignalFormat::Json);
        auto framed = frame_signal(json, false);
        ASSERT_TRUE(framed && framed->has_value()) << name;
        auto back =
            decode_signal(std::string_view(json).substr(0, (*framed)->consumed), std::nullopt);
        ASSERT_TRUE(back) << name << ": " << back.error().message;
        EXPECT_EQ(*back, msg);
        // And as a token, the browser's data channel offer fits easily.
        auto token = encode_token(msg);
        ASSERT_TRUE(token) << name << ": " << token.error().message;
        EXPECT_LT(token->size(), 400u);
        auto tb = decode_token(*token);
        ASSERT_TRUE(tb) << tb.error().message;
        auto r1 = extract_remote(*parse(msg.sdp), SdpType::Offer);
        auto r2 = extract_remote(*parse(tb->sdp), SdpType::Offer);
        ASSERT_TRUE(r1 && r2);
        EXPECT_EQ(r1->ice_ufrag, r2->ice_ufrag);
        EXPECT_EQ(r1->fingerprints, r2->fingerprints);
        EXPECT_EQ(r1->mid, r2->mid);
        EXPECT_EQ(r1->max_message_size, r2->max_message_size);
        EXPECT_EQ(r1->candidates.size(), r2->candidates.size());
    }
}

} // namespace
} // namespace rtcat::sdp
