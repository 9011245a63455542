// libFuzzer target for a Peer's receive path, driven as an active attacker on the network
// between two real Peers (ICE + DTLS + SCTP/DCEP). The fuzz input is a program of operations on
// the datagrams in flight: deliver, drop, duplicate, corrupt, inject arbitrary datagrams (from
// the peer's own remote address, so they pass the ICE address checks and reach the DTLS/SCTP
// demux), and let time pass. After the program, the network turns honest for a bounded time.
//
// What must hold, whatever the input: nothing crashes or trips a sanitizer, and every message
// the answerer delivers is byte-for-byte one the offerer sent (DTLS authenticates the records,
// so corruption or injection must be dropped, never delivered as data). A program that only
// delivers and duplicates datagrams (no loss, corruption, injection or delay) must end with the
// message delivered: duplicates never break a session.
//
// Under g++ the same function replays tests/fuzz/corpus/peer/ as an ordinary test.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <variant>

#include "core/base/time.hpp"
#include "core/dtls/certificate.hpp"
#include "core/peer/peer.hpp"

using namespace rtcat;

namespace {

const net::SocketAddr kAddrA(*net::IpAddr::parse("10.0.0.1"), 40000);
const net::SocketAddr kAddrB(*net::IpAddr::parse("10.0.0.2"), 50000);
// The message the offerer sends once its data channel is open; anything else arriving at the
// answerer as data is a failure of authentication.
constexpr std::string_view kPayload = "rtcat fuzz payload";
constexpr int kHonestSteps = 3000;
const base::Duration kHonestLimit = std::chrono::seconds(20);

const dtls::Certificate& cert(int i) {
    static const std::array<dtls::Certificate, 2> certs = {dtls::Certificate::generate().value(),
                                                           dtls::Certificate::generate().value()};
    return certs[static_cast<std::size_t>(i)];
}

struct Reader {
    const std::uint8_t* data;
    std::size_t size;
    std::size_t pos = 0;
    bool empty() const { return pos >= size; }
    std::uint8_t byte() { return pos < size ? data[pos++] : 0; }
    std::span<const std::uint8_t> take(std::size_t n) {
        n = std::min(n, size - std::min(pos, size));
        auto s = std::span<const std::uint8_t>(data + pos, n);
        pos += n;
        return s;
    }
};

struct Side {
    std::unique_ptr<peer::Peer> peer;
    std::deque<net::Transmit> out; // datagrams in flight from this side
    bool channel_sent = false;
    std::uint16_t channel = 0;
    bool failed = false;
};

struct World {
    Side a, b;
    base::Instant now = base::Instant(std::chrono::seconds(1000));
    std::uint64_t delivered_messages = 0;

    World() {
        a.peer = make(true, kAddrA, 0);
        b.peer = make(false, kAddrB, 1);
        drain_all();
    }

    std::unique_ptr<peer::Peer> make(bool offerer, net::SocketAddr addr, int idx) const {
        peer::PeerConfig c;
        c.offerer = offerer;
        c.certificate = cert(idx);
        c.host_sockets = {addr};
        c.gathering_timeout = base::ms(50);
        c.connect_timeout = std::chrono::seconds(10);
        c.consent_timeout = std::chrono::seconds(10);
        c.tie_breaker = offerer ? 2 : 1;
        return std::make_unique<peer::Peer>(std::move(c), now);
    }

    Side& other(Side& s) { return &s == &a ? b : a; }

    void drain(Side& s) {
        while (auto t = s.peer->poll_transmit())
            s.out.push_back(std::move(*t));
        while (auto ev = s.peer->poll_event()) {
            if (auto* ld = std::get_if<peer::event::LocalDescription>(&*ev)) {
                Side& o = other(s);
                // A description the peer just produced must be accepted by the other side.
                if (!o.peer->set_remote_description(sdp::SignalMessage{ld->type, ld->sdp}, now))
                    std::abort();
                drain(o);
            } else if (auto* m = std::get_if<dcep::event::Message>(&*ev)) {
                if (&s != &b)
                    continue;
                const std::string_view got(reinterpret_cast<const char*>(m->data.data()),
                                           m->data.size());
                if (got != kPayload)
                    std::abort(); // unauthenticated bytes delivered as data
                ++delivered_messages;
            } else if (std::holds_alternative<peer::event::Failed>(*ev)) {
                s.failed = true;
            }
        }
        if (&s == &a && !s.channel_sent && s.peer->data_ready()) {
            dcep::ChannelOptions o;
            o.label = "fuzz";
            auto id = s.peer->open_channel(o, now);
            if (id) {
                s.channel_sent = true;
                s.channel = *id;
                const auto* p = reinterpret_cast<const std::uint8_t*>(kPayload.data());
                (void)s.peer->send(s.channel, std::span(p, kPayload.size()), false, now);
                drain(s);
            }
        }
    }

    void drain_all() {
        drain(a);
        drain(b);
    }

    void fire_timers() {
        for (Side* s : {&a, &b}) {
            if (s->peer->poll_timeout() <= now) {
                s->peer->handle_timeout(now);
                drain(*s);
            }
        }
    }

    void deliver(Side& from, net::Transmit t) {
        Side& to = other(from);
        to.peer->handle_receive(net::Datagram{t.source, t.destination, std::move(t.payload)}, now);
        drain(to);
        fire_timers();
    }

    // Jumps to the earliest deadline (bounded so a far deadline costs one step, not a hang).
    void advance(base::Duration most) {
        const base::Instant next = std::min(a.peer->poll_timeout(), b.peer->poll_timeout());
        now = std::min(std::max(next, now), now + most);
        fire_timers();
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    World w;
    Reader in{data, size};
    bool tampered = false;
    while (!in.empty()) {
        const std::uint8_t op = in.byte();
        Side& from = (op & 0x80) != 0 ? w.b : w.a;
        switch (op & 0x7) {
        case 0:
        case 1:
        case 2: { // deliver the next datagram unchanged (most programs should make progress)
            // From the other side when this one has nothing in flight, and time passes only
            // when nothing is: an honest network does not hold one direction's datagrams for
            // seconds while the other's timers run (that is a delay, op 7).
            Side& src = !from.out.empty() ? from : w.other(from);
            if (!src.out.empty()) {
                auto t = std::move(src.out.front());
                src.out.pop_front();
                w.deliver(src, std::move(t));
            } else {
                w.advance(base::ms(50));
            }
            break;
        }
        case 3: // drop
            tampered = true;
            if (!from.out.empty())
                from.out.pop_front();
            break;
        case 4: // duplicate
            if (!from.out.empty())
                from.out.push_back(from.out.front());
            break;
        case 5: { // corrupt: XOR a few bytes at input-chosen offsets, then deliver
            if (from.out.empty())
                break;
            tampered = true;
            auto t = std::move(from.out.front());
            from.out.pop_front();
            const int n = 1 + (in.byte() & 0x3);
            for (int i = 0; i < n && !t.payload.empty(); ++i) {
                const std::size_t at = in.byte() % t.payload.size();
                t.payload[at] ^= static_cast<std::uint8_t>(in.byte() | 1);
            }
            w.deliver(from, std::move(t));
            break;
        }
        case 6: { // inject an arbitrary datagram that claims to come from `from`
            tampered = true;
            const std::size_t len = in.byte() | (std::size_t{in.byte()} << 8);
            auto bytes = in.take(len % 1500);
            net::Transmit t{&from == &w.a ? kAddrA : kAddrB, &from == &w.a ? kAddrB : kAddrA,
                            base::Bytes(bytes.begin(), bytes.end())};
            w.deliver(from, std::move(t));
            break;
        }
        case 7: // let time pass
            tampered = true;
            w.advance(base::ms(5 * (1 + in.byte())));
            break;
        }
    }
    // The attacker leaves: deliver everything, fire timers, for a bounded time.
    const base::Instant end = w.now + kHonestLimit;
    for (int i = 0; i < kHonestSteps && w.now < end; ++i) {
        if (w.delivered_messages > 0 || (w.a.failed && w.b.failed))
            break;
        bool any = false;
        for (Side* s : {&w.a, &w.b}) {
            if (!s->out.empty()) {
                auto t = std::move(s->out.front());
                s->out.pop_front();
                w.deliver(*s, std::move(t));
                any = true;
            }
        }
        if (!any)
            w.advance(base::ms(200));
    }
    if (!tampered && w.delivered_messages == 0)
        std::abort(); // an honest network (duplicates allowed) must carry the message
    return 0;
}
