// ICE agent (RFC 8445) with consent freshness (RFC 7675): two Agents on virtual time through
// a small in-test network that routes by address, with loss, a one-way delay, a link that
// can be cut, an optional static NAT, a fake STUN responder and the fake TURN server.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/time.hpp"
#include "core/ice/agent.hpp"
#include "core/net/demux.hpp"
#include "core/stun/message.hpp"
#include "tests/support/fake_turn_server.hpp"

namespace rtcat::ice {
namespace {

using base::Instant;
using base::ms;
using std::chrono::seconds;

net::SocketAddr sa(const char* text) {
    auto a = net::SocketAddr::parse(text);
    RTCAT_CHECK(a.has_value(), "bad address in test");
    return *a;
}
base::Bytes bytes(std::string_view s) {
    return base::Bytes(s.begin(), s.end());
}
double millis(base::Duration d) {
    return base::to_ms(d);
}

AgentConfig make_config(bool controlling, std::string ufrag, std::uint64_t tie,
                        std::vector<net::SocketAddr> sockets) {
    AgentConfig c;
    c.controlling = controlling;
    c.local_ufrag = std::move(ufrag);
    c.local_pwd = c.local_ufrag + "-password-0123456789abcdef";
    c.tie_breaker = tie;
    c.host_sockets = std::move(sockets);
    return c;
}

// The network: agents own addresses (their host sockets); a STUN responder and the fake TURN
// server own theirs; a static NAT maps private sockets to public ones (endpoint-independent
// mapping and filtering), and private addresses behind it are unreachable from outside.
class Net {
public:
    struct Node {
        Agent* agent = nullptr;
        std::vector<Event> events;
        std::vector<net::Datagram> received; // application payloads handle_receive returned
        std::optional<Instant> connected_at;
        std::optional<Instant> failed_at;
        std::string fail_reason;
        std::vector<net::Transmit> sent;
    };

    Instant now{};
    base::Duration delay = ms(1);
    double loss = 0.0;
    bool link_up = true;
    std::mt19937_64 rng{1};
    std::vector<Node> nodes;
    std::optional<test::FakeTurnServer> turn;
    std::optional<net::SocketAddr> stun_server;
    std::map<net::SocketAddr, net::SocketAddr> nat_out; // private -> public
    std::map<net::SocketAddr, net::SocketAddr> nat_in;  // public -> private
    int stun_answered = 0;

    std::size_t add(Agent& a) {
        nodes.push_back(Node{&a, {}, {}, std::nullopt, std::nullopt, {}, {}});
        return nodes.size() - 1;
    }
    void add_nat(net::SocketAddr priv, net::SocketAddr pub) {
        nat_out[priv] = pub;
        nat_in[pub] = priv;
    }

    void flush() {
        for (auto& n : nodes) {
            while (auto t = n.agent->poll_transmit()) {
                n.sent.push_back(*t);
                send(t->source, t->destination, std::move(t->payload));
            }
            while (auto ev = n.agent->poll_event()) {
                if (auto* sc = std::get_if<event::StateChanged>(&*ev)) {
                    if (sc->state == State::Connected && !n.connected_at)
                        n.connected_at = now;
                    if (sc->state == State::Failed && !n.failed_at) {
                        n.failed_at = now;
                        n.fail_reason = sc->reason;
                    }
                }
                n.events.push_back(std::move(*ev));
            }
        }
        if (turn)
            while (auto d = turn->poll_transmit())
                send(d->source, d->destination, std::move(d->payload));
    }

    void send(net::SocketAddr from, net::SocketAddr to, base::Bytes payload) {
        if (auto it = nat_out.find(from); it != nat_out.end())
            from = it->second;
        if (!link_up)
            return;
        if (loss > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < loss)
            return;
        wire_.push_back(Flight{now + delay, seq_++, net::Datagram{from, to, std::move(payload)}});
    }

    void deliver(net::Datagram d) {
        if (turn && d.destination == turn_address_) {
            turn->handle_receive(d, now);
            return;
        }
        if (stun_server && d.destination == *stun_server) {
            auto m = stun::decode(d.payload);
            if (m.ok() && m->cls() == stun::Class::Request) {
                auto r = stun::Message::success_for(*m);
                r.add_xor_address(stun::attr::XorMappedAddress, d.source);
                stun::EncodeOptions o;
                o.fingerprint = true;
                ++stun_answered;
                send(*stun_server, d.source, stun::encode(r, o));
            }
            return;
        }
        if (auto it = nat_in.find(d.destination); it != nat_in.end())
            d.destination = it->second;
        else if (is_private_behind_nat(d.destination))
            return; // unreachable from outside
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            if (!owns(i, d.destination))
                continue;
            if (auto app = nodes[i].agent->handle_receive(std::move(d), now))
                nodes[i].received.push_back(std::move(*app));
            return;
        }
    }

    void set_sockets(std::size_t node, std::vector<net::SocketAddr> socks) {
        sockets_[node] = socks;
    }
    void set_turn(test::FakeTurnServer::Config cfg) {
        turn_address_ = cfg.address;
        turn.emplace(std::move(cfg));
    }

    // Runs until `done` holds or virtual time passes `limit`.
    bool run_until(const std::function<bool()>& done, base::Duration limit) {
        Instant end = now + limit;
        for (int guard = 0; guard < 2'000'000; ++guard) {
            flush();
            if (done())
                return true;
            Instant next = base::kNever;
            for (const auto& f : wire_)
                next = std::min(next, f.arrival);
            for (auto& n : nodes)
                next = std::min(next, n.agent->poll_timeout());
            if (next > end) {
                now = end;
                return done();
            }
            now = std::max(now, next);
            // Deliver everything due, in send order.
            std::vector<Flight> due;
            for (auto it = wire_.begin(); it != wire_.end();) {
                if (it->arrival <= now) {
                    due.push_back(std::move(*it));
                    it = wire_.erase(it);
                } else {
                    ++it;
                }
            }
            std::sort(due.begin(), due.end(),
                      [](const Flight& a, const Flight& b) { return a.seq < b.seq; });
            for (auto& f : due)
                deliver(std::move(f.d));
            for (auto& n : nodes)
                if (n.agent->poll_timeout() <= now)
                    n.agent->handle_timeout(now);
        }
        ADD_FAILURE() << "simulation did not settle";
        return false;
    }
    void run_for(base::Duration d) {
        run_until([] { return false; }, d);
    }

private:
    struct Flight {
        Instant arrival;
        std::uint64_t seq = 0;
        net::Datagram d;
    };
    bool owns(std::size_t node, const net::SocketAddr& a) const {
        auto it = sockets_.find(node);
        return it != sockets_.end() &&
               std::find(it->second.begin(), it->second.end(), a) != it->second.end();
    }
    bool is_private_behind_nat(const net::SocketAddr& a) const { return nat_out.contains(a); }

    std::vector<Flight> wire_;
    std::uint64_t seq_ = 0;
    std::map<std::size_t, std::vector<net::SocketAddr>> sockets_;
    net::SocketAddr turn_address_;
};

// Candidates as the peer would learn them through SDP (formatted and parsed back).
std::vector<Candidate> local_candidates(const Net::Node& n) {
    std::vector<Candidate> out;
    for (const auto& ev : n.events)
        if (auto* lc = std::get_if<event::LocalCandidate>(&ev)) {
            auto c = parse_candidate(format_candidate(lc->candidate));
            RTCAT_CHECK(c.ok(), "own candidate does not parse");
            out.push_back(*c);
        }
    return out;
}

bool gathering_complete(const Net::Node& n) {
    return std::any_of(n.events.begin(), n.events.end(), [](const Event& e) {
        return std::holds_alternative<event::GatheringComplete>(e);
    });
}

// A pair of agents wired into one network, signalling done in one step (non-trickle).
struct Duo {
    Net net;
    std::unique_ptr<Agent> a, b;
    AgentConfig ca, cb;

    Duo(AgentConfig config_a, AgentConfig config_b, bool start = true)
        : ca(std::move(config_a)), cb(std::move(config_b)) {
        if (start)
            create();
    }
    void create() {
        a = std::make_unique<Agent>(ca, net.now);
        b = std::make_unique<Agent>(cb, net.now);
        net.add(*a);
        net.add(*b);
        net.set_sockets(0, ca.host_sockets);
        net.set_sockets(1, cb.host_sockets);
        net.flush();
    }
    Net::Node& na() { return net.nodes[0]; }
    Net::Node& nb() { return net.nodes[1]; }
    void wait_gathering() {
        ASSERT_TRUE(net.run_until(
            [&] { return gathering_complete(na()) && gathering_complete(nb()); }, seconds(5)));
    }
    // Hands each side the other's credentials (with an optional wrong password for A's view
    // of B) and candidates, then the end of candidates.
    void signal(bool a_learns_b = true, bool b_learns_a = true, std::string b_pwd_for_a = {}) {
        a->set_remote_credentials(cb.local_ufrag, b_pwd_for_a.empty() ? cb.local_pwd : b_pwd_for_a,
                                  net.now);
        b->set_remote_credentials(ca.local_ufrag, ca.local_pwd, net.now);
        if (a_learns_b)
            for (const auto& c : local_candidates(nb()))
                a->add_remote_candidate(c, net.now);
        if (b_learns_a)
            for (const auto& c : local_candidates(na()))
                b->add_remote_candidate(c, net.now);
        a->end_of_remote_candidates(net.now);
        b->end_of_remote_candidates(net.now);
    }
    bool both_connected(base::Duration limit = seconds(10)) {
        return net.run_until(
            [&] {
                return a->state() == State::Connected && b->state() == State::Connected &&
                       a->selected_pair() && b->selected_pair() &&
                       a->selected_pair()->local.address == b->selected_pair()->remote.address &&
                       a->selected_pair()->remote.address == b->selected_pair()->local.address;
            },
            limit);
    }
};

void expect_agree(const Agent& a, const Agent& b) {
    auto pa = a.selected_pair();
    auto pb = b.selected_pair();
    ASSERT_TRUE(pa && pb);
    EXPECT_EQ(pa->local.address, pb->remote.address);
    EXPECT_EQ(pa->remote.address, pb->local.address);
    // Exactly one side is controlling.
    EXPECT_NE(a.controlling(), b.controlling());
}

// Data both ways on the selected pair, through handle_receive's return value.
void expect_data_flows(Duo& d) {
    std::size_t ra = d.na().received.size(), rb = d.nb().received.size();
    ASSERT_TRUE(d.a->send(bytes("\x17hello from a"), d.net.now));
    ASSERT_TRUE(d.b->send(bytes("\x17hello from b"), d.net.now));
    ASSERT_TRUE(d.net.run_until(
        [&] { return d.na().received.size() > ra && d.nb().received.size() > rb; }, seconds(2)));
    EXPECT_EQ(d.nb().received.back().payload, bytes("\x17hello from a"));
    EXPECT_EQ(d.na().received.back().payload, bytes("\x17hello from b"));
}

TEST(IceAgent, HostToHostLoopbackV4) {
    Duo d(make_config(true, "aaaa", 1, {sa("127.0.0.1:5000")}),
          make_config(false, "bbbb", 2, {sa("127.0.0.1:6000")}));
    d.net.delay = base::Duration(50); // 50 µs one way: loopback
    Instant start = d.net.now;
    d.signal();
    ASSERT_TRUE(d.both_connected());
    expect_agree(*d.a, *d.b);
    auto setup = *d.na().connected_at - start;
    std::printf("[ measure  ] host<->host loopback: controlling selected after %.3f ms, "
                "controlled after %.3f ms (virtual, Ta = %.0f ms, one-way 50 us)\n",
                millis(setup), millis(*d.nb().connected_at - start), millis(d.ca.ta));
    EXPECT_LE(setup, ms(5)) << "a few Ta at most";
    EXPECT_EQ(d.a->selected_pair()->local.type, CandidateType::Host);
    EXPECT_TRUE(d.a->selected_pair()->nominated);
    expect_data_flows(d);
    // SelectedPair was emitted on both sides exactly once.
    for (auto* n : {&d.na(), &d.nb()})
        EXPECT_EQ(std::count_if(n->events.begin(), n->events.end(),
                                [](const Event& e) {
                                    return std::holds_alternative<event::SelectedPair>(e);
                                }),
                  1);
    EXPECT_EQ(d.a->stats().bad_integrity + d.b->stats().bad_integrity, 0u);
}

TEST(IceAgent, HostToHostV6) {
    Duo d(make_config(false, "aaaa", 10, {sa("[::1]:5000")}),
          make_config(true, "bbbb", 20, {sa("[::1]:6000")}));
    d.signal();
    ASSERT_TRUE(d.both_connected());
    expect_agree(*d.a, *d.b);
    EXPECT_TRUE(d.a->selected_pair()->local.address.ip().is_v6());
    expect_data_flows(d);
}

TEST(IceAgent, SeveralInterfacesSelectsHighestPriorityPair) {
    Duo d(make_config(true, "aaaa", 1,
                      {sa("10.0.0.1:5000"), sa("192.168.1.1:5000"), sa("[2001:db8::1]:5000"),
                       sa("[fe80::1]:5000")}),
          make_config(false, "bbbb", 2,
                      {sa("10.0.0.2:6000"), sa("192.168.1.2:6000"), sa("[2001:db8::2]:6000"),
                       sa("[fe80::2]:6000")}));
    d.signal();
    ASSERT_TRUE(d.both_connected());
    expect_agree(*d.a, *d.b);
    // Every route works here, so the selected pair must be the best of all pairs.
    std::uint64_t best = 0;
    for (const auto& p : d.a->pairs())
        best = std::max(best, p.pair.priority);
    EXPECT_EQ(d.a->selected_pair()->priority, best);
    EXPECT_EQ(d.a->selected_pair()->local.address, sa("[2001:db8::1]:5000"));
    EXPECT_EQ(d.a->selected_pair()->remote.address, sa("[2001:db8::2]:6000"));
    // Same family only: 2 v4 × 2 v4 + 2 v6 × 2 v6 pairs.
    EXPECT_EQ(d.a->pairs().size(), 8u);
    expect_data_flows(d);
}

TEST(IceAgent, RoleConflictBothControlling) {
    Duo d(make_config(true, "aaaa", 100, {sa("10.0.0.1:5000")}),
          make_config(true, "bbbb", 200, {sa("10.0.0.2:6000")}));
    d.signal();
    ASSERT_TRUE(d.both_connected());
    expect_agree(*d.a, *d.b);
    EXPECT_FALSE(d.a->controlling()) << "the smaller tie-breaker yields";
    EXPECT_TRUE(d.b->controlling());
    EXPECT_GT(d.a->stats().role_conflicts + d.b->stats().role_conflicts, 0u);
    // Pair priorities follow the new role (G = controlling side's candidate).
    auto p = *d.a->selected_pair();
    std::uint64_t g = p.remote.priority, dd = p.local.priority;
    EXPECT_EQ(p.priority, (std::min(g, dd) << 32) + 2 * std::max(g, dd) + (g > dd ? 1 : 0));
}

TEST(IceAgent, RoleConflictBothControlled) {
    Duo d(make_config(false, "aaaa", 100, {sa("10.0.0.1:5000")}),
          make_config(false, "bbbb", 200, {sa("10.0.0.2:6000")}));
    d.signal();
    ASSERT_TRUE(d.both_connected());
    expect_agree(*d.a, *d.b);
    EXPECT_FALSE(d.a->controlling());
    EXPECT_TRUE(d.b->controlling()) << "the larger tie-breaker takes control";
}

TEST(IceAgent, WrongPasswordNeverConnects) {
    auto ca = make_config(true, "aaaa", 1, {sa("10.0.0.1:5000")});
    auto cb = make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")});
    ca.connect_timeout = seconds(10);
    cb.connect_timeout = seconds(10);
    Duo d(ca, cb);
    d.signal(true, true, "not-the-password-of-bbbb");
    bool any = d.net.run_until(
        [&] { return d.a->state() == State::Connected || d.b->state() == State::Connected; },
        seconds(12));
    EXPECT_FALSE(any);
    EXPECT_EQ(d.a->state(), State::Failed);
    EXPECT_EQ(d.b->state(), State::Failed);
    EXPECT_EQ(d.na().fail_reason, "no candidate pair succeeded");
    EXPECT_EQ(d.nb().fail_reason, "no candidate pair succeeded");
    // B saw A's badly signed checks; A ignored B's unsigned 401s.
    EXPECT_GT(d.b->stats().bad_integrity, 0u);
    EXPECT_GT(d.a->stats().bad_integrity, 0u);
    EXPECT_LE(*d.nb().failed_at - Instant{}, seconds(10) + ms(10));
    EXPECT_FALSE(d.a->send(bytes("x"), d.net.now));
}

TEST(IceAgent, MdnsCandidateConnectsThroughPeerReflexive) {
    // A's candidates are .local names: B cannot parse them and learns A only from A's checks.
    auto mdns = parse_candidate("1 1 udp 2122260223 0b6c4e2a-7d58-4a9b-8d3a-1f2b3c4d5e6f.local "
                                "5000 typ host generation 0");
    ASSERT_FALSE(mdns.ok());
    for (bool a_controls : {true, false}) {
        SCOPED_TRACE(a_controls ? "A controlling" : "A controlled");
        Duo d(make_config(a_controls, "aaaa", 1, {sa("10.0.0.1:5000")}),
              make_config(!a_controls, "bbbb", 2, {sa("10.0.0.2:6000")}));
        d.signal(/*a_learns_b=*/true, /*b_learns_a=*/false);
        ASSERT_TRUE(d.both_connected());
        expect_agree(*d.a, *d.b);
        EXPECT_EQ(d.b->selected_pair()->remote.type, CandidateType::PeerReflexive);
        EXPECT_EQ(d.b->stats().prflx_remote, 1u);
        expect_data_flows(d);
    }
}

TEST(IceAgent, ChecksBeforeRemoteCredentialsStillConnectQuickly) {
    Duo d(make_config(true, "aaaa", 1, {sa("10.0.0.1:5000")}),
          make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")}));
    // A has the answer; B's copy of A's credentials is late by 100 ms (signalling delay).
    d.a->set_remote_credentials(d.cb.local_ufrag, d.cb.local_pwd, d.net.now);
    for (const auto& c : local_candidates(d.nb()))
        d.a->add_remote_candidate(c, d.net.now);
    d.net.run_for(ms(100));
    EXPECT_GT(d.b->stats().checks_received, 0u) << "B answered before knowing A's credentials";
    EXPECT_EQ(d.b->state(), State::New);
    Instant creds_at = d.net.now;
    d.b->set_remote_credentials(d.ca.local_ufrag, d.ca.local_pwd, d.net.now);
    ASSERT_TRUE(d.both_connected());
    expect_agree(*d.a, *d.b);
    EXPECT_LE(*d.nb().connected_at - creds_at, ms(20));
}

TEST(IceAgent, ConnectsThroughThirtyPercentLoss) {
    std::uint64_t retransmissions = 0;
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        Duo d(make_config(true, "aaaa", 1, {sa("10.0.0.1:5000"), sa("[2001:db8::1]:5000")}),
              make_config(false, "bbbb", 2, {sa("10.0.0.2:6000"), sa("[2001:db8::2]:6000")}));
        d.net.loss = 0.3;
        d.net.rng.seed(seed);
        d.net.delay = ms(5);
        d.signal();
        ASSERT_TRUE(d.both_connected(seconds(10)));
        expect_agree(*d.a, *d.b);
        retransmissions += d.a->stats().check_retransmissions + d.b->stats().check_retransmissions;
    }
    EXPECT_GT(retransmissions, 0u) << "the loss was real";
}

TEST(IceAgent, ConsentLostAfterLinkCut) {
    Duo d(make_config(true, "aaaa", 1, {sa("10.0.0.1:5000")}),
          make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")}));
    d.signal();
    ASSERT_TRUE(d.both_connected());
    // A minute of a live link: consent checks keep it alive.
    d.net.run_for(seconds(60));
    EXPECT_EQ(d.a->state(), State::Connected);
    EXPECT_EQ(d.b->state(), State::Connected);
    EXPECT_GE(d.a->stats().consent_checks_sent, 9u); // every 4–6 s
    EXPECT_GE(d.a->stats().consent_responses, 9u);
    EXPECT_GE(d.b->stats().consent_checks_sent, 9u);
    Instant cut = d.net.now;
    d.net.link_up = false;
    ASSERT_TRUE(d.net.run_until(
        [&] { return d.a->state() == State::Failed && d.b->state() == State::Failed; },
        seconds(40)));
    for (auto* n : {&d.na(), &d.nb()}) {
        EXPECT_EQ(n->fail_reason, "consent lost (no response for 30 s)");
        auto after = *n->failed_at - cut;
        EXPECT_GE(after, seconds(24)) << millis(after); // last response ≤ 6 s before the cut
        EXPECT_LE(after, seconds(30));
    }
    // RFC 7675 §5.1: no sending after consent expiry.
    EXPECT_FALSE(d.a->send(bytes("\x17late"), d.net.now));
    EXPECT_FALSE(d.a->selected_pair().has_value());
    auto sent_before = d.na().sent.size();
    d.net.run_for(seconds(20));
    EXPECT_EQ(d.na().sent.size(), sent_before);
}

TEST(IceAgent, ServerReflexiveGatheringThroughNat) {
    auto ca = make_config(true, "aaaa", 1, {sa("10.0.0.1:5000")});
    ca.stun_servers.push_back(StunServer{sa("198.51.100.1:3478")});
    auto cb = make_config(false, "bbbb", 2, {sa("203.0.113.20:6000")});
    Duo d(ca, cb, false);
    d.net.stun_server = sa("198.51.100.1:3478");
    d.net.add_nat(sa("10.0.0.1:5000"), sa("203.0.113.5:40000"));
    d.create();
    d.wait_gathering();
    EXPECT_EQ(d.net.stun_answered, 1);
    auto cands = local_candidates(d.na());
    ASSERT_EQ(cands.size(), 2u);
    EXPECT_EQ(cands[1].type, CandidateType::ServerReflexive);
    EXPECT_EQ(cands[1].address, sa("203.0.113.5:40000"));
    ASSERT_TRUE(cands[1].related.has_value());
    EXPECT_EQ(*cands[1].related, sa("10.0.0.1:5000"));
    EXPECT_LT(cands[1].priority, cands[0].priority);
    EXPECT_NE(cands[1].foundation, cands[0].foundation);
    // B cannot reach A's private host address; through the NAT the srflx path works, and A's
    // valid pair uses the srflx candidate (§7.2.5.3.2: the mapped address names it).
    d.signal();
    ASSERT_TRUE(d.both_connected());
    EXPECT_EQ(d.a->selected_pair()->local.type, CandidateType::ServerReflexive);
    EXPECT_EQ(d.a->selected_pair()->local.base, sa("10.0.0.1:5000"));
    EXPECT_EQ(d.b->selected_pair()->remote.address, sa("203.0.113.5:40000"));
    expect_data_flows(d);
}

TEST(IceAgent, GatheringGivesUpOnSilentStunServer) {
    auto ca = make_config(true, "aaaa", 1, {sa("10.0.0.1:5000"), sa("[2001:db8::1]:5000")});
    ca.stun_servers.push_back(StunServer{sa("198.51.100.9:3478")}); // nobody there
    Duo d(ca, make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")}));
    EXPECT_FALSE(gathering_complete(d.na()));
    EXPECT_TRUE(gathering_complete(d.nb())) << "nothing to gather: complete at once";
    d.wait_gathering();
    EXPECT_GE(d.net.now - Instant{}, ca.gathering_timeout);
    EXPECT_LE(d.net.now - Instant{}, ca.gathering_timeout + ms(1));
    EXPECT_EQ(local_candidates(d.na()).size(), 2u);
}

test::FakeTurnServer::Config turn_config() {
    test::FakeTurnServer::Config c;
    c.address = sa("192.0.2.1:3478");
    c.relay_ip = net::IpAddr::v4(192, 0, 2, 1);
    c.users = {{"alice", "wonderland"}};
    return c;
}

TEST(IceAgent, RelayOnlyBothSidesThroughTurn) {
    auto ca = make_config(true, "aaaa", 1, {sa("10.0.0.1:5000"), sa("[2001:db8::1]:5000")});
    auto cb = make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")});
    for (auto* c : {&ca, &cb}) {
        c->turn = TurnServer{sa("192.0.2.1:3478"), "alice", "wonderland"};
        c->relay_only = true;
    }
    Duo d(ca, cb, false);
    d.net.set_turn(turn_config());
    d.create();
    d.wait_gathering();
    auto la = local_candidates(d.na());
    auto lb = local_candidates(d.nb());
    ASSERT_EQ(la.size(), 1u);
    ASSERT_EQ(lb.size(), 1u);
    EXPECT_EQ(la[0].type, CandidateType::Relay);
    EXPECT_EQ(la[0].related, sa("10.0.0.1:5000")); // XOR-MAPPED-ADDRESS of the Allocate
    d.signal();
    ASSERT_TRUE(d.both_connected());
    expect_agree(*d.a, *d.b);
    EXPECT_EQ(d.a->selected_pair()->local.type, CandidateType::Relay);
    EXPECT_EQ(d.b->selected_pair()->local.type, CandidateType::Relay);
    // The selected relay pair gets a channel; data then rides in ChannelData both ways.
    ASSERT_TRUE(d.net.run_until(
        [&] { return d.net.turn->seen_requests(stun::Method::ChannelBind).size() >= 2; },
        seconds(1)));
    d.net.run_for(ms(50));
    auto sent_a = d.na().sent.size();
    expect_data_flows(d);
    bool channel_data = false;
    for (std::size_t i = sent_a; i < d.na().sent.size(); ++i)
        if (net::classify(d.na().sent[i].payload) == net::PacketKind::TurnChannel)
            channel_data = true;
    EXPECT_TRUE(channel_data);
    EXPECT_EQ(d.nb().received.back().source, la[0].address) << "source is the peer's relay";
    // Nothing went directly between the hosts.
    for (const auto& t : d.na().sent)
        EXPECT_EQ(t.destination, sa("192.0.2.1:3478"));
    // Closing releases the allocation.
    d.a->close(d.net.now);
    d.net.run_for(ms(100));
    EXPECT_EQ(d.a->state(), State::Closed);
    EXPECT_EQ(d.net.turn->allocation_for(sa("10.0.0.1:5000")), nullptr);
}

TEST(IceAgent, RelayFailureInRelayOnlyModeFails) {
    auto ca = make_config(true, "aaaa", 1, {sa("10.0.0.1:5000")});
    ca.turn = TurnServer{sa("192.0.2.1:3478"), "alice", "wrong"};
    ca.relay_only = true;
    Duo d(ca, make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")}), false);
    d.net.set_turn(turn_config());
    d.create();
    ASSERT_TRUE(d.net.run_until([&] { return d.a->state() == State::Failed; }, seconds(5)));
    EXPECT_EQ(d.na().fail_reason.rfind("TURN allocation failed", 0), 0u) << d.na().fail_reason;
}

// A hand-driven peer that nominates aggressively (USE-CANDIDATE on its first check) and
// sends garbage: the agent answers, runs its triggered check, selects, and never crashes.
TEST(IceAgent, AggressiveNominationAndGarbage) {
    auto cb = make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")});
    Agent b(cb, Instant{});
    const auto peer = sa("10.0.0.1:5000");
    const std::string peer_pwd = "peer-password-0123456789";
    Instant now{};
    while (b.poll_event()) {
    }
    b.set_remote_credentials("aaaa", peer_pwd, now);
    auto b_key = stun::short_term_key(cb.local_pwd);
    auto peer_key = stun::short_term_key(peer_pwd);

    auto make_check = [&](bool use_candidate) {
        auto m = stun::Message::request(stun::Method::Binding);
        m.add_string(stun::attr::Username, "bbbb:aaaa");
        m.add_u32(stun::attr::Priority, compute_priority(CandidateType::PeerReflexive, 100, 1));
        m.add_u64(stun::attr::IceControlling, 99);
        if (use_candidate)
            m.add_flag(stun::attr::UseCandidate);
        stun::EncodeOptions o;
        o.integrity_key = &b_key;
        o.fingerprint = true;
        return stun::encode(m, o);
    };
    auto host_b = sa("10.0.0.2:6000");
    // Garbage first: must be dropped and counted.
    EXPECT_FALSE(b.handle_receive(net::Datagram{peer, host_b, bytes("\x17 dtls?")}, now));
    EXPECT_EQ(b.stats().unknown_source_drops, 1u);
    EXPECT_FALSE(b.handle_receive(net::Datagram{peer, host_b, base::Bytes{0, 1, 0, 0}}, now));
    EXPECT_EQ(b.stats().malformed, 1u);
    auto tampered = make_check(true);
    tampered[tampered.size() - 10] ^= 1; // breaks FINGERPRINT → undecodable
    EXPECT_FALSE(b.handle_receive(net::Datagram{peer, host_b, tampered}, now));
    EXPECT_EQ(b.stats().malformed, 2u);
    // A response to nothing.
    {
        auto m = stun::Message::request(stun::Method::Binding);
        auto r = stun::Message::success_for(m);
        EXPECT_FALSE(b.handle_receive(net::Datagram{peer, host_b, stun::encode(r)}, now));
        EXPECT_EQ(b.stats().unknown_transaction, 1u);
    }
    // Wrong password: 401, nothing learned.
    {
        auto m = stun::Message::request(stun::Method::Binding);
        m.add_string(stun::attr::Username, "bbbb:aaaa");
        m.add_u32(stun::attr::Priority, 1);
        stun::EncodeOptions o;
        auto wrong = stun::short_term_key("nope");
        o.integrity_key = &wrong;
        o.fingerprint = true;
        (void)b.handle_receive(net::Datagram{peer, host_b, stun::encode(m, o)}, now);
        EXPECT_EQ(b.stats().bad_integrity, 1u);
        auto t = b.poll_transmit();
        ASSERT_TRUE(t);
        auto resp = stun::decode(t->payload);
        ASSERT_TRUE(resp.ok());
        EXPECT_EQ(resp->error_code()->code, 401);
        EXPECT_TRUE(b.remote_candidates().empty());
        EXPECT_FALSE(b.poll_transmit());
    }

    // The aggressive check.
    EXPECT_FALSE(b.handle_receive(net::Datagram{peer, host_b, make_check(true)}, now));
    EXPECT_EQ(b.stats().checks_received, 1u);
    auto resp = b.poll_transmit();
    ASSERT_TRUE(resp);
    auto rm = stun::decode(resp->payload);
    ASSERT_TRUE(rm.ok());
    EXPECT_EQ(rm->cls(), stun::Class::Success);
    EXPECT_EQ(stun::check_integrity(resp->payload, b_key), stun::IntegrityResult::Valid);
    EXPECT_EQ(rm->get_xor_address(stun::attr::XorMappedAddress), peer);
    // The triggered check towards the prflx peer.
    auto check = b.poll_transmit();
    ASSERT_TRUE(check);
    EXPECT_EQ(check->destination, peer);
    EXPECT_EQ(check->source, host_b);
    auto cm = stun::decode(check->payload);
    ASSERT_TRUE(cm.ok());
    EXPECT_EQ(cm->get_string(stun::attr::Username), "aaaa:bbbb");
    EXPECT_TRUE(cm->has(stun::attr::IceControlled));
    EXPECT_FALSE(cm->has(stun::attr::UseCandidate));
    EXPECT_EQ(stun::check_integrity(check->payload, peer_key), stun::IntegrityResult::Valid);
    EXPECT_EQ(b.state(), State::Checking);
    // An answer from the wrong address is asymmetric: the pair fails (§7.2.5.2.1) — so answer
    // from the right one, once with a bad key (ignored), then properly.
    auto answer = stun::Message::success_for(*cm);
    answer.add_xor_address(stun::attr::XorMappedAddress, host_b);
    stun::EncodeOptions o;
    auto wrong = stun::short_term_key("nope");
    o.integrity_key = &wrong;
    o.fingerprint = true;
    now += ms(1);
    (void)b.handle_receive(net::Datagram{peer, host_b, stun::encode(answer, o)}, now);
    EXPECT_EQ(b.stats().bad_integrity, 2u);
    EXPECT_EQ(b.state(), State::Checking);
    o.integrity_key = &peer_key;
    (void)b.handle_receive(net::Datagram{peer, host_b, stun::encode(answer, o)}, now);
    EXPECT_EQ(b.state(), State::Connected);
    ASSERT_TRUE(b.selected_pair());
    EXPECT_EQ(b.selected_pair()->remote.address, peer);
    EXPECT_TRUE(b.selected_pair()->nominated);
    // Application data now takes the fast path; from elsewhere it is dropped.
    auto app = b.handle_receive(net::Datagram{peer, host_b, bytes("\x17 record")}, now);
    ASSERT_TRUE(app);
    EXPECT_EQ(app->payload, bytes("\x17 record"));
    EXPECT_FALSE(
        b.handle_receive(net::Datagram{sa("10.9.9.9:1"), host_b, bytes("\x17 record")}, now));
    EXPECT_EQ(b.stats().unknown_source_drops, 2u);
    ASSERT_TRUE(b.send(bytes("\x17 out"), now));
    base::Bytes last;
    while (auto t = b.poll_transmit())
        last = t->payload;
    EXPECT_EQ(last, bytes("\x17 out"));
}

// handle_receive()/send() on the selected pair are per-packet paths (~100k/s): no STUN
// parsing, no lookups. Wall-clock figures are printed, with only a very loose bound.
TEST(IceAgent, FastPathIsCheap) {
    Duo d(make_config(true, "aaaa", 1, {sa("10.0.0.1:5000")}),
          make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")}));
    d.signal();
    ASSERT_TRUE(d.both_connected());
    auto pair = *d.b->selected_pair();
    constexpr int kN = 200000;
    base::Bytes packet(1200, 0x17);
    auto t0 = std::chrono::steady_clock::now();
    std::size_t got = 0;
    for (int i = 0; i < kN; ++i) {
        net::Datagram dg{pair.remote.address, pair.local.base, packet};
        if (auto out = d.b->handle_receive(std::move(dg), d.net.now))
            got += out->payload.size();
    }
    auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN; ++i) {
        ASSERT_TRUE(d.b->send(packet, d.net.now));
        (void)d.b->poll_transmit();
    }
    auto t2 = std::chrono::steady_clock::now();
    EXPECT_EQ(got, std::size_t{kN} * packet.size());
    auto ns = [](auto a, auto b) {
        return static_cast<double>(
                   std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count()) /
               kN;
    };
    // Both loops include copying the 1200-byte test packet, which dominates.
    std::printf("[ measure  ] fast path: handle_receive %.0f ns, send+poll_transmit %.0f ns per "
                "1200-byte packet (incl. the test's copy)\n",
                ns(t0, t1), ns(t1, t2));
    EXPECT_LT(ns(t0, t1), 20000.0);
    EXPECT_EQ(d.b->stats().unknown_source_drops, 0u);
}

// --- connection set-up time -------------------------------------------------------------------

// The first connectivity check a node sent, and whether it carried USE-CANDIDATE.
struct SentCheck {
    net::SocketAddr to;
    bool use_candidate = false;
};
std::vector<SentCheck> checks_sent(const Net::Node& n) {
    std::vector<SentCheck> out;
    for (const auto& t : n.sent) {
        auto m = stun::decode(t.payload);
        if (m.ok() && m->cls() == stun::Class::Request && m->method() == stun::Method::Binding)
            out.push_back(SentCheck{t.destination, m->has(stun::attr::UseCandidate)});
    }
    return out;
}

// Non-trickle signalling as Peer does it: every candidate first, then the credentials (which
// start the checks), so the first check goes to the best pair, not to the first candidate
// listed with the better pairs a Ta behind it.
void signal_candidates_first(Duo& d) {
    for (const auto& c : local_candidates(d.nb()))
        d.a->add_remote_candidate(c, d.net.now);
    for (const auto& c : local_candidates(d.na()))
        d.b->add_remote_candidate(c, d.net.now);
    d.a->set_remote_credentials(d.cb.local_ufrag, d.cb.local_pwd, d.net.now);
    d.b->set_remote_credentials(d.ca.local_ufrag, d.ca.local_pwd, d.net.now);
    d.a->end_of_remote_candidates(d.net.now);
    d.b->end_of_remote_candidates(d.net.now);
}

TEST(IceAgent, FirstCheckGoesToTheBestPairWhenCandidatesPrecedeCredentials) {
    // IPv4 listed first (as the driver binds them), IPv6 preferred (RFC 8421).
    Duo d(make_config(true, "aaaa", 1, {sa("127.0.0.1:5000"), sa("[::1]:5000")}),
          make_config(false, "bbbb", 2, {sa("127.0.0.1:6000"), sa("[::1]:6000")}));
    d.net.delay = ms(1);
    Instant start = d.net.now;
    signal_candidates_first(d);
    ASSERT_TRUE(d.both_connected());
    expect_agree(*d.a, *d.b);
    EXPECT_EQ(d.a->selected_pair()->local.address, sa("[::1]:5000"));
    for (const auto* n : {&d.na(), &d.nb()}) {
        auto checks = checks_sent(*n);
        ASSERT_FALSE(checks.empty());
        EXPECT_TRUE(checks.front().to.ip().is_v6()) << "the best pair is checked first";
    }
    // Check (1 RTT), then nomination (1 RTT): no Ta and no settle time on the way.
    auto setup = *d.na().connected_at - start;
    std::printf("[ measure  ] two interfaces, one-way 1 ms: controlling selected after %.3f ms, "
                "controlled after %.3f ms (virtual)\n",
                millis(setup), millis(*d.nb().connected_at - start));
    EXPECT_LE(setup, ms(4) + ms(1)) << "two round trips";
    EXPECT_LT(setup, d.ca.ta + ms(4)) << "no check waited a Ta behind a worse one";
}

TEST(IceAgent, NominatesWithoutWaitingWhenNoBetterPairIsPending) {
    // The best pair succeeds first: the USE-CANDIDATE check follows its success at once,
    // although worse pairs are still waiting or in progress.
    Duo d(make_config(true, "aaaa", 1,
                      {sa("10.0.0.1:5000"), sa("192.168.1.1:5000"), sa("[2001:db8::1]:5000")}),
          make_config(false, "bbbb", 2,
                      {sa("10.0.0.2:6000"), sa("192.168.1.2:6000"), sa("[2001:db8::2]:6000")}));
    d.net.delay = ms(2);
    Instant start = d.net.now;
    signal_candidates_first(d);
    auto nominated = [&] {
        auto c = checks_sent(d.na());
        return std::any_of(c.begin(), c.end(), [](const SentCheck& x) { return x.use_candidate; });
    };
    ASSERT_TRUE(d.net.run_until(nominated, seconds(1)));
    EXPECT_EQ(d.net.now - start, ms(4)) << "right after the first success, one round trip";
    auto infos = d.a->pairs();
    bool worse_pending = std::any_of(infos.begin(), infos.end(), [](const Agent::PairInfo& p) {
        return p.state == "waiting" || p.state == "frozen" || p.state == "in-progress";
    });
    EXPECT_TRUE(worse_pending) << "worse pairs were still unchecked";
    ASSERT_TRUE(d.both_connected());
    auto setup = *d.na().connected_at - start;
    EXPECT_EQ(d.a->selected_pair()->local.address, sa("[2001:db8::1]:5000"));
    EXPECT_LE(setup, ms(8) + ms(1)) << "check + nomination, two round trips of 4 ms";
    EXPECT_LT(setup, kNominationSettle) << "no settle time";
    auto checks = checks_sent(d.na());
    auto nom = std::find_if(checks.begin(), checks.end(),
                            [](const SentCheck& c) { return c.use_candidate; });
    ASSERT_NE(nom, checks.end());
    EXPECT_EQ(nom->to, sa("[2001:db8::2]:6000"));
    EXPECT_EQ(std::count_if(checks.begin(), checks.end(),
                            [](const SentCheck& c) { return c.use_candidate; }),
              1);
}

TEST(IceAgent, BetterPairSucceedingDuringTheSettleTimeIsNominatedAtOnce) {
    // Trickle order: B's IPv4 candidate arrives with the credentials, its IPv6 one just after,
    // so the IPv4 check leaves first and the better IPv6 one a Ta later. The IPv4 pair succeeds
    // while the IPv6 pair is pending: A holds the nomination back — and sends it the moment
    // the better pair succeeds, not at the end of kNominationSettle.
    Duo d(make_config(true, "aaaa", 1, {sa("10.0.0.1:5000"), sa("[2001:db8::1]:5000")}),
          make_config(false, "bbbb", 2, {sa("10.0.0.2:6000"), sa("[2001:db8::2]:6000")}));
    d.net.delay = ms(1);
    auto b_cands = local_candidates(d.nb());
    ASSERT_EQ(b_cands.size(), 2u);
    ASSERT_TRUE(b_cands[0].address.ip().is_v4());
    Instant start = d.net.now;
    d.a->add_remote_candidate(b_cands[0], d.net.now);
    d.a->set_remote_credentials(d.cb.local_ufrag, d.cb.local_pwd, d.net.now);
    d.a->add_remote_candidate(b_cands[1], d.net.now);
    d.b->set_remote_credentials(d.ca.local_ufrag, d.ca.local_pwd, d.net.now);
    d.net.run_for(ms(3));
    bool v4_valid = false;
    for (const auto& p : d.a->pairs())
        v4_valid |= p.valid && p.pair.local.address.ip().is_v4();
    EXPECT_TRUE(v4_valid);
    EXPECT_EQ(d.a->state(), State::Checking) << "the IPv4 pair alone is not nominated";
    ASSERT_TRUE(d.both_connected());
    EXPECT_TRUE(d.a->selected_pair()->local.address.ip().is_v6());
    // IPv6 check at Ta, its answer a round trip later, the nomination another round trip.
    auto setup = *d.na().connected_at - start;
    EXPECT_LE(setup, d.ca.ta + ms(4) + ms(1));
    EXPECT_LT(setup, kNominationSettle);
    auto checks = checks_sent(d.na());
    EXPECT_EQ(std::count_if(checks.begin(), checks.end(),
                            [](const SentCheck& c) { return c.use_candidate; }),
              1)
        << "only the better pair was nominated";
}

TEST(IceAgent, SendsOnAValidPairBeforeSelection) {
    // RFC 8445 §12.1: data may go on any valid pair before a pair is selected. The controlled
    // side's own check succeeds a round trip before the controlling side's nomination reaches
    // it: that is when its DTLS ClientHello can leave.
    Duo d(make_config(true, "aaaa", 1, {sa("10.0.0.1:5000")}),
          make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")}));
    d.net.delay = ms(5);
    EXPECT_FALSE(d.b->can_send());
    EXPECT_FALSE(d.b->send(bytes("\x17"
                                 "too early"),
                           d.net.now))
        << "no valid pair yet";
    EXPECT_EQ(d.b->stats().send_dropped, 1u);
    signal_candidates_first(d);
    ASSERT_TRUE(d.net.run_until([&] { return d.b->can_send(); }, seconds(1)));
    EXPECT_EQ(d.b->state(), State::Checking);
    EXPECT_FALSE(d.b->selected_pair().has_value());
    ASSERT_TRUE(d.b->send(bytes("\x17"
                                "early data"),
                          d.net.now));
    EXPECT_EQ(d.b->stats().sent_before_selection, 1u);
    ASSERT_TRUE(d.net.run_until([&] { return !d.na().received.empty(); }, seconds(1)));
    EXPECT_EQ(d.na().received.front().payload, bytes("\x17"
                                                     "early data"));
    EXPECT_EQ(d.na().received.front().source, sa("10.0.0.2:6000"));
    ASSERT_TRUE(d.both_connected());
    EXPECT_GT(*d.nb().connected_at, Instant{} + ms(10)) << "selection came later";
    expect_data_flows(d);
    EXPECT_EQ(d.b->stats().sent_before_selection, 1u) << "then only the selected pair";
}

TEST(IceAgent, NothingIsSentBeforeAValidPairOrAfterFailure) {
    Duo d(make_config(true, "aaaa", 1, {sa("10.0.0.1:5000")}),
          make_config(false, "bbbb", 2, {sa("10.0.0.2:6000")}));
    d.ca.connect_timeout = d.cb.connect_timeout = seconds(2);
    d.a = std::make_unique<Agent>(d.ca, d.net.now); // a fresh A with the shorter timeout
    d.net.nodes[0].agent = d.a.get();
    d.net.link_up = false;
    signal_candidates_first(d);
    d.net.run_for(ms(500));
    EXPECT_FALSE(d.a->can_send()) << "checks are out, none answered";
    EXPECT_FALSE(d.a->send(bytes("\x17x"), d.net.now));
    d.net.run_for(seconds(40));
    EXPECT_EQ(d.a->state(), State::Failed);
    EXPECT_FALSE(d.a->can_send());
    EXPECT_EQ(d.a->stats().sent_before_selection, 0u);
}

} // namespace
} // namespace rtcat::ice
