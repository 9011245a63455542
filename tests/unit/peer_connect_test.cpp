// Connection set-up of two whole Peers (ICE + DTLS + SCTP/DCEP) on virtual time: how many round
// trips "offer -> association up" takes, and that no flight produced or received early is lost
// to a retransmission timer (DTLS before ICE has a valid pair, SCTP before the association
// exists). Signaling is under the test's control so either description can be late.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/peer/peer.hpp"
#include "tests/support/peer_pair.hpp"
#include "tests/support/sim_net.hpp"

namespace rtcat {
namespace {

using base::Instant;
using std::chrono::seconds;

const net::IpAddr kOfferIp = *net::IpAddr::parse("10.1.0.1");
const net::IpAddr kAnswerIp = *net::IpAddr::parse("10.1.0.2");

// Offerer and answerer on one simulated link (`link` both ways; virtual time from 2000 s). The
// offer reaches the answerer when it is emitted; the answer reaches the offerer `answer_delay`
// later (a slow signaling channel), as a timer of the offerer's endpoint even when zero.
struct Session : test::PeerPair {
    test::PeerSide& offerer = a;
    test::PeerSide& answerer = b;
    base::Duration answer_delay{0};

    explicit Session(std::uint64_t seed, sim::LinkParams link)
        : PeerPair(seed, Instant(seconds(2000))) {
        net.attach(kOfferIp);
        net.attach(kAnswerIp);
        net.set_default_link(std::move(link));
    }

    // Creates the peers (100 ms gathering, fixed tie-breakers) and drains their first output.
    void start() {
        a.sdp_delay = answer_delay;
        auto co = config(true, net::SocketAddr(kOfferIp, 41000), base::ms(100));
        auto ca = config(false, net::SocketAddr(kAnswerIp, 51000), base::ms(100));
        co.tie_breaker = 7;
        ca.tie_breaker = 8;
        PeerPair::start(std::move(co), std::move(ca));
        drain(a, now);
        drain(b, now);
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
    for (const test::PeerSide* n : {&s.offerer, &s.answerer}) {
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
