// libFuzzer target for everything that parses STUN-port bytes: the STUN codec with every typed
// accessor, integrity checking and ChannelData framing. Under g++ the same function replays
// tests/fuzz/corpus/stun/ as an ordinary test.

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/net/demux.hpp"
#include "core/stun/message.hpp"

using namespace rtcat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    base::ByteView in(data, size);
    (void)net::classify(in);
    (void)stun::looks_like_stun(in);
    if (auto cd = stun::parse_channel_data(in)) {
        if (cd->data.size() > size)
            std::abort();
    }
    static const base::Bytes kKey = stun::short_term_key("fuzz");
    (void)stun::check_integrity(in, kKey);

    auto m = stun::decode(in);
    if (!m)
        return 0;
    (void)m->mapped_address();
    for (auto t : {stun::attr::XorPeerAddress, stun::attr::XorRelayedAddress})
        (void)m->get_xor_address(t);
    for (auto t : {stun::attr::MappedAddress, stun::attr::ResponseOrigin, stun::attr::OtherAddress,
                   stun::attr::AlternateServer})
        (void)m->get_address(t);
    (void)m->error_code();
    (void)m->unknown_attributes();
    (void)m->change_request();
    (void)m->requested_transport();
    (void)m->channel_number();
    (void)m->password_algorithm();
    (void)m->password_algorithms();
    (void)m->get_string(stun::attr::Username);
    (void)m->get_u32(stun::attr::Lifetime);
    (void)m->get_u64(stun::attr::IceControlling);
    (void)m->unknown_comprehension_required();

    // A parsed message must re-encode to something that parses to the same attributes.
    auto again = stun::decode(stun::encode(*m));
    if (!again)
        std::abort();
    std::size_t kept = 0;
    for (const auto& a : m->attributes())
        if (a.type != stun::attr::MessageIntegrity &&
            a.type != stun::attr::MessageIntegritySha256 && a.type != stun::attr::Fingerprint)
            ++kept;
    if (again->attributes().size() != kept || again->transaction_id() != m->transaction_id())
        std::abort();
    return 0;
}
