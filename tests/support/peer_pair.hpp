#pragma once
// Two whole Peers (ICE + DTLS + SCTP/DCEP) on virtual time through sim::Network, with the
// servers a real deployment has on the public internet: a STUN Binding responder and the fake
// TURN server. The caller builds the topology (hosts, NATs, links) on `net`, adds servers,
// then start()s the peers with their configs; signaling is non-trickle and instant by default
// (each LocalDescription is handed to the other peer the moment it is emitted). Tests steer it
// per description: tamper_offer/tamper_answer edit it on its way, PeerSide::sdp_delay makes it
// late (a slow signaling channel), exchange_sdp = false keeps it for the test to hand over.
// Per side, `app` sees every event (the application), `after_input` runs after every input
// (e.g. a sender refilling its channel), and keep_events = false stops storing events.
//
//   test::PeerPair p(seed);
//   p.net.add_nat("nat-a", ...); p.net.attach(host_a, "nat-a"); p.net.attach(host_b);
//   test::SimStunServer stun(stun_addr);      p.add_server(stun, {stun_addr.ip()});
//   test::SimTurnServer turn(turn_config);    p.add_server(turn, turn.addresses());
//   p.start(p.config(true, {host_a, 40000}), p.config(false, {host_b, 50000}));
//   ASSERT_TRUE(p.connect(std::chrono::seconds(10)));
//
// usrsctp and libssl read gettimeofday themselves: the unit-test binary interposes it
// (tests/unit/sctp_wallclock_test.cpp); this harness freezes it to virtual time while it lives
// and advances it with `now`, so this header only works inside rtcat_unit_tests.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/check.hpp"
#include "core/base/time.hpp"
#include "core/dtls/certificate.hpp"
#include "core/net/address.hpp"
#include "core/net/datagram.hpp"
#include "core/peer/peer.hpp"
#include "core/sdp/signal.hpp"
#include "core/stun/message.hpp"
#include "tests/support/fake_turn_server.hpp"
#include "tests/support/sim_net.hpp"
#include "tests/unit/sctp_test_wallclock.hpp"

namespace rtcat::test {

// A STUN server that answers Binding requests with XOR-MAPPED-ADDRESS = the source it saw
// (RFC 8489 §8.1: the request's source is the NAT's mapping, which is what gathering wants).
// No RFC 5780 OTHER-ADDRESS: ICE does not need it. Requests addressed elsewhere, and anything
// that is not a Binding request, are ignored and counted.
class SimStunServer {
public:
    explicit SimStunServer(net::SocketAddr address) : address_(address) {}

    void handle_receive(net::Datagram&& d, base::Instant) {
        if (d.destination != address_) {
            ++ignored_;
            return;
        }
        auto m = stun::decode(d.payload);
        if (!m.ok() || m->cls() != stun::Class::Request || m->method() != stun::Method::Binding) {
            ++ignored_;
            return;
        }
        auto r = stun::Message::success_for(*m);
        r.add_xor_address(stun::attr::XorMappedAddress, d.source);
        stun::EncodeOptions o;
        o.fingerprint = true;
        out_.push_back(net::Transmit{address_, d.source, stun::encode(r, o)});
        ++answered_;
    }
    void handle_timeout(base::Instant) {}
    std::optional<net::Transmit> poll_transmit() {
        if (out_.empty())
            return std::nullopt;
        auto t = std::move(out_.front());
        out_.pop_front();
        return t;
    }
    base::Instant poll_timeout() const { return base::kNever; }

    const net::SocketAddr& address() const { return address_; }
    int answered() const { return answered_; }
    int ignored() const { return ignored_; }

private:
    net::SocketAddr address_;
    std::deque<net::Transmit> out_;
    int answered_ = 0;
    int ignored_ = 0;
};

// FakeTurnServer attached to the simulated network: datagrams to the listening address are
// TURN signalling or ChannelData; datagrams to any other address of the server (its relayed
// addresses) come from "peers" and are handed to receive_from_peer() (RFC 8656 §11.3 / §12.6:
// permission checks are the server's). What the server relays to peers outside itself goes
// back onto the network from the relayed address. Relaying between two allocations of this
// server stays inside it, as on a real server.
class SimTurnServer {
public:
    explicit SimTurnServer(FakeTurnServer::Config config)
        : address_(config.address), relay_ip_(config.relay_ip), server_(std::move(config)) {}

    // The IPs this server owns in the sim (listening and relayed; one when they coincide).
    std::vector<net::IpAddr> addresses() const {
        if (relay_ip_ == address_.ip())
            return {address_.ip()};
        return {address_.ip(), relay_ip_};
    }

    void handle_receive(net::Datagram&& d, base::Instant now) {
        if (d.destination == address_)
            server_.handle_receive(d, now);
        else
            server_.receive_from_peer(d.source, d.destination, d.payload, now);
    }
    void handle_timeout(base::Instant) {}
    std::optional<net::Transmit> poll_transmit() {
        if (auto d = server_.poll_transmit())
            return net::Transmit{d->source, d->destination, std::move(d->payload)};
        const auto& peers = server_.to_peers();
        if (forwarded_ < peers.size()) {
            const auto& d = peers[forwarded_++];
            return net::Transmit{d.source, d.destination, d.payload};
        }
        return std::nullopt;
    }
    base::Instant poll_timeout() const { return base::kNever; }

    FakeTurnServer& server() { return server_; }
    const FakeTurnServer& server() const { return server_; }

private:
    net::SocketAddr address_;
    net::IpAddr relay_ip_;
    FakeTurnServer server_;
    std::size_t forwarded_ = 0; // entries of server_.to_peers() already sent
};

// Certificates are the slow part of a peer's set-up (key generation); every PeerPair of a test
// binary reuses these two (one per role), which changes nothing the tests look at.
inline const dtls::Certificate& shared_test_certificate(bool offerer) {
    static const dtls::Certificate certs[2] = {
        [] {
            auto c = dtls::Certificate::generate();
            RTCAT_CHECK(c.ok(), "certificate generation failed");
            return *c;
        }(),
        [] {
            auto c = dtls::Certificate::generate();
            RTCAT_CHECK(c.ok(), "certificate generation failed");
            return *c;
        }()};
    return certs[offerer ? 0 : 1];
}

// One peer and what the harness saw of it.
struct PeerSide {
    std::unique_ptr<peer::Peer> peer;
    sim::Endpoint endpoint;
    std::vector<peer::Event> events;
    std::optional<sdp::SignalMessage> local;
    bool ready = false; // dcep::event::Connected
    std::optional<peer::event::Failed> failed;
    std::optional<base::Instant> failed_at;
    bool closed = false;
    // When the first of each set-up event was drained (virtual time).
    std::optional<base::Instant> ice_at;   // peer::event::IceConnected
    std::optional<base::Instant> dtls_at;  // peer::event::DtlsConnected
    std::optional<base::Instant> ready_at; // dcep::event::Connected
    // Sees every event before it is stored (or not: keep_events).
    std::function<void(peer::Peer&, peer::Event&, base::Instant)> app;
    // Events are kept only while true (false keeps memory small in big transfers).
    bool keep_events = true;
    // Runs after every input of this peer, once its events are drained.
    std::function<void(peer::Peer&, base::Instant)> after_input;
    // Descriptions for this peer arrive this long after the other peer emitted them, as a timer
    // of this peer's endpoint (so a zero delay still lands after the emitting input, not inside
    // it). Unset: handed over inside the drain that saw them.
    std::optional<base::Duration> sdp_delay;
    // Descriptions on their way to this peer under sdp_delay: (due, description).
    std::deque<std::pair<base::Instant, sdp::SignalMessage>> sdp_inbox;

    template <class E> std::vector<E> events_of() const {
        std::vector<E> out;
        for (const auto& e : events)
            if (auto* p = std::get_if<E>(&e))
                out.push_back(*p);
        return out;
    }
    std::string failure_text() const { return failed ? failed->reason : std::string("-"); }
};

class PeerPair {
public:
    // Virtual time starts at 1000 s unless the test says otherwise.
    static base::Instant start_time() { return base::Instant(std::chrono::seconds(1000)); }

    explicit PeerPair(std::uint64_t seed, base::Instant start = start_time())
        : net(seed), now(start), wall_synced_(start) {}
    PeerPair(const PeerPair&) = delete;
    PeerPair& operator=(const PeerPair&) = delete;

    // First member: the interposed gettimeofday moves only with virtual time for the whole
    // life of the peers (real time spent computing must not inflate usrsctp's RTT samples).
    test_clock::ScopedVirtualWallClock wall_clock;
    sim::Network net;
    PeerSide a;        // the offerer (ICE controlling, RFC 8829 §5.2.1)
    PeerSide b;        // the answerer
    base::Instant now; // virtual time; starts where the constructor says
    bool exchange_sdp = true;
    std::function<void(sdp::SignalMessage&)> tamper_offer;
    std::function<void(sdp::SignalMessage&)> tamper_answer;

    // A server machine (core contract, no events) owning `ips`, which are attached here as
    // public hosts. `m` must outlive this PeerPair.
    template <class Machine> void add_server(Machine& m, std::vector<net::IpAddr> ips) {
        for (const auto& ip : ips)
            net.attach(ip);
        servers_.push_back(sim::make_endpoint(m, std::move(ips)));
    }

    // A config with the shared certificate, one host socket and short gathering.
    static peer::PeerConfig config(bool offerer, net::SocketAddr host_socket,
                                   base::Duration gathering_timeout = std::chrono::seconds(1)) {
        peer::PeerConfig c;
        c.offerer = offerer;
        c.certificate = shared_test_certificate(offerer);
        c.host_sockets = {host_socket};
        c.gathering_timeout = gathering_timeout;
        return c;
    }

    // Creates both peers; their hosts must already be attached to `net`.
    void start(peer::PeerConfig ca, peer::PeerConfig cb) {
        RTCAT_CHECK(!a.peer && !b.peer, "PeerPair started twice");
        RTCAT_CHECK(ca.offerer && !cb.offerer, "a offers, b answers");
        RTCAT_CHECK(!ca.host_sockets.empty() && !cb.host_sockets.empty(), "no host socket");
        a.endpoint = endpoint(a, ips_of(ca));
        b.endpoint = endpoint(b, ips_of(cb));
        a.peer = std::make_unique<peer::Peer>(std::move(ca), now);
        b.peer = std::make_unique<peer::Peer>(std::move(cb), now);
    }

    // Runs everything until `done` or `limit` of virtual time; returns the new `now`.
    base::Instant run(base::Duration limit, const std::function<bool()>& done) {
        RTCAT_CHECK(a.peer && b.peer, "start() first");
        // The peers may have output before their first input.
        drain(a, now);
        drain(b, now);
        std::vector<sim::Endpoint*> all{&a.endpoint, &b.endpoint};
        for (auto& s : servers_)
            all.push_back(&s);
        now = sim::run_until(net, all, now, now + limit, done);
        return now;
    }

    // Until both data channel layers are up, or either side failed.
    bool connect(base::Duration limit = std::chrono::seconds(10)) {
        run(limit, [&] { return (a.ready && b.ready) || a.failed || b.failed; });
        return a.ready && b.ready;
    }

    // Hands a description to a peer (what signaling does), then drains that peer.
    void deliver_sdp(PeerSide& to, sdp::SignalMessage m, base::Instant n) {
        apply_sdp(to, std::move(m), n);
        drain(to, n);
    }

    // Drains a peer's events into its side (and signaling, if exchange_sdp).
    void drain(PeerSide& s, base::Instant n) {
        while (auto ev = s.peer->poll_event()) {
            if (auto* ld = std::get_if<peer::event::LocalDescription>(&*ev)) {
                s.local = sdp::SignalMessage{ld->type, ld->sdp};
                if (exchange_sdp) {
                    PeerSide& to = &s == &a ? b : a;
                    if (to.sdp_delay)
                        to.sdp_inbox.emplace_back(n + *to.sdp_delay, *s.local);
                    else
                        deliver_sdp(to, *s.local, n);
                }
            } else if (std::holds_alternative<peer::event::IceConnected>(*ev)) {
                if (!s.ice_at)
                    s.ice_at = n;
            } else if (std::holds_alternative<peer::event::DtlsConnected>(*ev)) {
                if (!s.dtls_at)
                    s.dtls_at = n;
            } else if (std::holds_alternative<dcep::event::Connected>(*ev)) {
                s.ready = true;
                if (!s.ready_at)
                    s.ready_at = n;
            } else if (auto* f = std::get_if<peer::event::Failed>(&*ev)) {
                if (!s.failed) {
                    s.failed = *f;
                    s.failed_at = n;
                }
            } else if (std::holds_alternative<peer::event::Closed>(*ev)) {
                s.closed = true;
            }
            if (s.app)
                s.app(*s.peer, *ev, n);
            if (s.keep_events)
                s.events.push_back(std::move(*ev));
        }
    }

private:
    // Tampering, then set_remote_description; the caller drains.
    void apply_sdp(PeerSide& to, sdp::SignalMessage m, base::Instant n) {
        if (m.type == sdp::SdpType::Offer && tamper_offer)
            tamper_offer(m);
        if (m.type == sdp::SdpType::Answer && tamper_answer)
            tamper_answer(m);
        auto r = to.peer->set_remote_description(m, n);
        ASSERT_TRUE(r.ok()) << r.error().message;
    }

    static base::Instant next_timeout(const PeerSide& s) {
        base::Instant t = s.peer->poll_timeout();
        if (!s.sdp_inbox.empty())
            t = std::min(t, s.sdp_inbox.front().first);
        return t;
    }

    static std::vector<net::IpAddr> ips_of(const peer::PeerConfig& c) {
        std::vector<net::IpAddr> ips;
        for (const auto& s : c.host_sockets)
            if (std::find(ips.begin(), ips.end(), s.ip()) == ips.end())
                ips.push_back(s.ip());
        return ips;
    }

    // Advances the interposed wall clock to virtual time before every input.
    void sync_wall(base::Instant n) {
        if (n > wall_synced_) {
            test_clock::advance_wall_clock(n - wall_synced_);
            wall_synced_ = n;
        }
    }

    sim::Endpoint endpoint(PeerSide& s, std::vector<net::IpAddr> ips) {
        sim::Endpoint e;
        e.addresses = std::move(ips);
        e.receive = [this, &s](net::Datagram&& d, base::Instant n) {
            sync_wall(n);
            s.peer->handle_receive(std::move(d), n);
        };
        // The timer is the peer's or a late description's (run_until calls this only when
        // next_timeout() is due); the peer sees handle_timeout only when its own is.
        e.timeout = [this, &s](base::Instant n) {
            sync_wall(n);
            while (!s.sdp_inbox.empty() && s.sdp_inbox.front().first <= n) {
                auto m = std::move(s.sdp_inbox.front().second);
                s.sdp_inbox.pop_front();
                apply_sdp(s, std::move(m), n);
            }
            if (n >= s.peer->poll_timeout())
                s.peer->handle_timeout(n);
        };
        e.poll_transmit = [&s] { return s.peer->poll_transmit(); };
        e.poll_timeout = [&s] { return next_timeout(s); };
        e.after_input = [this, &s](base::Instant n) {
            drain(s, n);
            if (s.after_input)
                s.after_input(*s.peer, n);
        };
        return e;
    }

    base::Instant wall_synced_;         // the virtual time the interposed wall clock has reached
    std::deque<sim::Endpoint> servers_; // stable addresses: run_until keeps pointers
};

} // namespace rtcat::test
