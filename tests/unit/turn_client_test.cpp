// TURN client (RFC 8656 over UDP, RFC 8489 §9.2 long-term credentials) against the in-test
// FakeTurnServer, on virtual time with a 10 ms one-way link.

#include <algorithm>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/time.hpp"
#include "core/stun/credentials.hpp"
#include "core/stun/message.hpp"
#include "core/stun/turn_client.hpp"
#include "tests/support/fake_turn_server.hpp"

namespace rtcat::stun {
namespace {

using base::Instant;
using base::ms;
using std::chrono::seconds;
using test::FakeTurnServer;

const net::SocketAddr kServer(net::IpAddr::v4(192, 0, 2, 1), 3478);
const net::IpAddr kRelayIp = net::IpAddr::v4(198, 51, 100, 1);
const net::SocketAddr kClientA(net::IpAddr::v4(10, 0, 0, 1), 5000);
const net::SocketAddr kClientB(net::IpAddr::v4(10, 0, 0, 2), 6000);
const net::SocketAddr kExternalPeer(net::IpAddr::v4(203, 0, 113, 9), 7000);
constexpr base::Duration kOneWay = ms(10);

Instant at(std::int64_t millis) {
    return Instant{} + ms(millis);
}
std::int64_t millis(Instant t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - Instant{}).count();
}
base::Bytes bytes(std::string_view s) {
    return base::Bytes(s.begin(), s.end());
}

FakeTurnServer::Config server_config() {
    FakeTurnServer::Config c;
    c.address = kServer;
    c.relay_ip = kRelayIp;
    c.users = {{"alice", "wonderland"}, {"bob", "builder"}};
    return c;
}

TurnConfig client_config(net::SocketAddr local, std::string user, std::string pass) {
    TurnConfig c;
    c.server = kServer;
    c.local = local;
    c.username = std::move(user);
    c.password = std::move(pass);
    return c;
}

// Clients and the server on a link with a fixed one-way delay. Transmissions can be dropped
// by a filter; everything a client sends and every event is logged with its time.
class Net {
public:
    explicit Net(FakeTurnServer::Config cfg = server_config()) : server(std::move(cfg)) {}

    struct Sent {
        Instant at;
        net::Transmit t;
        Message msg; // decoded when STUN
        bool stun = false;
    };
    struct Endpoint {
        TurnClient* client = nullptr;
        net::SocketAddr local;
        std::vector<Sent> sent;
        std::vector<std::pair<Instant, TurnEvent>> events;
        int transmissions = 0;
    };

    std::size_t add(TurnClient& c, net::SocketAddr local) {
        endpoints.push_back(Endpoint{&c, local, {}, {}, 0});
        return endpoints.size() - 1;
    }

    // Collects outputs of everyone at the current time.
    void flush() {
        for (auto& ep : endpoints) {
            while (auto t = ep.client->poll_transmit()) {
                Sent s{now, *t, {}, false};
                if (net::classify(t->payload) == net::PacketKind::Stun) {
                    auto m = decode(t->payload);
                    if (m.ok()) {
                        s.msg = *m;
                        s.stun = true;
                    }
                }
                int index = ep.transmissions++;
                ep.sent.push_back(s);
                if (drop && drop(index, s))
                    continue;
                wire.push_back(
                    Flight{now + kOneWay, net::Datagram{t->source, t->destination, t->payload}});
            }
            while (auto ev = ep.client->poll_event())
                ep.events.emplace_back(now, std::move(*ev));
        }
        while (auto d = server.poll_transmit())
            if (!drop_from_server || !drop_from_server(*d))
                wire.push_back(Flight{now + kOneWay, std::move(*d)});
    }

    Instant next_deadline() const {
        Instant next = base::kNever;
        for (const auto& f : wire)
            next = std::min(next, f.arrival);
        for (const auto& ep : endpoints)
            next = std::min(next, ep.client->poll_timeout());
        return next;
    }

    // Advances virtual time to `until`, delivering datagrams and firing timers on the way.
    void run_until(Instant until) {
        flush();
        for (;;) {
            Instant next = next_deadline();
            if (next == base::kNever || next > until)
                break;
            now = std::max(now, next);
            std::vector<Flight> due;
            for (auto it = wire.begin(); it != wire.end();) {
                if (it->arrival <= now) {
                    due.push_back(std::move(*it));
                    it = wire.erase(it);
                } else {
                    ++it;
                }
            }
            for (auto& f : due) {
                if (f.d.destination == kServer) {
                    server.handle_receive(f.d, now);
                } else {
                    for (auto& ep : endpoints)
                        if (f.d.destination == ep.local)
                            delivered_ours.push_back(ep.client->handle_receive(f.d, now));
                }
                flush();
            }
            for (auto& ep : endpoints)
                if (ep.client->poll_timeout() <= now)
                    ep.client->handle_timeout(now);
            flush();
        }
        now = std::max(now, until);
    }
    void run_for(base::Duration d) { run_until(now + d); }

    // Calls `f` at the current time and collects the outputs.
    template <typename F> void act(F&& f) {
        f(now);
        flush();
    }

    template <typename E> std::vector<E> events_of(std::size_t i) const {
        std::vector<E> out;
        for (const auto& [t, ev] : endpoints[i].events)
            if (const auto* e = std::get_if<E>(&ev))
                out.push_back(*e);
        return out;
    }
    template <typename E> std::optional<Instant> first_event_time(std::size_t i) const {
        for (const auto& [t, ev] : endpoints[i].events)
            if (std::holds_alternative<E>(ev))
                return t;
        return std::nullopt;
    }
    std::vector<Sent> sent_requests(std::size_t i, Method m) const {
        std::vector<Sent> out;
        for (const auto& s : endpoints[i].sent)
            if (s.stun && s.msg.cls() == Class::Request && s.msg.method() == m)
                out.push_back(s);
        return out;
    }

    struct Flight {
        Instant arrival;
        net::Datagram d;
    };

    FakeTurnServer server;
    std::vector<Endpoint> endpoints;
    std::vector<Flight> wire;
    std::vector<bool> delivered_ours;
    Instant now{};
    // (index of the endpoint's transmission, what it is) -> drop?
    std::function<bool(int, const Sent&)> drop;
    std::function<bool(const net::Datagram&)> drop_from_server;
};

// Brings a client to Allocated through the 401 round trip.
void allocate(Net& net, TurnClient& c) {
    net.act([&](Instant now) { c.allocate(now); });
    net.run_for(ms(200));
    ASSERT_EQ(c.state(), TurnClient::State::Allocated);
}

TEST(TurnClient, AllocatesThroughTheLongTermCredentialChallenge) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);

    auto allocs = net.events_of<turn_event::Allocated>(ia);
    ASSERT_EQ(allocs.size(), 1u);
    EXPECT_EQ(allocs[0].relayed.ip(), kRelayIp);
    EXPECT_EQ(allocs[0].mapped, kClientA);
    EXPECT_EQ(allocs[0].lifetime, seconds(600));
    EXPECT_EQ(allocs[0].server_software, "fake-turn");
    EXPECT_EQ(a.relayed_address(), allocs[0].relayed);
    // Two round trips: 401, then success.
    EXPECT_EQ(net.first_event_time<turn_event::Allocated>(ia), at(40));

    auto reqs = net.sent_requests(ia, Method::Allocate);
    ASSERT_EQ(reqs.size(), 2u);
    // RFC 8489 §9.2.3: the first request carries no credentials.
    EXPECT_FALSE(reqs[0].msg.has(attr::Username));
    EXPECT_FALSE(reqs[0].msg.has(attr::MessageIntegrity));
    EXPECT_EQ(reqs[0].msg.requested_transport(), 17);
    EXPECT_EQ(reqs[0].msg.get_u32(attr::Lifetime), 600u);
    EXPECT_EQ(reqs[0].msg.get_string(attr::Software), "rtcat");
    EXPECT_FALSE(reqs[0].msg.has(attr::DontFragment));
    // The retry: a new transaction with USERNAME, REALM, NONCE and MD5-keyed integrity.
    EXPECT_NE(reqs[1].msg.transaction_id(), reqs[0].msg.transaction_id());
    EXPECT_EQ(reqs[1].msg.get_string(attr::Username), "alice");
    EXPECT_EQ(reqs[1].msg.get_string(attr::Realm), "example.org");
    EXPECT_EQ(reqs[1].msg.get_string(attr::Nonce), net.server.nonce());
    EXPECT_TRUE(reqs[1].msg.has(attr::MessageIntegrity));
    EXPECT_FALSE(reqs[1].msg.has(attr::MessageIntegritySha256));
    EXPECT_FALSE(reqs[1].msg.has(attr::PasswordAlgorithm));
    EXPECT_EQ(
        check_integrity(reqs[1].t.payload, long_term_key("alice", "example.org", "wonderland")),
        IntegrityResult::Valid);
    EXPECT_EQ(net.server.integrity_failures(), 0);
}

TEST(TurnClient, TwoClientsRelayThroughPermissionsAndChannels) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    TurnClient b(client_config(kClientB, "bob", "builder"));
    auto ia = net.add(a, kClientA);
    auto ib = net.add(b, kClientB);
    allocate(net, a);
    allocate(net, b);
    auto ra = *a.relayed_address();
    auto rb = *b.relayed_address();
    ASSERT_NE(ra, rb);

    net.act([&](Instant now) {
        a.create_permission(rb.ip(), now);
        b.create_permission(ra.ip(), now);
    });
    net.run_for(ms(100));
    ASSERT_EQ(net.events_of<turn_event::PermissionCreated>(ia).size(), 1u);
    EXPECT_EQ(net.events_of<turn_event::PermissionCreated>(ia)[0].peer, rb.ip());
    ASSERT_EQ(net.events_of<turn_event::PermissionCreated>(ib).size(), 1u);
    EXPECT_TRUE(a.has_permission(rb.ip()));
    // Permissions are already authenticated: no second 401 round trip.
    auto perm = net.sent_requests(ia, Method::CreatePermission);
    ASSERT_EQ(perm.size(), 1u);
    EXPECT_TRUE(perm[0].msg.has(attr::MessageIntegrity));
    EXPECT_EQ(perm[0].msg.get_xor_address(attr::XorPeerAddress)->ip(), rb.ip());

    // Before any channel: Send indication -> Data indication.
    net.act([&](Instant now) { EXPECT_TRUE(a.send(rb, bytes("over indications"), now)); });
    net.run_for(ms(100));
    auto data_b = net.events_of<turn_event::Data>(ib);
    ASSERT_EQ(data_b.size(), 1u);
    EXPECT_EQ(data_b[0].peer, ra);
    EXPECT_EQ(data_b[0].data, bytes("over indications"));
    EXPECT_FALSE(data_b[0].via_channel);
    auto last_a = net.endpoints[ia].sent.back();
    ASSERT_TRUE(last_a.stun);
    EXPECT_EQ(last_a.msg.method(), Method::Send);
    EXPECT_EQ(last_a.msg.cls(), Class::Indication);
    EXPECT_FALSE(last_a.msg.has(attr::DontFragment));

    // Channels both ways.
    net.act([&](Instant now) {
        a.bind_channel(rb, now);
        b.bind_channel(ra, now);
    });
    net.run_for(ms(100));
    auto bound_a = net.events_of<turn_event::ChannelBound>(ia);
    ASSERT_EQ(bound_a.size(), 1u);
    EXPECT_EQ(bound_a[0].peer, rb);
    EXPECT_EQ(bound_a[0].channel, 0x4000);
    EXPECT_EQ(a.channel_for(rb), 0x4000);
    ASSERT_EQ(net.events_of<turn_event::ChannelBound>(ib).size(), 1u);

    net.act([&](Instant now) { EXPECT_TRUE(a.send(rb, bytes("ping"), now)); });
    net.run_for(ms(100));
    // A sent ChannelData, not a Send indication.
    last_a = net.endpoints[ia].sent.back();
    EXPECT_EQ(net::classify(last_a.t.payload), net::PacketKind::TurnChannel);
    EXPECT_EQ(last_a.t.destination, kServer);
    EXPECT_EQ(last_a.t.source, kClientA);
    data_b = net.events_of<turn_event::Data>(ib);
    ASSERT_EQ(data_b.size(), 2u);
    EXPECT_EQ(data_b[1].peer, ra);
    EXPECT_EQ(data_b[1].data, bytes("ping"));
    EXPECT_TRUE(data_b[1].via_channel);

    net.act([&](Instant now) { EXPECT_TRUE(b.send(ra, bytes("pong!"), now)); });
    net.run_for(ms(100));
    auto data_a = net.events_of<turn_event::Data>(ia);
    ASSERT_EQ(data_a.size(), 1u);
    EXPECT_EQ(data_a[0].peer, rb);
    EXPECT_EQ(data_a[0].data, bytes("pong!")); // odd length: padding stripped
    EXPECT_TRUE(data_a[0].via_channel);
    EXPECT_EQ(a.stats().malformed, 0u);
    EXPECT_EQ(b.stats().unknown_channel, 0u);
    for (bool ours : net.delivered_ours)
        EXPECT_TRUE(ours);
}

TEST(TurnClient, WrongPasswordIsAuthFailedNamingTheRealm) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "looking-glass"));
    auto ia = net.add(a, kClientA);
    net.act([&](Instant now) { a.allocate(now); });
    net.run_for(seconds(1));
    EXPECT_EQ(a.state(), TurnClient::State::Failed);
    auto failed = net.events_of<turn_event::AllocateFailed>(ia);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].reason, TurnFailure::AuthFailed);
    EXPECT_EQ(failed[0].error_code, 401);
    EXPECT_EQ(failed[0].realm, "example.org");
    EXPECT_EQ(net.sent_requests(ia, Method::Allocate).size(), 2u) << "no third attempt";
    EXPECT_EQ(net.server.integrity_failures(), 1);
    EXPECT_EQ(a.poll_timeout(), base::kNever);
}

TEST(TurnClient, StaleNonceOnAllocateIsRetriedWithTheNewNonce) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    net.server.stale_next(1);
    allocate(net, a);
    auto reqs = net.sent_requests(ia, Method::Allocate);
    ASSERT_EQ(reqs.size(), 3u);
    EXPECT_NE(reqs[1].msg.get_string(attr::Nonce), reqs[2].msg.get_string(attr::Nonce));
    EXPECT_EQ(reqs[2].msg.get_string(attr::Nonce), net.server.nonce());
    EXPECT_EQ(a.stats().stale_nonce_retries, 1u);
    EXPECT_EQ(net.events_of<turn_event::Allocated>(ia).size(), 1u);
}

TEST(TurnClient, StaleNonceOnCreatePermissionIsRetriedOnceOnly) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    auto peer1 = net::IpAddr::v4(203, 0, 113, 1);
    auto peer2 = net::IpAddr::v4(203, 0, 113, 2);

    net.server.stale_next(1);
    net.act([&](Instant now) { a.create_permission(peer1, now); });
    net.run_for(ms(200));
    ASSERT_EQ(net.events_of<turn_event::PermissionCreated>(ia).size(), 1u);
    EXPECT_EQ(net.sent_requests(ia, Method::CreatePermission).size(), 2u);

    // Two 438s in a row: the second one is final (RFC 8489 §9.2.5 retries once).
    net.server.stale_next(2);
    net.act([&](Instant now) { a.create_permission(peer2, now); });
    net.run_for(ms(200));
    auto failed = net.events_of<turn_event::PermissionFailed>(ia);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].peer, peer2);
    EXPECT_EQ(failed[0].error_code, 438);
    EXPECT_FALSE(a.has_permission(peer2));
    EXPECT_EQ(a.state(), TurnClient::State::Allocated);
}

TEST(TurnClient, LostTransmissionsAreRetransmitted) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    net.drop = [](int index, const Net::Sent&) { return index < 2; };
    net.act([&](Instant now) { a.allocate(now); });
    net.run_for(seconds(5));
    ASSERT_EQ(a.state(), TurnClient::State::Allocated);
    auto reqs = net.sent_requests(ia, Method::Allocate);
    ASSERT_EQ(reqs.size(), 4u); // 0 (lost), 500 (lost), 1500, then the authenticated one
    EXPECT_EQ(millis(reqs[0].at), 0);
    EXPECT_EQ(millis(reqs[1].at), 500);
    EXPECT_EQ(millis(reqs[2].at), 1500);
    EXPECT_EQ(reqs[0].t.payload, reqs[2].t.payload) << "a retransmission repeats the bytes";
    EXPECT_EQ(millis(reqs[3].at), 1520);
    EXPECT_EQ(net.first_event_time<turn_event::Allocated>(ia), at(1540));
    EXPECT_EQ(a.stats().retransmissions, 2u);
    EXPECT_EQ(net.server.seen_requests(Method::Allocate).size(), 2u);
}

TEST(TurnClient, LostSuccessIsAnsweredAgainForTheRetransmittedAllocate) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    int success_drops = 0;
    net.drop_from_server = [&](const net::Datagram& d) {
        auto m = decode(d.payload);
        if (m.ok() && m->cls() == Class::Success && success_drops == 0) {
            ++success_drops;
            return true;
        }
        return false;
    };
    net.act([&](Instant now) { a.allocate(now); });
    net.run_for(seconds(2));
    ASSERT_EQ(a.state(), TurnClient::State::Allocated);
    // The authenticated Allocate left at 20 ms, was resent at 520 and answered at 540.
    EXPECT_EQ(net.first_event_time<turn_event::Allocated>(ia), at(540));
    EXPECT_EQ(a.stats().retransmissions, 1u);
}

TEST(TurnClient, NegotiatesSha256WhenTheServerOffersIt) {
    auto cfg = server_config();
    cfg.offer_password_algorithms = true;
    Net net(cfg);
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    EXPECT_TRUE(a.credentials().use_sha256());
    auto features = a.credentials().features();
    ASSERT_TRUE(features);
    EXPECT_TRUE(features->password_algorithms());

    auto reqs = net.sent_requests(ia, Method::Allocate);
    ASSERT_EQ(reqs.size(), 2u);
    const auto& auth = reqs[1];
    EXPECT_TRUE(auth.msg.has(attr::MessageIntegritySha256));
    EXPECT_FALSE(auth.msg.has(attr::MessageIntegrity));
    EXPECT_EQ(auth.msg.password_algorithm(), PasswordAlgorithm::Sha256);
    EXPECT_EQ(auth.msg.password_algorithms(),
              (std::vector<PasswordAlgorithm>{PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5}));
    EXPECT_EQ(check_integrity(auth.t.payload, long_term_key("alice", "example.org", "wonderland",
                                                            PasswordAlgorithm::Sha256)),
              IntegrityResult::Valid);

    // Later requests keep the algorithm and the echoed list.
    net.act([&](Instant now) { a.create_permission(net::IpAddr::v4(203, 0, 113, 1), now); });
    net.run_for(ms(100));
    EXPECT_EQ(net.events_of<turn_event::PermissionCreated>(ia).size(), 1u);
    auto perm = net.sent_requests(ia, Method::CreatePermission);
    ASSERT_EQ(perm.size(), 1u);
    EXPECT_TRUE(perm[0].msg.has(attr::MessageIntegritySha256));
    EXPECT_EQ(perm[0].msg.password_algorithm(), PasswordAlgorithm::Sha256);
    EXPECT_EQ(a.stats().bad_integrity, 0u);
}

TEST(TurnClient, PicksTheFirstSupportedAlgorithmOnTheServersList) {
    auto cfg = server_config();
    cfg.offer_password_algorithms = true;
    cfg.algorithms = {PasswordAlgorithm::Md5, PasswordAlgorithm::Sha256};
    Net net(cfg);
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    // RFC 8489 §9.2.5: "the first algorithm supported on the list".
    EXPECT_FALSE(a.credentials().use_sha256());
    auto reqs = net.sent_requests(ia, Method::Allocate);
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[1].msg.password_algorithm(), PasswordAlgorithm::Md5);
    EXPECT_TRUE(reqs[1].msg.has(attr::MessageIntegrity));
    EXPECT_TRUE(reqs[1].msg.has(attr::PasswordAlgorithms));
}

TEST(TurnClient, RefusesToRetryWhenThePasswordAlgorithmsListWasStripped) {
    auto cfg = server_config();
    cfg.offer_password_algorithms = true;
    Net net(cfg);
    net.server.strip_password_algorithms();
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    net.act([&](Instant now) { a.allocate(now); });
    net.run_for(seconds(1));
    auto failed = net.events_of<turn_event::AllocateFailed>(ia);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].reason, TurnFailure::AuthFailed);
    EXPECT_EQ(a.stats().bid_down, 1u);
    EXPECT_EQ(net.sent_requests(ia, Method::Allocate).size(), 1u);
}

TEST(TurnClient, RefreshesTheAllocationAMinuteBeforeItExpires) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a); // Allocated at 40 ms with a 600 s lifetime
    EXPECT_EQ(a.poll_timeout(), at(40) + seconds(540));
    net.run_until(at(40) + seconds(540) - ms(1));
    EXPECT_TRUE(net.sent_requests(ia, Method::Refresh).empty());
    net.run_until(at(40) + seconds(541));
    auto refresh = net.sent_requests(ia, Method::Refresh);
    ASSERT_EQ(refresh.size(), 1u);
    EXPECT_EQ(refresh[0].at, at(40) + seconds(540));
    EXPECT_EQ(refresh[0].msg.get_u32(attr::Lifetime), 600u);
    EXPECT_EQ(refresh[0].msg.get_string(attr::Software), "rtcat");
    EXPECT_TRUE(refresh[0].msg.has(attr::MessageIntegrity));
    auto refreshed = net.events_of<turn_event::Refreshed>(ia);
    ASSERT_EQ(refreshed.size(), 1u);
    EXPECT_EQ(refreshed[0].lifetime, seconds(600));
    // The next one is scheduled from the answer.
    EXPECT_EQ(a.poll_timeout(), at(40) + seconds(540) + ms(20) + seconds(540));
    // Still alive an hour later, with a refresh every 540 s.
    net.run_for(seconds(3600));
    EXPECT_EQ(a.state(), TurnClient::State::Allocated);
    EXPECT_EQ(net.sent_requests(ia, Method::Refresh).size(), 7u);
    EXPECT_NE(net.server.allocation_for(kClientA), nullptr);
}

TEST(TurnClient, ShortLifetimeIsRefreshedHalfway) {
    auto cfg = server_config();
    cfg.max_lifetime = 100;
    Net net(cfg);
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    EXPECT_EQ(net.events_of<turn_event::Allocated>(ia)[0].lifetime, seconds(100));
    net.run_until(at(40) + seconds(51));
    auto refresh = net.sent_requests(ia, Method::Refresh);
    ASSERT_EQ(refresh.size(), 1u);
    EXPECT_EQ(refresh[0].at, at(40) + seconds(50));
}

TEST(TurnClient, PermissionsAndChannelsAreRefreshedOnTime) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    auto perm_peer = net::IpAddr::v4(203, 0, 113, 1);
    net.act([&](Instant now) {
        a.create_permission(perm_peer, now);
        a.bind_channel(kExternalPeer, now);
    });
    net.run_for(ms(100)); // answered at 220 ms
    ASSERT_EQ(net.events_of<turn_event::ChannelBound>(ia).size(), 1u);
    net.run_until(at(220) + seconds(600));
    auto perms = net.sent_requests(ia, Method::CreatePermission);
    // The explicit one, plus refreshes of both permissions (the channel's peer got one via
    // ChannelBind, RFC 8656 §12.2) 240 s after each answer.
    std::vector<std::int64_t> perm_times;
    for (const auto& p : perms)
        perm_times.push_back(millis(p.at));
    EXPECT_EQ(std::count(perm_times.begin(), perm_times.end(), 200 + 0), 1);
    EXPECT_EQ(std::count(perm_times.begin(), perm_times.end(), 220 + 240000), 2);
    EXPECT_EQ(std::count(perm_times.begin(), perm_times.end(), 240 + 480000), 2);
    auto binds = net.sent_requests(ia, Method::ChannelBind);
    ASSERT_EQ(binds.size(), 2u);
    EXPECT_EQ(binds[1].at, at(220) + seconds(540));
    EXPECT_EQ(binds[1].msg.channel_number(), 0x4000);
    EXPECT_EQ(net.events_of<turn_event::ChannelBound>(ia).size(), 1u) << "no event on refresh";
    EXPECT_EQ(net.events_of<turn_event::PermissionCreated>(ia).size(), 1u);
    EXPECT_TRUE(a.has_permission(perm_peer));
    EXPECT_TRUE(a.has_permission(kExternalPeer.ip()));
}

TEST(TurnClient, ReleaseSendsLifetimeZero) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    ASSERT_NE(net.server.allocation_for(kClientA), nullptr);
    net.act([&](Instant now) { a.release(now); });
    EXPECT_EQ(a.state(), TurnClient::State::Releasing);
    net.run_for(ms(100));
    auto refresh = net.sent_requests(ia, Method::Refresh);
    ASSERT_EQ(refresh.size(), 1u);
    EXPECT_EQ(refresh[0].msg.get_u32(attr::Lifetime), 0u);
    EXPECT_TRUE(refresh[0].msg.has(attr::MessageIntegrity));
    auto released = net.events_of<turn_event::Released>(ia);
    ASSERT_EQ(released.size(), 1u);
    EXPECT_TRUE(released[0].confirmed);
    EXPECT_EQ(a.state(), TurnClient::State::Released);
    EXPECT_EQ(net.server.allocation_for(kClientA), nullptr);
    EXPECT_EQ(a.poll_timeout(), base::kNever);
    net.act([&](Instant now) { EXPECT_FALSE(a.send(kExternalPeer, bytes("late"), now)); });
    EXPECT_EQ(a.stats().send_dropped, 1u);
}

TEST(TurnClient, ResponseWithBadIntegrityIsDroppedAndTheRetransmissionSucceeds) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    net.server.tamper_next(1); // the signed Allocate success
    net.act([&](Instant now) { a.allocate(now); });
    net.run_for(ms(200));
    EXPECT_EQ(a.state(), TurnClient::State::Allocating);
    EXPECT_EQ(a.stats().bad_integrity, 1u);
    net.run_for(seconds(1));
    ASSERT_EQ(a.state(), TurnClient::State::Allocated);
    // Authenticated Allocate at 20 ms, tampered answer dropped, resent at 520.
    EXPECT_EQ(net.first_event_time<turn_event::Allocated>(ia), at(540));
}

TEST(TurnClient, UnsignedResponsesToAuthenticatedRequestsAreDropped) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    auto peer = net::IpAddr::v4(203, 0, 113, 1);
    net.act([&](Instant now) { a.create_permission(peer, now); });
    auto reqs = net.sent_requests(ia, Method::CreatePermission);
    ASSERT_EQ(reqs.size(), 1u);
    // RFC 8489 §9.2.5: a forged success or a 400 without integrity is discarded as if never
    // received (a 400 included), so the real answer still counts.
    auto forged = Message::success_for(reqs[0].msg);
    EXPECT_TRUE(a.handle_receive(net::Datagram{kServer, kClientA, encode(forged)}, net.now));
    auto forged400 = Message::error_for(reqs[0].msg, 400, "Bad Request");
    EXPECT_TRUE(a.handle_receive(net::Datagram{kServer, kClientA, encode(forged400)}, net.now));
    base::Bytes wrong_key = long_term_key("alice", "example.org", "guess");
    EncodeOptions opts;
    opts.integrity_key = &wrong_key;
    EXPECT_TRUE(a.handle_receive(net::Datagram{kServer, kClientA, encode(forged, opts)}, net.now));
    EXPECT_EQ(a.stats().bad_integrity, 3u);
    EXPECT_FALSE(a.poll_event());
    net.run_for(ms(100));
    EXPECT_EQ(net.events_of<turn_event::PermissionCreated>(ia).size(), 1u);
    EXPECT_TRUE(net.events_of<turn_event::PermissionFailed>(ia).empty());
}

TEST(TurnClient, StaleNonceOnRefreshAndChannelBindIsRetried) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    net.server.stale_next(1);
    net.act([&](Instant now) { a.bind_channel(kExternalPeer, now); });
    net.run_for(ms(100));
    EXPECT_EQ(net.events_of<turn_event::ChannelBound>(ia).size(), 1u);
    auto binds = net.sent_requests(ia, Method::ChannelBind);
    ASSERT_EQ(binds.size(), 2u);
    EXPECT_EQ(binds[0].msg.channel_number(), binds[1].msg.channel_number());
    EXPECT_NE(binds[0].msg.transaction_id(), binds[1].msg.transaction_id());

    // The nonce goes stale just before the allocation refresh (permission refreshes for the
    // channel's peer have been running meanwhile).
    net.run_until(at(40) + seconds(540) - ms(1));
    net.server.stale_next(1);
    net.run_until(at(40) + seconds(541));
    EXPECT_EQ(net.sent_requests(ia, Method::Refresh).size(), 2u);
    EXPECT_EQ(net.events_of<turn_event::Refreshed>(ia).size(), 1u);
    EXPECT_EQ(a.state(), TurnClient::State::Allocated);
    EXPECT_EQ(a.stats().stale_nonce_retries, 2u);
}

TEST(TurnClient, DataIndicationFromAPeerSurfacesAsData) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    net.act([&](Instant now) { a.create_permission(kExternalPeer.ip(), now); });
    net.run_for(ms(100));
    net.act([&](Instant now) {
        net.server.receive_from_peer(kExternalPeer, *a.relayed_address(), bytes("hi there"), now);
    });
    net.run_for(ms(100));
    auto data = net.events_of<turn_event::Data>(ia);
    ASSERT_EQ(data.size(), 1u);
    EXPECT_EQ(data[0].peer, kExternalPeer);
    EXPECT_EQ(data[0].data, bytes("hi there"));
    EXPECT_FALSE(data[0].via_channel);

    // And the way out: a Send indication reaches the external peer from the relayed address.
    net.act([&](Instant now) { a.send(kExternalPeer, bytes("hello"), now); });
    net.run_for(ms(100));
    ASSERT_EQ(net.server.to_peers().size(), 1u);
    EXPECT_EQ(net.server.to_peers()[0].source, *a.relayed_address());
    EXPECT_EQ(net.server.to_peers()[0].destination, kExternalPeer);
    EXPECT_EQ(net.server.to_peers()[0].payload, bytes("hello"));
}

TEST(TurnClient, DropsAndCountsTrafficItDidNotAskFor) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    net.add(a, kClientA);
    allocate(net, a);
    Instant now = net.now;

    // A Data indication from a peer without a permission (RFC 8656 §11.6).
    Message ind = Message::indication(Method::Data);
    ind.add_xor_address(attr::XorPeerAddress, kExternalPeer);
    ind.add_raw(attr::Data, bytes("sneaky"));
    EXPECT_TRUE(a.handle_receive(net::Datagram{kServer, kClientA, encode(ind)}, now));
    EXPECT_EQ(a.stats().no_permission, 1u);

    // A Data indication missing DATA.
    Message bad = Message::indication(Method::Data);
    bad.add_xor_address(attr::XorPeerAddress, kExternalPeer);
    EXPECT_TRUE(a.handle_receive(net::Datagram{kServer, kClientA, encode(bad)}, now));
    EXPECT_EQ(a.stats().malformed, 1u);

    // ChannelData on a channel we never bound.
    EXPECT_TRUE(a.handle_receive(
        net::Datagram{kServer, kClientA, encode_channel_data(0x4123, bytes("x"))}, now));
    EXPECT_EQ(a.stats().unknown_channel, 1u);

    // Truncated STUN from the server.
    auto wire = encode(ind);
    wire.resize(wire.size() - 4);
    EXPECT_TRUE(a.handle_receive(net::Datagram{kServer, kClientA, wire}, now));
    EXPECT_EQ(a.stats().malformed, 2u);

    // Not ours: a Binding response for some other component, or anything not from the server.
    auto other = Message::success_for(Message::request(Method::Binding));
    EXPECT_FALSE(a.handle_receive(net::Datagram{kServer, kClientA, encode(other)}, now));
    EXPECT_FALSE(a.handle_receive(net::Datagram{kExternalPeer, kClientA, encode(ind)}, now));
    EXPECT_FALSE(a.poll_event());
}

TEST(TurnClient, UnknownComprehensionRequiredAttributeFailsTheTransaction) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    net.server.unknown_attribute_next(1);
    net.act([&](Instant now) { a.create_permission(net::IpAddr::v4(203, 0, 113, 5), now); });
    net.run_for(seconds(60));
    EXPECT_EQ(a.stats().unknown_attributes, 1u);
    auto failed = net.events_of<turn_event::PermissionFailed>(ia);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].reason, TurnFailure::Malformed);
    EXPECT_EQ(net.sent_requests(ia, Method::CreatePermission).size(), 1u) << "not retransmitted";
}

TEST(TurnClient, TryAlternateIsReportedNotFollowed) {
    Net net;
    auto alt = net::SocketAddr(net::IpAddr::v4(192, 0, 2, 77), 3478);
    net.server.redirect_to(alt);
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    net.act([&](Instant now) { a.allocate(now); });
    net.run_for(seconds(1));
    auto failed = net.events_of<turn_event::AllocateFailed>(ia);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].reason, TurnFailure::ServerError);
    EXPECT_EQ(failed[0].error_code, 300);
    EXPECT_EQ(failed[0].alternate_server, alt);
    for (const auto& s : net.endpoints[ia].sent)
        EXPECT_EQ(s.t.destination, kServer);
}

TEST(TurnClient, SilentServerTimesOutAfterTheFullSchedule) {
    Net net;
    net.server.silent();
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    net.act([&](Instant now) { a.allocate(now); });
    net.run_for(seconds(60));
    auto failed = net.events_of<turn_event::AllocateFailed>(ia);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].reason, TurnFailure::Timeout);
    EXPECT_EQ(net.first_event_time<turn_event::AllocateFailed>(ia), at(39500));
    EXPECT_EQ(net.sent_requests(ia, Method::Allocate).size(), 7u);
}

TEST(TurnClient, RefreshTimeoutFailsTheAllocation) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    allocate(net, a);
    net.server.silent();
    net.run_until(at(40) + seconds(540) + ms(39500) + ms(1));
    auto failed = net.events_of<turn_event::Failed>(ia);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].reason, TurnFailure::Timeout);
    EXPECT_EQ(net.first_event_time<turn_event::Failed>(ia), at(40) + seconds(540) + ms(39500));
    EXPECT_EQ(a.state(), TurnClient::State::Failed);
    EXPECT_EQ(a.poll_timeout(), base::kNever);
}

TEST(TurnClient, OperationsAskedDuringAllocateAreIssuedAfterIt) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    net.act([&](Instant now) {
        a.allocate(now);
        a.create_permission(kExternalPeer.ip(), now);
        a.bind_channel(kExternalPeer, now);
        EXPECT_FALSE(a.send(kExternalPeer, bytes("too early"), now));
    });
    net.run_for(ms(500));
    EXPECT_EQ(net.events_of<turn_event::PermissionCreated>(ia).size(), 1u);
    EXPECT_EQ(net.events_of<turn_event::ChannelBound>(ia).size(), 1u);
    EXPECT_EQ(a.stats().send_dropped, 1u);
}

TEST(TurnClient, OperationsWithoutAllocationFail) {
    Net net;
    TurnClient a(client_config(kClientA, "alice", "wonderland"));
    auto ia = net.add(a, kClientA);
    net.act([&](Instant now) {
        a.create_permission(kExternalPeer.ip(), now);
        a.bind_channel(kExternalPeer, now);
    });
    auto pf = net.events_of<turn_event::PermissionFailed>(ia);
    ASSERT_EQ(pf.size(), 1u);
    EXPECT_EQ(pf[0].reason, TurnFailure::NotAllocated);
    EXPECT_EQ(net.events_of<turn_event::ChannelBindFailed>(ia).size(), 1u);
    EXPECT_EQ(a.poll_timeout(), base::kNever);
}

// --- nonce cookie ---------------------------------------------------------------------------

TEST(NonceCookie, ParsesBothBitOrders) {
    // RFC 8489 Appendix B.1 sample nonce (username anonymity, erratum 6290 bit order).
    auto b1 = parse_nonce_cookie("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA");
    ASSERT_TRUE(b1);
    EXPECT_EQ(b1->bits, 0x000002u);
    EXPECT_TRUE(b1->username_anonymity());
    EXPECT_FALSE(b1->password_algorithms());
    auto lsb = parse_nonce_cookie(make_nonce_cookie(kFeaturePasswordAlgorithms) + "xyz");
    ASSERT_TRUE(lsb);
    EXPECT_TRUE(lsb->password_algorithms());
    EXPECT_EQ(make_nonce_cookie(kFeaturePasswordAlgorithms), "obMatJos2AAAB");
    // The pre-erratum reading seen in the wild ("gAAA" = most significant bit).
    auto msb = parse_nonce_cookie("obMatJos2gAAAnonce-one");
    ASSERT_TRUE(msb);
    EXPECT_TRUE(msb->password_algorithms());
    EXPECT_FALSE(msb->username_anonymity());
    EXPECT_FALSE(parse_nonce_cookie("f//499k954d6OL34oL9FSTvy64sA"));
    EXPECT_FALSE(parse_nonce_cookie("obMatJos2AA"));
    EXPECT_FALSE(parse_nonce_cookie("obMatJos2A*AA"));
}

} // namespace
} // namespace rtcat::stun
