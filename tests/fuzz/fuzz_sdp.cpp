// libFuzzer target for the SDP layer: parse, serialize, re-parse (the round-trip invariants
// parse(serialize(p)) == p and serialize's fixed point), every typed accessor, candidate lines,
// extract_remote and make_answer. Under g++ the same function replays tests/fuzz/corpus/sdp/.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/sdp/candidate_line.hpp"
#include "core/sdp/datachannel.hpp"
#include "core/sdp/sdp.hpp"

using namespace rtcat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = sdp::parse(text);
    if (!parsed)
        return 0;
    const auto& sd = *parsed;
    std::string once = sdp::serialize(sd);
    auto again = sdp::parse(once);
    if (!again || !(*again == sd) || sdp::serialize(*again) != once)
        std::abort();

    (void)sdp::groups(sd);
    (void)sdp::bundle_mids(sd);
    (void)sdp::ice_lite(sd);
    for (const auto& m : sd.media) {
        (void)sdp::mid(m);
        (void)sdp::ice_ufrag(sd, m);
        (void)sdp::ice_pwd(sd, m);
        (void)sdp::ice_options(sd, m);
        (void)sdp::end_of_candidates(sd, m);
        (void)sdp::setup(sd, m);
        (void)sdp::sctp_port(m);
        (void)sdp::max_message_size(m);
        (void)sdp::rtpmaps(m);
        (void)sdp::fmtps(m);
        (void)sdp::rtcp_fbs(m);
        (void)sdp::extmaps(m);
        (void)sdp::ssrcs(m);
        (void)sdp::msids(m);
        (void)sdp::rtcp_mux(m);
        (void)sdp::direction(sd, m);
        for (auto v : sdp::all_effective(sd, m, "fingerprint"))
            if (auto fp = sdp::parse_fingerprint(v)) {
                auto back = sdp::parse_fingerprint(sdp::format_fingerprint(*fp));
                if (!back || !(*back == *fp))
                    std::abort();
            }
        for (auto c : sdp::candidates(m))
            if (auto cl = sdp::parse_candidate_line(c)) {
                auto back = sdp::parse_candidate_line(sdp::format_candidate_line(*cl));
                if (!back || !(*back == *cl))
                    std::abort();
            }
    }
    for (auto type : {sdp::SdpType::Offer, sdp::SdpType::Answer})
        (void)sdp::extract_remote(sd, type);

    sdp::LocalParams local;
    local.ice_ufrag = "fuzz";
    local.ice_pwd = "fuzzfuzzfuzzfuzzfuzzfu";
    local.fingerprint.algorithm = "sha-256";
    local.fingerprint.value.assign(32, 0xAB);
    if (auto answer = sdp::make_answer(sd, local)) {
        // Our answer must be something we (and so a browser) can read back.
        auto text_answer = sdp::parse(sdp::serialize(*answer));
        if (!text_answer || !sdp::extract_remote(*text_answer, sdp::SdpType::Answer))
            std::abort();
    }
    return 0;
}
