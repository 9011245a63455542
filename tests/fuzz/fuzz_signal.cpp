// libFuzzer target for signaling input (core/sdp/signal.hpp): streaming framing at every split
// point class (whole buffer with and without eof), decoding of each framed message in all three
// forms, and the JSON string unescaper. Every description that decodes is also offered to the
// token encoder as an offer and as an answer, and whatever the encoder accepts must round-trip
// (check_token_round_trip). Under g++ it replays tests/fuzz/corpus/signal/.
//
// A mutated rtcat2: token almost never keeps its CRC-32, so mutations stop at the checksum; the
// corpus keeps rtcat1: tokens (no checksum, same payload decoder) so the payload parser stays
// reachable for the fuzzer.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

#include "core/sdp/candidate_line.hpp"
#include "core/sdp/signal.hpp"

using namespace rtcat;

namespace {

// What a token carries of a description (signal.hpp): everything extract_remote() reads, with
// the candidates' dropped browser hints left out, and ice-options:trickle.
struct TokenContent {
    sdp::RemoteParams remote;
    std::vector<sdp::CandidateLine> candidates;
    bool trickle = false;
};

std::optional<TokenContent> token_content(const sdp::SignalMessage& msg) {
    auto sd = sdp::parse(msg.sdp);
    if (!sd)
        return std::nullopt;
    auto r = sdp::extract_remote(*sd, msg.type);
    if (!r)
        return std::nullopt;
    TokenContent c;
    c.remote = std::move(*r);
    for (const auto& text : c.remote.candidates) {
        auto line = sdp::parse_candidate_line(text);
        if (!line)
            return std::nullopt;
        std::erase_if(line->extensions, [](const auto& e) {
            return std::find(sdp::kTokenDroppedExtensions.begin(),
                             sdp::kTokenDroppedExtensions.end(),
                             e.first) != sdp::kTokenDroppedExtensions.end();
        });
        c.candidates.push_back(std::move(*line));
    }
    int idx = sdp::find_datachannel_section(*sd);
    if (idx >= 0) {
        auto opts = sdp::ice_options(*sd, sd->media[static_cast<std::size_t>(idx)]);
        c.trickle = std::find(opts.begin(), opts.end(), "trickle") != opts.end();
    }
    return c;
}

bool same(const TokenContent& a, const TokenContent& b) {
    const auto &x = a.remote, &y = b.remote;
    return x.ice_ufrag == y.ice_ufrag && x.ice_pwd == y.ice_pwd &&
           x.fingerprints == y.fingerprints && x.setup == y.setup && x.mid == y.mid &&
           x.sctp_port == y.sctp_port && x.max_message_size == y.max_message_size &&
           x.end_of_candidates == y.end_of_candidates && x.ice_lite == y.ice_lite &&
           a.candidates == b.candidates && a.trickle == b.trickle;
}

// The token's promise: anything encode_token() accepts, decode_token() accepts and gives back
// as the same description, and encoding that again gives the same token (a fixed point).
void check_token_round_trip(const sdp::SignalMessage& msg) {
    auto token = sdp::encode_token(msg);
    if (!token)
        return;
    auto back = sdp::decode_token(*token);
    if (!back || back->type != msg.type)
        std::abort();
    auto want = token_content(msg);
    auto got = token_content(*back);
    if (!want || !got || !same(*want, *got))
        std::abort();
    auto again = sdp::encode_token(*back);
    if (!again || *again != *token)
        std::abort();
    // The line form the CLI writes frames and decodes the same way.
    auto line = sdp::encode_signal(msg, sdp::SignalFormat::Token);
    if (!line || *line != *token + "\n")
        std::abort();
    auto framed = sdp::frame_signal(*line, false);
    if (!framed || !framed->has_value() || (*framed)->consumed != line->size())
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    (void)sdp::json_unescape(in);

    // Drain the buffer message by message, as the CLI does with stdin.
    std::string_view rest = in;
    for (int guard = 0; guard < 64 && !rest.empty(); ++guard) {
        auto framed = sdp::frame_signal(rest, true);
        if (!framed || !framed->has_value())
            break;
        std::size_t n = (*framed)->consumed;
        if (n == 0 || n > rest.size())
            std::abort();
        // A prefix never frames a longer message than the whole buffer does.
        auto early = sdp::frame_signal(rest.substr(0, n), false);
        if (early && early->has_value() && (*early)->consumed > n)
            std::abort();
        auto msg = sdp::decode_signal(rest.substr(0, n), sdp::SdpType::Offer);
        if (msg) {
            // Whatever decodes must re-encode as JSON and decode to the same message.
            auto json = sdp::encode_signal(*msg, sdp::SignalFormat::Json);
            if (!json)
                std::abort();
            auto back = sdp::decode_signal(*json, std::nullopt);
            if (!back || !(*back == *msg))
                std::abort();
            // Plain SDP carries no type: try the token as both.
            sdp::SignalMessage other = *msg;
            other.type =
                msg->type == sdp::SdpType::Offer ? sdp::SdpType::Answer : sdp::SdpType::Offer;
            check_token_round_trip(*msg);
            check_token_round_trip(other);
        }
        rest.remove_prefix(n);
    }
    if (auto t = sdp::decode_token(in)) {
        if (!sdp::parse(t->sdp))
            std::abort();
        check_token_round_trip(*t);
    }
    return 0;
}
