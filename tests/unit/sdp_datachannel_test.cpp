// JSEP offer/answer for data-channel-only sessions (core/sdp/datachannel.hpp): our offer in
// Chromium's layout, answers to real Chromium/Firefox/Safari offers from the shared corpus
// (media sections rejected with port 0), and every user-facing extract_remote() error.

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/base/printable.hpp"
#include "core/sdp/candidate_line.hpp"
#include "core/sdp/datachannel.hpp"

namespace rtcat::sdp {
namespace {

namespace fs = std::filesystem;
const fs::path kCorpus = fs::path(RTCAT_SOURCE_DIR) / "tests" / "data" / "corpus" / "sdp";

std::string read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

Fingerprint test_fingerprint() {
    Fingerprint fp{.algorithm = "sha-256", .value = {}};
    for (int i = 0; i < 32; ++i)
        fp.value.push_back(static_cast<std::uint8_t>(i * 7 + 1));
    return fp;
}

LocalParams local_params() {
    LocalParams p;
    p.ice_ufrag = "Ab+/";
    p.ice_pwd = "0123456789abcdefghijkl";
    p.fingerprint = test_fingerprint();
    p.setup = sdp::Setup::ActPass;
    p.candidates = {"1 1 udp 2122260223 192.0.2.10 50000 typ host generation 0",
                    "2 1 udp 1686052607 203.0.113.5 60000 typ srflx raddr 192.0.2.10 rport 50000"};
    p.session_id = 4611686018427387904ull;
    return p;
}

TEST(SdpDataChannel, OfferLooksLikeChromiums) {
    auto p = local_params();
    p.ice_trickle = true;
    std::string text = serialize(make_offer(p));
    EXPECT_EQ(text, "v=0\r\n"
                    "o=- 4611686018427387904 2 IN IP4 127.0.0.1\r\n"
                    "s=-\r\n"
                    "t=0 0\r\n"
                    "a=group:BUNDLE 0\r\n"
                    "a=extmap-allow-mixed\r\n"
                    "a=msid-semantic: WMS\r\n"
                    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                    "c=IN IP4 0.0.0.0\r\n"
                    "a=candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host generation 0\r\n"
                    "a=candidate:2 1 udp 1686052607 203.0.113.5 60000 typ srflx raddr "
                    "192.0.2.10 rport 50000\r\n"
                    "a=end-of-candidates\r\n"
                    "a=ice-ufrag:Ab+/\r\n"
                    "a=ice-pwd:0123456789abcdefghijkl\r\n"
                    "a=ice-options:trickle\r\n"
                    "a=fingerprint:sha-256 " +
                        format_fingerprint(test_fingerprint()).substr(8) +
                        "\r\n"
                        "a=setup:actpass\r\n"
                        "a=mid:0\r\n"
                        "a=sctp-port:5000\r\n"
                        "a=max-message-size:262144\r\n");
}

TEST(SdpDataChannel, OfferRoundTripsThroughExtractRemote) {
    auto p = local_params();
    auto parsed = parse(serialize(make_offer(p)));
    ASSERT_TRUE(parsed) << parsed.error().message;
    auto r = extract_remote(*parsed, SdpType::Offer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->ice_ufrag, p.ice_ufrag);
    EXPECT_EQ(r->ice_pwd, p.ice_pwd);
    ASSERT_EQ(r->fingerprints.size(), 1u);
    EXPECT_EQ(r->fingerprints[0], p.fingerprint);
    EXPECT_EQ(r->setup, sdp::Setup::ActPass);
    EXPECT_EQ(r->mid, "0");
    EXPECT_EQ(r->sctp_port, 5000);
    EXPECT_EQ(r->max_message_size, 262144u);
    EXPECT_EQ(r->candidates, p.candidates);
    EXPECT_TRUE(r->end_of_candidates);
    EXPECT_FALSE(r->ice_lite);
    // The answer side of our own offer.
    auto ans = make_answer(*parsed, local_params());
    ASSERT_TRUE(ans) << ans.error().message;
    auto ar = extract_remote(*parse(serialize(*ans)), SdpType::Answer);
    ASSERT_TRUE(ar) << ar.error().message;
    EXPECT_EQ(ar->setup, sdp::Setup::Active);
    EXPECT_EQ(ar->mid, "0");
}

TEST(SdpDataChannel, AnswerToChromeOfferWithAudioVideoRejectsMedia) {
    auto path = kCorpus / "str0m" / "chrome_2022_datachannel_audio_video_offer.sdp";
    if (!fs::exists(path))
        GTEST_SKIP() << "corpus not present";
    auto offer = parse(read(path));
    ASSERT_TRUE(offer);
    auto ans = make_answer(*offer, local_params());
    ASSERT_TRUE(ans) << ans.error().message;
    ASSERT_EQ(ans->media.size(), offer->media.size());
    int accepted = 0;
    std::string accepted_mid;
    for (std::size_t i = 0; i < offer->media.size(); ++i) {
        const auto& om = offer->media[i];
        const auto& am = ans->media[i];
        EXPECT_EQ(am.media, om.media);
        EXPECT_EQ(am.proto, om.proto);
        EXPECT_EQ(mid(am), mid(om));
        if (om.media == "application") {
            ++accepted;
            EXPECT_NE(am.port, 0);
            accepted_mid = std::string(*mid(am));
        } else {
            EXPECT_EQ(am.port, 0);
            EXPECT_EQ(am.formats, om.formats);
        }
    }
    EXPECT_EQ(accepted, 1);
    EXPECT_EQ(bundle_mids(*ans), std::vector<std::string>{accepted_mid});
    auto text = serialize(*ans);
    auto back = parse(text);
    ASSERT_TRUE(back);
    auto r = extract_remote(*back, SdpType::Answer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->setup, sdp::Setup::Active); // offer was actpass
    EXPECT_EQ(r->mid, accepted_mid);
}

TEST(SdpDataChannel, AnswerToPeermetricsChromeOfferAudioVideoData) {
    auto path = kCorpus / "peermetrics" / "chrome_offer_complete_gathering.sdp";
    if (!fs::exists(path))
        GTEST_SKIP() << "corpus not present";
    auto offer = parse(read(path));
    ASSERT_TRUE(offer);
    auto ans = make_answer(*offer, local_params());
    ASSERT_TRUE(ans) << ans.error().message;
    std::size_t rejected = 0;
    for (const auto& m : ans->media)
        rejected += m.port == 0;
    EXPECT_EQ(rejected, offer->media.size() - 1);
    EXPECT_EQ(bundle_mids(*ans).size(), 1u);
}

TEST(SdpDataChannel, AnswerToFirefoxLegacyOfferKeepsLegacyForm) {
    auto path = kCorpus / "aiortc" / "datachannel_firefox.sdp";
    if (!fs::exists(path))
        GTEST_SKIP() << "corpus not present";
    auto offer = parse(read(path));
    ASSERT_TRUE(offer);
    auto ans = make_answer(*offer, local_params());
    ASSERT_TRUE(ans) << ans.error().message;
    ASSERT_EQ(ans->media.size(), 1u);
    EXPECT_EQ(ans->media[0].proto, "DTLS/SCTP");
    EXPECT_EQ(ans->media[0].formats, std::vector<std::string>{"5000"});
    EXPECT_EQ(ans->media[0].find("sctpmap"),
              std::optional<std::string_view>("5000 webrtc-datachannel 1024"));
    EXPECT_EQ(mid(ans->media[0]), std::optional<std::string_view>("sdparta_0"));
    EXPECT_EQ(bundle_mids(*ans), std::vector<std::string>{"sdparta_0"});
    auto r = extract_remote(*parse(serialize(*ans)), SdpType::Answer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->sctp_port, 5000);

    // Firefox 63+ new form.
    auto ff63 = parse(read(kCorpus / "aiortc" / "datachannel_firefox_63.sdp"));
    ASSERT_TRUE(ff63);
    auto a63 = make_answer(*ff63, local_params());
    ASSERT_TRUE(a63);
    EXPECT_EQ(a63->media[0].proto, "UDP/DTLS/SCTP");
}

TEST(SdpDataChannel, AnswerSetupRole) {
    auto offer = make_offer(local_params());
    offer.media[0].attributes[offer.media[0].attributes.size() - 4].value = "active";
    ASSERT_EQ(offer.media[0].find("setup"), std::optional<std::string_view>("active"));
    auto ans = make_answer(offer, local_params());
    ASSERT_TRUE(ans);
    EXPECT_EQ(setup(*ans, ans->media[0]), std::optional<sdp::Setup>(sdp::Setup::Passive));
    offer.media[0].attributes[offer.media[0].attributes.size() - 4].value = "passive";
    ans = make_answer(offer, local_params());
    ASSERT_TRUE(ans);
    EXPECT_EQ(setup(*ans, ans->media[0]), std::optional<sdp::Setup>(sdp::Setup::Active));
    offer.media[0].attributes[offer.media[0].attributes.size() - 4].value = "holdconn";
    EXPECT_FALSE(make_answer(offer, local_params()));
}

TEST(SdpDataChannel, AnswerNeedsADataChannel) {
    auto sd = parse("v=0\r\no=- 1 2 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n");
    ASSERT_TRUE(sd);
    auto a = make_answer(*sd, local_params());
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().message.rfind("the offer has no usable m=application", 0), 0u);
}

// Builds our offer text, applies `edit` to it, and returns extract_remote's error.
std::string extract_error(const std::function<void(SessionDescription&)>& edit,
                          SdpType type = SdpType::Offer) {
    auto sd = make_offer(local_params());
    edit(sd);
    auto parsed = parse(serialize(sd));
    if (!parsed)
        return "parse: " + parsed.error().message;
    auto r = extract_remote(*parsed, type);
    return r ? std::string("<ok>") : r.error().message;
}

void set_attr(SessionDescription& sd, std::string_view name, std::optional<std::string> value) {
    auto& attrs = sd.media[0].attributes;
    for (auto it = attrs.begin(); it != attrs.end(); ++it)
        if (it->name == name) {
            if (value)
                it->value = *value;
            else
                attrs.erase(it);
            return;
        }
    if (value)
        attrs.push_back(Attribute{.name = std::string(name), .value = *value});
}

TEST(SdpDataChannel, ExtractRemoteErrors) {
    EXPECT_EQ(extract_error([](auto& sd) { sd.media[0].media = "audio"; }),
              "no m=application section for a data channel");
    EXPECT_EQ(extract_error([](auto& sd) { sd.media[0].port = 0; }),
              "the data channel m=application section is rejected (port 0) in the offer");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "ice-ufrag", std::nullopt); }),
              "missing a=ice-ufrag");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "ice-pwd", std::nullopt); }),
              "missing a=ice-pwd");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "ice-ufrag", "abc"); }),
              "a=ice-ufrag shorter than 4 characters");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "ice-pwd", "short"); }),
              "a=ice-pwd shorter than 22 characters");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "ice-pwd", std::string(257, 'p')); }),
              "a=ice-pwd longer than 256 characters");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "ice-ufrag", "ab-cd"); }),
              "a=ice-ufrag contains '-', outside the ICE character set (letters, digits, + and "
              "/)");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "fingerprint", std::nullopt); }),
              "missing a=fingerprint (DTLS fingerprint is mandatory)");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "fingerprint", "md5 AB:CD:EF"); }),
              "unsupported fingerprint algorithm md5");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "fingerprint", "sha-256 AB:CD"); }),
              "a=fingerprint: sha-256 digest must be 32 bytes, got 2");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "setup", "sideways"); }),
              "invalid a=setup:sideways");
    EXPECT_EQ(extract_error([](auto&) {}, SdpType::Answer),
              "setup:actpass is not allowed in an answer");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "setup", "holdconn"); }),
              "setup:holdconn is not supported (no DTLS connection would be made)");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "sctp-port", "99999"); }),
              "a=sctp-port:99999 is not a port number");
    EXPECT_EQ(extract_error([](auto& sd) { set_attr(sd, "max-message-size", "big"); }),
              "a=max-message-size:big is not a number");
}

// A peer's bytes quoted in an error reach the user's terminal: ESC, BEL, C1 controls and bytes
// that are not UTF-8 come out escaped (base::printable), so a description cannot clear the
// screen or forge lines through our error messages.
TEST(SdpDataChannel, ErrorsQuotePeerBytesPrintably) {
    const std::string esc = "\x1b[2J\x07";
    auto check = [](const std::string& error, const std::string& want) {
        EXPECT_EQ(error, want);
        EXPECT_TRUE(base::is_clean_utf8(error)) << error;
    };
    check(extract_error([&](auto& sd) { set_attr(sd, "ice-ufrag", "abcd" + esc); }),
          "a=ice-ufrag contains '\\e', outside the ICE character set (letters, digits, + and /)");
    check(extract_error([](auto& sd) { set_attr(sd, "ice-ufrag", "abcd\xc3\xa9"); }),
          "a=ice-ufrag contains '\\xc3', outside the ICE character set (letters, digits, + and "
          "/)");
    check(extract_error([&](auto& sd) { set_attr(sd, "setup", esc); }),
          "invalid a=setup:\\e[2J\\x07");
    check(extract_error([&](auto& sd) { set_attr(sd, "fingerprint", "md5" + esc + " AB"); }),
          "unsupported fingerprint algorithm md5\\e[2j\\x07");
    check(extract_error([&](auto& sd) { set_attr(sd, "fingerprint", "sha-256 AB:" + esc); }),
          "a=fingerprint: 'AB:\\e[2J\\x07' is not a list of hex pairs");
    check(extract_error([](auto& sd) {
              set_attr(sd, "sctp-port",
                       "1\xc2\x9b"
                       "31m");
          }),
          "a=sctp-port:1\\xc2\\x9b31m is not a port number");
    check(extract_error([](auto& sd) { set_attr(sd, "max-message-size", "\xff\xfe"); }),
          "a=max-message-size:\\xff\\xfe is not a number");
    // Candidate lines reject C0 controls outright; 8-bit CSI (0x9b) and invalid UTF-8 remain.
    auto c = parse_candidate_line("1 1 udp 1 \x9b"
                                  "2J 9 typ host");
    ASSERT_FALSE(c);
    check(c.error().message, "candidate: invalid address '\\x9b2J'");
    c = parse_candidate_line("1 1 udp 1 1.2.3.4 9 typ \xc2\x9bhost");
    ASSERT_FALSE(c);
    check(c.error().message, "candidate: unknown candidate type '\\xc2\\x9bhost'");
}

TEST(SdpDataChannel, ExtractRemoteDefaultsAndFallbacks) {
    // No a=max-message-size: 64 KiB (RFC 8841 §6.1); no a=sctp-port: 5000; no a=setup: active
    // (RFC 4145 §4.1); md5 next to sha-256: the supported one is used.
    auto sd = make_offer(local_params());
    set_attr(sd, "max-message-size", std::nullopt);
    set_attr(sd, "sctp-port", std::nullopt);
    set_attr(sd, "setup", std::nullopt);
    sd.media[0].attributes.push_back(Attribute{.name = "fingerprint", .value = "md5 AB:CD"});
    // Credentials at session level apply to the m-section (RFC 8839 §5.4).
    auto ufrag = *sd.media[0].find("ice-ufrag");
    sd.attributes.push_back(Attribute{.name = "ice-ufrag", .value = std::string(ufrag)});
    set_attr(sd, "ice-ufrag", std::nullopt);
    sd.attributes.push_back(Attribute{.name = "ice-lite", .value = std::nullopt});
    auto r = extract_remote(*parse(serialize(sd)), SdpType::Answer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->max_message_size, kDefaultRemoteMaxMessageSize);
    EXPECT_EQ(r->sctp_port, kDefaultSctpPort);
    EXPECT_EQ(r->setup, sdp::Setup::Active);
    EXPECT_EQ(r->fingerprints.size(), 1u);
    EXPECT_EQ(r->ice_ufrag, "Ab+/");
    EXPECT_TRUE(r->ice_lite);
}

} // namespace
} // namespace rtcat::sdp
