// STUN codec cost per message: the paths ICE keepalives and TURN ChannelData take per packet.

#include <benchmark/benchmark.h>

#include "core/stun/message.hpp"

using namespace rtcat;
using namespace rtcat::stun;

namespace {

Message ice_check() {
    // What an ICE connectivity check carries (RFC 8445 §7.1.1).
    auto m = Message::request(Method::Binding);
    m.add_string(attr::Username, "9b4d8f0e:3c1a7e52");
    m.add_u32(attr::Priority, 0x6e7f1eff);
    m.add_u64(attr::IceControlling, 0x1122334455667788ull);
    m.add_flag(attr::UseCandidate);
    return m;
}

Message binding_response() {
    auto m = Message(Method::Binding, Class::Success, new_transaction_id());
    m.add_xor_address(attr::XorMappedAddress, *net::SocketAddr::parse("203.0.113.9:54321"));
    m.add_string(attr::Software, "rtcat bench");
    return m;
}

const base::Bytes kKey = short_term_key("3c1a7e52a1b2c3d4e5f6a7b8");

void BM_EncodePlainBindingRequest(benchmark::State& st) {
    auto m = Message::request(Method::Binding);
    for (auto _ : st)
        benchmark::DoNotOptimize(encode(m, {nullptr, false, true}));
}
BENCHMARK(BM_EncodePlainBindingRequest);

void BM_EncodeIceCheckIntegrityFingerprint(benchmark::State& st) {
    auto m = ice_check();
    for (auto _ : st)
        benchmark::DoNotOptimize(encode(m, {&kKey, false, true}));
}
BENCHMARK(BM_EncodeIceCheckIntegrityFingerprint);

void BM_DecodeBindingResponse(benchmark::State& st) {
    auto wire = encode(binding_response(), {nullptr, false, true});
    for (auto _ : st) {
        auto m = decode(wire);
        benchmark::DoNotOptimize(m.ok());
        benchmark::DoNotOptimize(m->mapped_address());
    }
}
BENCHMARK(BM_DecodeBindingResponse);

void BM_DecodeIceCheck(benchmark::State& st) {
    auto wire = encode(ice_check(), {&kKey, false, true});
    for (auto _ : st) {
        auto m = decode(wire);
        benchmark::DoNotOptimize(m.ok());
    }
}
BENCHMARK(BM_DecodeIceCheck);

void BM_DecodeAndVerifyIceCheck(benchmark::State& st) {
    auto wire = encode(ice_check(), {&kKey, false, true});
    for (auto _ : st) {
        auto m = decode(wire);
        benchmark::DoNotOptimize(check_integrity(wire, kKey));
    }
}
BENCHMARK(BM_DecodeAndVerifyIceCheck);

void BM_ChannelDataRoundTrip(benchmark::State& st) {
    base::Bytes payload(1100, 0x5a);
    for (auto _ : st) {
        auto wire = encode_channel_data(0x4001, payload);
        benchmark::DoNotOptimize(parse_channel_data(wire));
    }
}
BENCHMARK(BM_ChannelDataRoundTrip);

} // namespace

BENCHMARK_MAIN();
