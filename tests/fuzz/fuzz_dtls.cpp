// libFuzzer target for DTLS input: the fuzz input is a sequence of datagrams, each a 2-byte
// big-endian length and that many bytes (a short tail is one last datagram). Every datagram
// goes to a fresh server Session and to a client Session that has sent its ClientHello, with
// virtual time advancing 40 ms per datagram so retransmission timers fire too. Nothing may
// crash; outputs are drained and checked for basic sanity. Under g++ the same function replays
// tests/fuzz/corpus/dtls/ as an ordinary test.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "core/base/time.hpp"
#include "core/dtls/certificate.hpp"
#include "core/dtls/session.hpp"

using namespace rtcat;

namespace {

const dtls::Certificate& client_cert() {
    static const dtls::Certificate c = dtls::Certificate::generate().value();
    return c;
}
const dtls::Certificate& server_cert() {
    static const dtls::Certificate c = dtls::Certificate::generate().value();
    return c;
}

dtls::SessionConfig config(dtls::Role role) {
    dtls::SessionConfig c;
    c.role = role;
    c.certificate = role == dtls::Role::Client ? client_cert() : server_cert();
    c.remote_fingerprints = {
        (role == dtls::Role::Client ? server_cert() : client_cert()).fingerprint()};
    return c;
}

void drain(dtls::Session& s, std::size_t mtu) {
    while (auto d = s.poll_transmit()) {
        if (d->empty() || d->size() > mtu)
            std::abort();
    }
    while (auto e = s.poll_event()) {
        if (auto* f = std::get_if<dtls::event::Failed>(&*e); f && !s.failed())
            std::abort();
    }
    if (s.connected()) {
        static const std::uint8_t kPing[] = {1, 2, 3};
        (void)s.send(kPing);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    base::Instant now{};
    dtls::Session server(config(dtls::Role::Server), now);
    dtls::Session client(config(dtls::Role::Client), now);
    drain(client, 1200);

    std::span<const std::uint8_t> in(data, size);
    while (!in.empty()) {
        std::size_t len = in.size();
        if (in.size() >= 2) {
            len = std::min<std::size_t>((std::size_t{in[0]} << 8) | in[1], in.size() - 2);
            in = in.subspan(2);
        }
        const auto datagram = in.first(len);
        in = in.subspan(len);
        server.handle_receive(datagram, now);
        client.handle_receive(datagram, now);
        drain(server, 1200);
        drain(client, 1200);
        now += base::ms(40);
        server.handle_timeout(now);
        client.handle_timeout(now);
        drain(server, 1200);
        drain(client, 1200);
        if (server.poll_timeout() < now || client.poll_timeout() < now)
            std::abort(); // a deadline in the past after handle_timeout: a busy loop
    }
    (void)server.stats();
    (void)client.stats();
    return 0;
}
