// libFuzzer target for signaling input (core/sdp/signal.hpp): streaming framing at every split
// point class (whole buffer with and without eof), decoding of each framed message in all three
// forms, and the JSON string unescaper. Under g++ it replays tests/fuzz/corpus/signal/.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/sdp/signal.hpp"

using namespace rtcat;

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
            if (auto token = sdp::encode_token(*msg)) {
                auto tb = sdp::decode_token(*token);
                if (!tb)
                    std::abort();
            }
        }
        rest.remove_prefix(n);
    }
    if (auto t = sdp::decode_token(in)) {
        if (!sdp::parse(t->sdp))
            std::abort();
    }
    return 0;
}
