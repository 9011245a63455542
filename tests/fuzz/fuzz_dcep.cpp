// libFuzzer target for the DCEP parser (RFC 8832 §5): every PPID-50 payload a peer sends goes
// through dcep::decode. Under g++ the same function replays tests/fuzz/corpus/dcep/.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>

#include "core/dcep/message.hpp"

using namespace rtcat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto m = dcep::decode(base::ByteView(data, size));
    if (!m)
        return 0;
    auto* open = std::get_if<dcep::OpenMessage>(&*m);
    if (open == nullptr)
        return 0;
    if (open->options.label.size() + open->options.protocol.size() + 12 > size)
        std::abort();
    // A decoded OPEN re-encodes to a message that decodes to the same options.
    auto again = dcep::decode(dcep::encode_open(open->options));
    if (!again)
        std::abort();
    auto* open2 = std::get_if<dcep::OpenMessage>(&*again);
    if (open2 == nullptr || !(open2->options == open->options))
        std::abort();
    return 0;
}
