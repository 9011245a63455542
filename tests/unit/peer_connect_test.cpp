// Connection set-up of two whole Peers (ICE + DTLS + SCTP/DCEP) on virtual time: how many round
// trips "offer -> association up" takes, and that no flight produced or received early is lost
// to a retransmission timer (DTLS before ICE has a valid pair, SCTP before the association
// exists). Signaling is under the test's control so either description can be late.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

#include "core/peer/peer.hpp"
#include "tests/support/sim_net.hpp"
#include "tests/unit/sctp_test_wallclock.hpp"

namespace rtcat {
namespace {

using base::Instant;
using std::chrono::seconds;

const net::IpAddr kOfferIp = *net::IpAddr::parse("10.1.0.1");
const net::IpAddr kAnswerIp = *net::IpAddr::parse("10.1.0.2");

struct Node {
    std::unique_ptr<peer::Peer> peer;
    std::optional<sdp::SignalMessage> local;
    std::optional<Instant> ice_at, dtls_at, ready_at;
    std::optional<peer::event::Failed> failed;
};

// Offerer and answerer on one simulated link. The offer reaches the answerer when it is
// emitted; the answer reaches the offerer `answer_delay` later (a slow signaling channel).
struct Session {
    sim::Network net;
    Node offerer, answerer;
    sim::Endpoint eo, ea;
    Instant now = Instant(seconds(2000));
    Instant wall_synced = now;
    base::Duration answer_delay{0};
    std::optional<Instant> answer_due;

    explicit Session(std::uint64_t seed, sim::LinkParams link) : net(seed) {
        net.attach(kOfferIp);
        net.attach(kAnswerIp);
        net.set_default_link(std::move(link));
    }

    void start() {
        offerer.peer = make(true, kOfferIp);
        answerer.peer = make(false, kAnswerIp);
        eo = endpoint(offerer, kOfferIp);
        ea = endpoint(answerer, kAnswerIp);
        // The answer's delivery is a timer of the offerer's endpoint.
        eo.poll_timeout = [this] {
            Instant t = offerer.peer->poll_timeout();
            return answer_due ? std::min(t, *answer_due) : t;
        };
        eo.timeout = [this](Instant n) {
            sync_wall(n);
            if (answer_due && n >= *answer_due) {
                answer_due.reset();
                auto r = offerer.peer->set_remote_description(*answerer.local, n);
                ASSERT_TRUE(r.ok()) << r.error().message;
            }
            if (n >= offerer.peer->poll_timeout())
                offerer.peer->handle_timeout(n);
        };
        drain(offerer, now);
        drain(answerer, now);
    }

    std::unique_ptr<peer::Peer> make(bool is_offerer, net::IpAddr ip) {
        peer::PeerConfig c;
        c.offerer = is_offerer;
        auto cert = dtls::Certificate::generate();
        EXPECT_TRUE(cert.ok());
        c.certificate = *cert;
        c.host_sockets = {net::SocketAddr(ip, is_offerer ? 41000 : 51000)};
        c.gathering_timeout = base::ms(100);
        c.tie_breaker = is_offerer ? 7 : 8;
        return std::make_unique<peer::Peer>(std::move(c), now);
    }

    // usrsctp and libssl read gettimeofday: the test binary's interposed clock follows `now`.
    void sync_wall(Instant n) {
        if (n > wall_synced) {
            test_clock::advance_wall_clock(n - wall_synced);
            wall_synced = n;
        }
    }

    sim::Endpoint endpoint(Node& node, net::IpAddr ip) {
        sim::Endpoint e;
        e.addresses = {ip};
        e.receive = [this, &node](net::Datagram&& d, Instant n) {
            sync_wall(n);
            node.peer->handle_receive(std::move(d), n);
        };
        e.timeout = [this, &node](Instant n) {
            sync_wall(n);
            node.peer->handle_timeout(n);
        };
        e.poll_transmit = [&node] { return node.peer->poll_transmit(); };
        e.poll_timeout = [&node] { return node.peer->poll_timeout(); };
        e.after_input = [this, &node](Instant n) { drain(node, n); };
        return e;
    }

    void drain(Node& node, Instant n) {
        while (auto ev = node.peer->poll_event()) {
            if (auto* ld = std::get_if<peer::event::LocalDescription>(&*ev)) {
                node.local = sdp::SignalMessage{ld->type, ld->sdp};
                if (&node == &offerer) {
                    auto r = answerer.peer->set_remote_description(*node.local, n);
                    ASSERT_TRUE(r.ok()) << r.error().message;
                    drain(answerer, n);
                } else {
                    answer_due = n + answer_delay;
                }
            } else if (std::holds_alternative<peer::event::IceConnected>(*ev)) {
                node.ice_at = n;
            } else if (std::holds_alternative<peer::event::DtlsConnected>(*ev)) {
                node.dtls_at = n;
            } else if (std::holds_alternative<dcep::event::Connected>(*ev)) {
                node.ready_at = n;
            } else if (auto* f = std::get_if<peer::event::Failed>(&*ev)) {
                node.failed = *f;
            }
        }
    }

    bool connect(base::Duration limit = seconds(10)) {
        now = sim::run_until(net, {&eo, &ea}, now, now + limit, [&] {
            return (offerer.ready_at && answerer.ready_at) || offerer.failed || answerer.failed;
        });
        return offerer.ready_at && answerer.ready_at;
    }

    std::string why() const {
        std::string s;
        if (offerer.failed)
            s += "offerer: " + offerer.failed->reason + " ";
        if (answerer.failed)
            s += "answerer: " + answerer.failed->reason;
        return s;
    }
};

sim::LinkParams delay_link(base::Duration one_way) {
    sim::LinkParams l;
    l.delay = one_way;
    return l;
}

double rtts(base::Duration d, base::Duration one_way) {
    return base::to_ms(d) / (2 * base::to_ms(one_way));
}

TEST(PeerConnect, OfferToAssociationUpInFourAndAHalfRoundTrips) {
    // With signaling instant, the answerer (controlled ICE agent, DTLS client) checks at once;
    // its pair is valid after one round trip and its ClientHello leaves then (RFC 8445 §12.1),
    // not a round trip later when the offerer's nomination arrives. Then DTLS takes two round
    // trips (the offerer, DTLS server, is up after 2.5), and SCTP's handshake two more, its
    // INITs crossing: the answerer is up after 4, the offerer after 4.5 round trips.
    const auto one_way = base::ms(10);
    Session s(1, delay_link(one_way));
    const Instant start = s.now;
    s.start();
    ASSERT_TRUE(s.connect()) << s.why();
    const auto ans = *s.answerer.ready_at - start;
    const auto off = *s.offerer.ready_at - start;
    std::printf("[ measure  ] one-way %.0f ms: answerer DTLS up after %.1f RTT, association up "
                "after %.1f RTT (answerer) / %.1f RTT (offerer)\n",
                base::to_ms(one_way), rtts(*s.answerer.dtls_at - start, one_way),
                rtts(ans, one_way), rtts(off, one_way));
    EXPECT_GE(s.answerer.peer->stats().ice.sent_before_selection, 1u)
        << "the ClientHello left on a valid pair, before selection";
    EXPECT_LT(*s.answerer.dtls_at, *s.answerer.ice_at + one_way * 4)
        << "DTLS did not wait for the nomination round trip";
    EXPECT_LE(rtts(*s.answerer.dtls_at - start, one_way), 3.0);
    EXPECT_LE(rtts(ans, one_way), 4.0);
    EXPECT_LE(rtts(off, one_way), 4.5);
    for (const Node* n : {&s.offerer, &s.answerer}) {
        EXPECT_EQ(n->peer->stats().dtls.retransmits, 0u) << "no flight was lost or dropped";
    }
}

TEST(PeerConnect, DtlsServerHoldsItsFlightUntilItsIceHasAValidPair) {
    // The answer is 30 ms late: the answerer's checks were answered (a peer answers checks
    // before it knows our credentials) and its ClientHello arrived before the offerer had a
    // DTLS session — buffered. When the answer comes, the offerer's server flight is ready
    // before its own checks succeed: it must be held, not sent into the void (send() without
    // a valid pair) and left to the 100 ms retransmission timer.
    const auto one_way = base::ms(5);
    Session s(2, delay_link(one_way));
    s.answer_delay = base::ms(30);
    const Instant start = s.now;
    s.start();
    ASSERT_TRUE(s.connect()) << s.why();
    const auto& o = s.offerer.peer->stats();
    EXPECT_GE(o.dtls_buffered_early, 1u) << "the ClientHello came before the answer";
    EXPECT_GE(o.dtls_held_early, 1u) << "the server flight waited for a valid pair";
    EXPECT_EQ(o.ice.send_dropped, 0u);
    EXPECT_EQ(o.dtls.retransmits, 0u);
    EXPECT_EQ(s.answerer.peer->stats().dtls.retransmits, 0u);
    // Answer at 30 ms; then the offerer's check (1 RTT), the rest of DTLS (1.5 RTT) and SCTP.
    const auto took = std::max(*s.offerer.ready_at, *s.answerer.ready_at) - start;
    EXPECT_LT(took, base::ms(30) + one_way * 2 * 5) << base::to_ms(took) << " ms";
}

TEST(PeerConnect, SctpInitArrivingWithTheLastDtlsFlightIsKept) {
    // The offerer (DTLS server) is connected first, builds its association and sends INIT
    // right behind its Finished; both reach the answerer in the same instant, before the
    // answerer's association exists (it is built on the next timeout, after Finished has been
    // processed). The INIT is kept and fed to the association, not dropped.
    const auto one_way = base::ms(10);
    Session s(3, delay_link(one_way));
    s.start();
    ASSERT_TRUE(s.connect()) << s.why();
    EXPECT_GE(s.answerer.peer->stats().sctp_buffered_early, 1u);
    EXPECT_EQ(s.answerer.peer->stats().sctp.bad_packets, 0u);
    EXPECT_EQ(s.offerer.peer->stats().sctp.bad_packets, 0u);
}

TEST(PeerConnect, ConnectsUnderLossWithEarlyDtls) {
    // Early DTLS on a valid pair must not cost correctness when checks, flights and INITs
    // are lost: every seed connects, through retransmissions.
    sim::LinkParams link = delay_link(base::ms(15));
    link.loss = 0.25;
    for (std::uint64_t seed : {21u, 22u, 23u, 24u}) {
        Session s(seed, link);
        SCOPED_TRACE(s.net.describe());
        s.answer_delay = base::ms(seed % 2 == 0 ? 0 : 40);
        s.start();
        EXPECT_TRUE(s.connect(seconds(30))) << s.why();
    }
}

} // namespace
} // namespace rtcat
