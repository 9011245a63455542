// Every file of the shared SDP corpus (tests/data/corpus/sdp, from ../shared/corpus/sdp: real
// browser and server SDPs, RFC examples, fuzz reproducers) has a committed expected outcome in
// tests/data/sdp/corpus_expectations.tsv. "ok" files must round-trip: parse(serialize(p)) == p,
// serialize is a fixed point after one round, and the number of m-sections and attributes is
// preserved. Rejected files must fail with the recorded error prefix. A file missing from the
// list (or listed but missing) fails the test.

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/sdp/datachannel.hpp"
#include "core/sdp/sdp.hpp"

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

struct Expectation {
    std::string parse;   // "ok" or "reject:<prefix>"
    std::string extract; // "-", "ok" or an error prefix
};

std::map<std::string, Expectation> load_expectations() {
    std::map<std::string, Expectation> out;
    std::ifstream f(std::string(RTCAT_SOURCE_DIR) + "/tests/data/sdp/corpus_expectations.tsv");
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        auto t1 = line.find('\t');
        auto t2 = line.find('\t', t1 + 1);
        if (t1 == std::string::npos || t2 == std::string::npos)
            continue;
        out[line.substr(0, t1)] =
            Expectation{.parse = line.substr(t1 + 1, t2 - t1 - 1), .extract = line.substr(t2 + 1)};
    }
    return out;
}

std::size_t attribute_count(const SessionDescription& sd) {
    std::size_t n = sd.attributes.size();
    for (const auto& m : sd.media)
        n += m.attributes.size();
    return n;
}

// Counts "a=" lines in the raw text: the parser must keep every one of them.
std::size_t raw_attribute_lines(std::string_view text) {
    std::size_t n = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        auto line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.substr(0, 2) == "a=")
            ++n;
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    return n;
}

TEST(SdpCorpus, EveryFileMatchesItsExpectation) {
    if (!fs::is_directory(kCorpus))
        GTEST_SKIP() << "corpus not present at " << kCorpus;
    auto expectations = load_expectations();
    ASSERT_FALSE(expectations.empty()) << "tests/data/sdp/corpus_expectations.tsv missing";
    std::size_t seen = 0, ok = 0, datachannels = 0;
    for (const auto& entry : fs::recursive_directory_iterator(kCorpus)) {
        if (!entry.is_regular_file())
            continue;
        std::string rel = fs::relative(entry.path(), kCorpus).generic_string();
        SCOPED_TRACE(rel);
        auto it = expectations.find(rel);
        if (it == expectations.end()) {
            ADD_FAILURE() << rel << " is not listed in corpus_expectations.tsv";
            continue;
        }
        ++seen;
        const Expectation& want = it->second;
        std::string text = read(entry.path());
        auto parsed = parse(text);
        if (want.parse != "ok") {
            ASSERT_EQ(want.parse.rfind("reject:", 0), 0u) << want.parse;
            std::string prefix = want.parse.substr(7);
            ASSERT_FALSE(parsed) << "expected rejection: " << prefix;
            EXPECT_EQ(parsed.error().message.rfind(prefix, 0), 0u)
                << "got: " << parsed.error().message << "\nwant prefix: " << prefix;
            continue;
        }
        ASSERT_TRUE(parsed) << parsed.error().message;
        ++ok;
        const auto& sd = *parsed;
        EXPECT_EQ(attribute_count(sd), raw_attribute_lines(text));
        std::string once = serialize(sd);
        auto reparsed = parse(once);
        ASSERT_TRUE(reparsed) << reparsed.error().message << "\n" << once;
        EXPECT_TRUE(*reparsed == sd);
        EXPECT_EQ(reparsed->media.size(), sd.media.size());
        EXPECT_EQ(attribute_count(*reparsed), attribute_count(sd));
        EXPECT_EQ(serialize(*reparsed), once);

        if (want.extract == "-")
            continue;
        ++datachannels;
        auto remote = extract_remote(sd, SdpType::Offer);
        if (want.extract == "ok") {
            ASSERT_TRUE(remote) << remote.error().message;
            EXPECT_FALSE(remote->ice_ufrag.empty());
            EXPECT_FALSE(remote->fingerprints.empty());
            EXPECT_NE(remote->sctp_port, 0);
        } else {
            ASSERT_FALSE(remote);
            EXPECT_EQ(remote.error().message.rfind(want.extract, 0), 0u)
                << "got: " << remote.error().message;
        }
    }
    EXPECT_EQ(seen, expectations.size()) << "files listed in the TSV are missing from the corpus";
    EXPECT_GE(ok, 150u);
    EXPECT_GE(datachannels, 20u);
}

// Mozilla's example files start with ';' comment lines only their own example parser skips (so
// the files themselves are rejected above); their bodies are still worth checking.
TEST(SdpCorpus, MozillaCommentedExamplesWithoutComments) {
    auto strip = [](const std::string& text) {
        std::string out;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);)
            if (line.empty() || line[0] != ';')
                out += line + "\n";
        return out;
    };
    auto p08 = kCorpus / "mozilla-webrtc-sdp" / "08.sdp";
    if (!fs::exists(p08))
        GTEST_SKIP() << "corpus not present";
    // 08: "fails to parse because of a mismatched fingerprint length" — the SDP syntax is fine,
    // the fingerprint check catches it.
    auto sd08 = parse(strip(read(p08)));
    ASSERT_TRUE(sd08) << sd08.error().message;
    bool bad_fp = false;
    for (auto v : sd08->all("fingerprint"))
        bad_fp |= !parse_fingerprint(v).ok();
    for (const auto& m : sd08->media)
        for (auto v : m.all("fingerprint"))
            bad_fp |= !parse_fingerprint(v).ok();
    EXPECT_TRUE(bad_fp);
    for (const char* name : {"03.sdp", "11.sdp"}) {
        auto sd = parse(strip(read(kCorpus / "mozilla-webrtc-sdp" / name)));
        ASSERT_TRUE(sd) << name << ": " << sd.error().message;
        auto again = parse(serialize(*sd));
        ASSERT_TRUE(again);
        EXPECT_TRUE(*again == *sd) << name;
    }
}

TEST(SdpCorpus, ChromeAnswerAndSessionLevelCredentials) {
    auto answer_path = kCorpus / "peermetrics" / "chrome_answer_setup_active.sdp";
    if (!fs::exists(answer_path))
        GTEST_SKIP() << "corpus not present";
    auto answer = parse(read(answer_path));
    ASSERT_TRUE(answer);
    auto r = extract_remote(*answer, SdpType::Answer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->setup, sdp::Setup::Active);
    EXPECT_EQ(r->max_message_size, 262144u);

    // Firefox 58 legacy form: DTLS/SCTP 5000 + a=sctpmap, session-level fingerprint.
    auto ff = parse(read(kCorpus / "aiortc" / "datachannel_firefox.sdp"));
    ASSERT_TRUE(ff);
    auto fr = extract_remote(*ff, SdpType::Offer);
    ASSERT_TRUE(fr) << fr.error().message;
    EXPECT_EQ(fr->sctp_port, 5000);
    EXPECT_EQ(fr->mid, "sdparta_0");
    EXPECT_EQ(fr->candidates.size(), 4u);
    EXPECT_TRUE(fr->end_of_candidates);
    EXPECT_EQ(fr->max_message_size, 1073741823u);
    EXPECT_EQ(fr->fingerprints.at(0).algorithm, "sha-256");
    EXPECT_EQ(fr->setup, sdp::Setup::ActPass);

    // str0m's libp2p-style SDP: ':' in the ufrag is outside the RFC 8839 ice-char set.
    auto lp = parse(read(kCorpus / "str0m" / "parse_no_media_c_line.sdp"));
    ASSERT_TRUE(lp);
    auto lr = extract_remote(*lp, SdpType::Offer);
    ASSERT_FALSE(lr);
    EXPECT_NE(lr.error().message.find("a=ice-ufrag contains ':'"), std::string::npos);
}

} // namespace
} // namespace rtcat::sdp
