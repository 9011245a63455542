// SDP model, parser, serializer and typed accessors (core/sdp/sdp.hpp), and the RFC 8839
// candidate grammar (core/sdp/candidate_line.hpp) against pion/ice's accept/reject table.

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/sdp/candidate_line.hpp"
#include "core/sdp/sdp.hpp"

namespace rtcat::sdp {
namespace {

const char* kChromeDataOffer = "v=0\r\n"
                               "o=- 5636137646675714991 2 IN IP4 127.0.0.1\r\n"
                               "s=-\r\n"
                               "t=0 0\r\n"
                               "a=group:BUNDLE data\r\n"
                               "a=msid-semantic: WMS\r\n"
                               "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                               "c=IN IP4 0.0.0.0\r\n"
                               "a=ice-ufrag:8qF7\r\n"
                               "a=ice-pwd:zjQd1U0/CufgXINHcPcdd0Bd\r\n"
                               "a=ice-options:trickle\r\n"
                               "a=fingerprint:sha-256 10:8E:F5:D7:A2:B3:63:EF:BD:64:8C:5F:56:A0:66:"
                               "05:9F:B1:5C:1A:C5:79:BD:EE:90:92:C4:1A:C4:B7:1F:58\r\n"
                               "a=setup:actpass\r\n"
                               "a=mid:data\r\n"
                               "a=sctp-port:5000\r\n"
                               "a=max-message-size:100000\r\n";

std::string error_of(std::string_view text) {
    auto r = parse(text);
    return r ? std::string("<ok>") : r.error().message;
}

TEST(SdpParse, ChromeDataChannelOfferModel) {
    auto r = parse(kChromeDataOffer);
    ASSERT_TRUE(r) << r.error().message;
    const auto& sd = *r;
    EXPECT_EQ(sd.origin.session_id, "5636137646675714991");
    EXPECT_EQ(sd.origin.address, "127.0.0.1");
    EXPECT_EQ(sd.session_name, "-");
    ASSERT_EQ(sd.timings.size(), 1u);
    ASSERT_EQ(sd.attributes.size(), 2u);
    EXPECT_EQ(sd.attributes[1].value, std::optional<std::string>(" WMS"));
    ASSERT_EQ(sd.media.size(), 1u);
    const auto& m = sd.media[0];
    EXPECT_EQ(m.media, "application");
    EXPECT_EQ(m.port, 9);
    EXPECT_EQ(m.proto, "UDP/DTLS/SCTP");
    ASSERT_EQ(m.formats.size(), 1u);
    EXPECT_EQ(m.formats[0], "webrtc-datachannel");
    ASSERT_EQ(m.connections.size(), 1u);
    EXPECT_EQ(m.connections[0].address, "0.0.0.0");
    EXPECT_EQ(m.attributes.size(), 8u);
    // Serialization reproduces this (already canonical) text byte for byte.
    EXPECT_EQ(serialize(sd), kChromeDataOffer);
}

TEST(SdpParse, LfAndTrailingWhitespaceAndBlankLinesTolerated) {
    std::string lf = kChromeDataOffer;
    for (std::size_t p; (p = lf.find("\r\n")) != std::string::npos;)
        lf.replace(p, 2, "\n");
    auto a = parse(lf);
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(*a, *parse(kChromeDataOffer));
    auto b = parse("\r\n" + std::string(kChromeDataOffer) + "\r\n \r\n\n");
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(*b, *a);
    auto c = parse("v=0 \no=- 1 2 IN IP4 1.2.3.4\t\ns= \nt=0 0  \na=x:y   \n");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->session_name, "");
    EXPECT_EQ(c->attributes[0].value, std::optional<std::string>("y"));
    // RFC 8866 §5.3: an empty name is written as a single space.
    EXPECT_NE(serialize(*c).find("\r\ns= \r\n"), std::string::npos);
}

TEST(SdpParse, PreciseErrors) {
    EXPECT_EQ(error_of(""), "empty SDP");
    EXPECT_EQ(error_of("m=audio 9 RTP/AVP 0\n"), "line 1: expected v=0 as the first line");
    EXPECT_EQ(error_of("v=1\n"), "line 1: unsupported SDP version (only v=0 exists)");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4\ns=-\n"), "line 2: o= needs 6 fields");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\n"), "missing s= line");
    EXPECT_EQ(error_of("v=0\ns=-\nm=audio 9 RTP/AVP 0\n"), "line 3: m= before the o= line");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nt=0 0\nthis is not sdp\n"),
              "line 5: expected <type>=<value>");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nt=0\n"),
              "line 4: t= needs 2 fields (<start-time> <stop-time>)");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nt=0 x\n"), "line 4: t= time is not a number");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nt=0 0\nm=audio nine RTP/AVP 0\n"),
              "line 5: m= port is not a number");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nt=0 0\nm=audio 70000 RTP/AVP 0\n"),
              "line 5: m= port is out of range");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nt=0 0\nm=audio 9/x RTP/AVP 0\n"),
              "line 5: m= port count is not a number");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nt=0 0\nm=audio 9\n"),
              "line 5: m= needs <media> <port> <proto> [<fmt>...]");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nc=IN IP4\n"),
              "line 4: c= needs 3 fields (<nettype> <addrtype> <address>)");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nb=AS\n"),
              "line 4: b= needs <bwtype>:<bandwidth>");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nb=AS:lots\n"),
              "line 4: b= bandwidth is not a number");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\na=:x\n"), "line 4: a= needs an attribute name");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nr=1 2\n"), "line 4: r= without a preceding t=");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\ni=a\ni=b\n"), "line 5: more than one i= line");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\nt=0 0\nv=0\n"),
              "line 5: unexpected v= line (only one per description)");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\n\nt=0 0\n"),
              "line 4: empty line inside the description");
    EXPECT_EQ(error_of(std::string("v=0\no=- 1 2 IN IP4 x\ns=-\na=x\0y\n", 31)),
              "line 4: contains a NUL byte");
    EXPECT_EQ(error_of("v=0\no=- 1 2 IN IP4 x\ns=-\na=x\ry\n"),
              "line 4: contains a carriage return inside the line");
}

TEST(SdpParse, Bounds) {
    std::string big = "v=0\no=- 1 2 IN IP4 x\ns=-\n";
    big += "a=x:" + std::string(kMaxSdpLineLength, 'a') + "\n";
    EXPECT_EQ(error_of(big), "line 4: longer than 8192 characters");
    std::string many = "v=0\no=- 1 2 IN IP4 x\ns=-\n";
    for (std::size_t i = 0; i < kMaxSdpLines; ++i)
        many += "a=x\n";
    EXPECT_EQ(error_of(many), "SDP has more than 4096 lines");
    EXPECT_EQ(error_of(std::string(kMaxSdpBytes + 1, 'v')), "SDP is larger than 65536 bytes");
}

TEST(SdpParse, UnknownLinesAndAttributesAreKeptAndOrderedPerRfc) {
    // Session fields out of RFC order, an unknown line type at both levels, a flag attribute, an
    // attribute with an empty value and multiple c= in one m-section.
    const char* in = "v=0\n"
                     "o=- 1 2 IN IP4 x\n"
                     "c=IN IP4 233.252.0.1/64\n"
                     "s=name\n"
                     "t=1 2\n"
                     "r=7d 1h 0 25h\n"
                     "f=future:yes\n"
                     "u=http://example.com\n"
                     "a=flag\n"
                     "a=empty:\n"
                     "m=audio 5004/2 RTP/AVP 0 8\n"
                     "i=title\n"
                     "c=IN IP4 233.252.0.1/64\n"
                     "c=IN IP4 233.252.0.2/64\n"
                     "b=AS:64\n"
                     "y=media-level unknown\n"
                     "a=rtpmap:0 PCMU/8000\n";
    auto r = parse(in);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->uri, std::optional<std::string>("http://example.com"));
    ASSERT_EQ(r->other_lines.size(), 1u);
    EXPECT_EQ(r->other_lines[0].type, 'f');
    EXPECT_EQ(r->timings[0].repeats.size(), 1u);
    EXPECT_EQ(r->attributes[0].value, std::nullopt);
    EXPECT_EQ(r->attributes[1].value, std::optional<std::string>(""));
    const auto& m = r->media[0];
    EXPECT_EQ(m.port_count, std::optional<std::uint16_t>(2));
    EXPECT_EQ(m.connections.size(), 2u);
    EXPECT_EQ(m.other_lines.size(), 1u);
    std::string out = serialize(*r);
    EXPECT_EQ(out, "v=0\r\n"
                   "o=- 1 2 IN IP4 x\r\n"
                   "s=name\r\n"
                   "u=http://example.com\r\n"
                   "c=IN IP4 233.252.0.1/64\r\n"
                   "t=1 2\r\n"
                   "r=7d 1h 0 25h\r\n"
                   "f=future:yes\r\n"
                   "a=flag\r\n"
                   "a=empty:\r\n"
                   "m=audio 5004/2 RTP/AVP 0 8\r\n"
                   "i=title\r\n"
                   "c=IN IP4 233.252.0.1/64\r\n"
                   "c=IN IP4 233.252.0.2/64\r\n"
                   "b=AS:64\r\n"
                   "y=media-level unknown\r\n"
                   "a=rtpmap:0 PCMU/8000\r\n");
    auto again = parse(out);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *r);
}

TEST(SdpAccessors, SessionLevelFallbackAndTypedValues) {
    const char* in =
        "v=0\n"
        "o=- 1 2 IN IP4 x\n"
        "s=-\n"
        "t=0 0\n"
        "a=group:BUNDLE a v\n"
        "a=group:LS a v\n"
        "a=ice-lite\n"
        "a=ice-ufrag:sessUfrag\n"
        "a=ice-pwd:sessionpasswordsessionpw\n"
        "a=ice-options:ice2 trickle\n"
        "a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB\n"
        "a=setup:passive\n"
        "a=end-of-candidates\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 96\n"
        "a=mid:a\n"
        "a=ice-ufrag:mediaUfrag\n"
        "a=rtpmap:111 opus/48000/2\n"
        "a=rtpmap:96 VP8/90000\n"
        "a=rtpmap:bad\n"
        "a=fmtp:111 minptime=10;useinbandfec=1\n"
        "a=rtcp-fb:* nack\n"
        "a=rtcp-fb:96 nack pli\n"
        "a=extmap:3/sendonly urn:ietf:params:rtp-hdrext:sdes:mid\n"
        "a=ssrc:3735928559 cname:abc\n"
        "a=ssrc:1 foo\n"
        "a=msid:stream track\n"
        "a=rtcp-mux\n"
        "a=sendonly\n"
        "a=candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host\n"
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\n"
        "a=mid:v\n"
        "a=sctp-port:5001\n"
        "a=max-message-size:1073741823\n";
    auto r = parse(in);
    ASSERT_TRUE(r) << r.error().message;
    const auto& sd = *r;
    const auto& a = sd.media[0];
    const auto& d = sd.media[1];
    EXPECT_EQ(bundle_mids(sd), (std::vector<std::string>{"a", "v"}));
    EXPECT_EQ(groups(sd).size(), 2u);
    EXPECT_EQ(mid(a), std::optional<std::string_view>("a"));
    EXPECT_EQ(ice_ufrag(sd, a), std::optional<std::string_view>("mediaUfrag"));
    EXPECT_EQ(ice_ufrag(sd, d), std::optional<std::string_view>("sessUfrag"));
    EXPECT_EQ(ice_pwd(sd, a), std::optional<std::string_view>("sessionpasswordsessionpw"));
    EXPECT_EQ(ice_options(sd, a), (std::vector<std::string>{"ice2", "trickle"}));
    EXPECT_TRUE(ice_lite(sd));
    EXPECT_TRUE(end_of_candidates(sd, d));
    EXPECT_EQ(candidates(a).size(), 1u);
    EXPECT_EQ(candidates(d).size(), 0u);
    EXPECT_EQ(setup(sd, d), std::optional<sdp::Setup>(sdp::Setup::Passive));
    auto fp = parse_fingerprint(*find_effective(sd, d, "fingerprint"));
    ASSERT_TRUE(fp) << fp.error().message;
    EXPECT_EQ(fp->algorithm, "sha-1");
    EXPECT_EQ(fp->value.size(), 20u);
    EXPECT_EQ(format_fingerprint(*fp),
              "sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB");
    EXPECT_EQ(sctp_port(d), std::optional<std::uint16_t>(5001));
    EXPECT_EQ(max_message_size(d), std::optional<std::uint64_t>(1073741823));

    auto maps = rtpmaps(a);
    ASSERT_EQ(maps.size(), 2u); // the malformed one is skipped
    EXPECT_EQ(maps[0], (RtpMap{.payload_type = 111,
                               .encoding = "opus",
                               .clock_rate = 48000,
                               .channels = std::uint16_t{2}}));
    EXPECT_EQ(maps[1].channels, std::nullopt);
    EXPECT_EQ(fmtps(a)[0].params, "minptime=10;useinbandfec=1");
    auto fbs = rtcp_fbs(a);
    ASSERT_EQ(fbs.size(), 2u);
    EXPECT_EQ(fbs[0].payload_type, std::nullopt);
    EXPECT_EQ(fbs[1].type, "nack");
    EXPECT_EQ(fbs[1].param, "pli");
    auto ext = extmaps(a);
    ASSERT_EQ(ext.size(), 1u);
    EXPECT_EQ(ext[0].id, 3);
    EXPECT_EQ(ext[0].direction, std::optional<std::string>("sendonly"));
    EXPECT_EQ(ext[0].uri, "urn:ietf:params:rtp-hdrext:sdes:mid");
    auto ss = ssrcs(a);
    ASSERT_EQ(ss.size(), 2u);
    EXPECT_EQ(ss[0].ssrc, 3735928559u);
    EXPECT_EQ(ss[0].value, std::optional<std::string>("abc"));
    EXPECT_EQ(ss[1].value, std::nullopt);
    EXPECT_EQ(msids(a)[0].track_id, std::optional<std::string>("track"));
    EXPECT_TRUE(rtcp_mux(a));
    EXPECT_FALSE(rtcp_mux(d));
    EXPECT_EQ(direction(sd, a), Direction::SendOnly);
    EXPECT_EQ(direction(sd, d), Direction::SendRecv);
}

TEST(SdpAccessors, FingerprintValidation) {
    EXPECT_FALSE(parse_fingerprint("sha-256"));
    EXPECT_FALSE(parse_fingerprint("sha-256 AB:CD")); // wrong length for sha-256
    EXPECT_FALSE(parse_fingerprint("sha-256 AB:C"));  // odd digit
    EXPECT_FALSE(parse_fingerprint("sha-1 AB::CD"));  // empty pair
    EXPECT_FALSE(parse_fingerprint("sha-1 ABCD"));    // no separators
    EXPECT_FALSE(parse_fingerprint("sha-1 AB:CD:"));  // trailing colon
    EXPECT_FALSE(parse_fingerprint("sha-1 GG:00"));   // not hex
    auto md5 = parse_fingerprint("md5 AB:CD");        // unknown hash: any length
    ASSERT_TRUE(md5);
    EXPECT_EQ(md5->algorithm, "md5");
    for (auto [alg, n] :
         {std::pair<const char*, int>{"sha-224", 28}, {"sha-384", 48}, {"sha-512", 64}}) {
        std::string hex;
        for (int i = 0; i < n; ++i)
            hex += (i ? ":" : "") + std::string("ab");
        auto fp = parse_fingerprint(std::string(alg) + " " + hex);
        ASSERT_TRUE(fp) << alg;
        EXPECT_EQ(fp->value.size(), static_cast<std::size_t>(n));
        auto bad = parse_fingerprint(std::string(alg) + " " + hex + ":ab");
        EXPECT_FALSE(bad) << alg;
    }
    EXPECT_EQ(parse_setup("ACTPASS"), std::optional<sdp::Setup>(sdp::Setup::ActPass));
    EXPECT_EQ(parse_setup("holdconn"), std::optional<sdp::Setup>(sdp::Setup::HoldConn));
    EXPECT_EQ(parse_setup("both"), std::nullopt);
}

// ---- candidate grammar ------------------------------------------------------------------------

std::string unescape_go(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
            out.push_back(
                static_cast<char>(std::stoi(std::string(s.substr(i + 2, 2)), nullptr, 16)));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

TEST(SdpCandidateLine, PionAcceptRejectTable) {
    std::ifstream f(std::string(RTCAT_SOURCE_DIR) +
                    "/tests/data/corpus/sdp/candidates/pion_ice_candidate_lines.tsv");
    if (!f)
        GTEST_SKIP() << "shared corpus not present";
    std::string line;
    int checked = 0;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        auto tab = line.find('\t');
        ASSERT_NE(tab, std::string::npos);
        bool expect_error = line.substr(0, tab) == "true";
        std::string cand = unescape_go(line.substr(tab + 1));
        auto r = parse_candidate_line(cand);
        EXPECT_EQ(!r, expect_error) << cand << (r ? "" : " -> " + r.error().message);
        if (r) {
            auto again = parse_candidate_line(format_candidate_line(*r));
            ASSERT_TRUE(again) << format_candidate_line(*r);
            EXPECT_EQ(*again, *r);
        }
        ++checked;
    }
    EXPECT_GE(checked, 30);
}

TEST(SdpCandidateLine, FieldsAndErrors) {
    auto r =
        parse_candidate_line("candidate:842163049 1 udp 1677729535 203.0.113.7 61234 typ srflx "
                             "raddr 10.0.0.2 rport 61234 generation 0 network-cost 999");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->foundation, "842163049");
    EXPECT_EQ(r->component, 1);
    EXPECT_EQ(r->priority, 1677729535u);
    EXPECT_EQ(r->type, CandidateType::ServerReflexive);
    EXPECT_EQ(r->related_address, std::optional<std::string>("10.0.0.2"));
    EXPECT_EQ(r->related_port, std::optional<std::uint16_t>(61234));
    ASSERT_EQ(r->extensions.size(), 2u);
    EXPECT_EQ(r->extensions[1].first, "network-cost");
    EXPECT_EQ(format_candidate_line(*r),
              "842163049 1 udp 1677729535 203.0.113.7 61234 typ srflx "
              "raddr 10.0.0.2 rport 61234 generation 0 network-cost 999");
    auto t = parse_candidate_line("1 1 TCP 2128609279 ::1 9 typ host tcptype active");
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->is_tcp());
    EXPECT_EQ(t->tcp_type, std::optional<std::string>("active"));
    EXPECT_EQ(parse_candidate_line("1 1 udp 1 1.2.3.4 5 typ host raddr").error().message,
              "candidate: raddr needs an address");
    EXPECT_EQ(parse_candidate_line("1 1 udp 1 1.2.3.4 5 type host").error().message,
              "candidate: expected 'typ' after the port");
    EXPECT_EQ(parse_candidate_line("1 1 sctp 1 1.2.3.4 5 typ host").error().message,
              "candidate: unsupported transport 'sctp'");
    EXPECT_FALSE(parse_candidate_line("1 1 udp 1 1.2.3.4 5 typ host generation"));
    EXPECT_FALSE(parse_candidate_line("1 0 udp 1 1.2.3.4 5 typ host"));
    EXPECT_FALSE(parse_candidate_line(std::string(40, 'f') + " 1 udp 1 1.2.3.4 5 typ host"));
}

} // namespace
} // namespace rtcat::sdp
