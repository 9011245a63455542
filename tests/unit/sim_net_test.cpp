// The simulated network of tests/support/sim_net.hpp: impairment statistics, the bottleneck,
// determinism, the RFC 4787 NAT matrix, hairpinning, and the run_until driver.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/sim_net.hpp"

namespace rtcat::sim {
namespace {

using base::Instant;
using base::ms;
using net::IpAddr;
using net::SocketAddr;
using std::chrono::seconds;

const IpAddr kA = IpAddr::v4(198, 51, 100, 1);
const IpAddr kB = IpAddr::v4(198, 51, 100, 2);
const IpAddr kC = IpAddr::v4(198, 51, 100, 3);
const IpAddr kD = IpAddr::v4(192, 0, 2, 9); // sorts before kA
const IpAddr kNatIp = IpAddr::v4(203, 0, 113, 1);
const IpAddr kNat2Ip = IpAddr::v4(203, 0, 113, 2);
const IpAddr kH1 = IpAddr::v4(10, 0, 0, 2);
const IpAddr kH2 = IpAddr::v4(10, 0, 0, 3);
const IpAddr kH3 = IpAddr::v4(192, 168, 1, 2);

Instant at_ms(std::int64_t v) {
    return Instant{} + ms(v);
}
Instant at_us(std::int64_t v) {
    return Instant{} + base::Duration(v);
}
std::int64_t us_of(Instant t) {
    return t.time_since_epoch().count();
}

// A payload carrying a sequence number, so tests can follow datagrams.
base::Bytes numbered(std::uint32_t n, std::size_t size = 8) {
    base::Bytes b(std::max<std::size_t>(size, 4), 0);
    b[0] = static_cast<std::uint8_t>(n >> 24);
    b[1] = static_cast<std::uint8_t>(n >> 16);
    b[2] = static_cast<std::uint8_t>(n >> 8);
    b[3] = static_cast<std::uint8_t>(n);
    return b;
}
std::uint32_t number_of(const base::Bytes& b) {
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
           std::uint32_t{b[3]};
}

net::Transmit tx(SocketAddr from, SocketAddr to, base::Bytes payload) {
    return net::Transmit{from, to, std::move(payload)};
}

struct Arrival {
    Instant when;
    std::uint32_t n;
    SocketAddr source;
    SocketAddr destination;
    bool operator==(const Arrival&) const = default;
};

// Delivers everything, stepping virtual time to each next arrival.
std::vector<Arrival> drain_all(Network& net) {
    std::vector<Arrival> out;
    for (Instant t = net.next_delivery(); t != base::kNever; t = net.next_delivery()) {
        while (auto d = net.poll_delivery(t))
            out.push_back({t, number_of(d->payload), d->source, d->destination});
    }
    return out;
}

struct LinkRun {
    Network net;
    std::vector<Arrival> got;
};

// Two public hosts A -> B with `p`; sends `count` numbered datagrams, one every `gap`.
LinkRun run_link(std::uint64_t seed, const LinkParams& p, int count, base::Duration gap) {
    LinkRun r{Network(seed), {}};
    r.net.attach(kA);
    r.net.attach(kB);
    r.net.set_link(kA, kB, p);
    Instant now{};
    for (int i = 0; i < count; ++i, now += gap) {
        while (auto d = r.net.poll_delivery(now))
            r.got.push_back({now, number_of(d->payload), d->source, d->destination});
        r.net.send(tx({kA, 1000}, {kB, 2000}, numbered(static_cast<std::uint32_t>(i))), now);
    }
    auto rest = drain_all(r.net);
    r.got.insert(r.got.end(), rest.begin(), rest.end());
    return r;
}

TEST(SimNet, DeliversAfterDelayInArrivalOrder) {
    Network net(1);
    SCOPED_TRACE(net.describe());
    net.attach(kA);
    net.attach(kB);
    net.attach(kC);
    LinkParams slow;
    slow.delay = ms(30);
    LinkParams fast;
    fast.delay = ms(10);
    net.set_link(kA, kB, slow);
    net.set_link(kC, kB, fast);

    net.send(tx({kA, 1}, {kB, 2}, numbered(1)), at_ms(0));
    net.send(tx({kC, 1}, {kB, 2}, numbered(2)), at_ms(5));
    net.send(tx({kC, 1}, {kB, 2}, numbered(3)), at_ms(5)); // tie with 2: send order
    EXPECT_EQ(net.in_flight(), 3u);
    EXPECT_EQ(net.next_delivery(), at_ms(15));
    EXPECT_FALSE(net.poll_delivery(at_ms(14)));

    auto got = drain_all(net);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], (Arrival{at_ms(15), 2, {kC, 1}, {kB, 2}}));
    EXPECT_EQ(got[1], (Arrival{at_ms(15), 3, {kC, 1}, {kB, 2}}));
    EXPECT_EQ(got[2], (Arrival{at_ms(30), 1, {kA, 1}, {kB, 2}}));
    EXPECT_EQ(net.next_delivery(), base::kNever);
    EXPECT_EQ(net.stats().sent, 3u);
    EXPECT_EQ(net.stats().delivered, 3u);
    EXPECT_EQ(net.stats().delivered_bytes, 24u);

    // Many ties: still in send order.
    for (std::uint32_t i = 0; i < 50; ++i)
        net.send(tx({kC, 1}, {kB, 2}, numbered(i)), at_ms(100));
    got = drain_all(net);
    ASSERT_EQ(got.size(), 50u);
    for (std::uint32_t i = 0; i < 50; ++i)
        EXPECT_EQ(got[i].n, i);
}

TEST(SimNet, DefaultLinkAppliesToPairsWithoutTheirOwn) {
    Network net(2);
    net.attach(kA);
    net.attach(kB);
    LinkParams d;
    d.delay = ms(7);
    net.set_default_link(d);
    net.send(tx({kA, 1}, {kB, 2}, numbered(1)), at_ms(0));
    net.send(tx({kB, 2}, {kA, 1}, numbered(2)), at_ms(0));
    auto got = drain_all(net);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].when, at_ms(7));
    EXPECT_EQ(got[1].when, at_ms(7));
}

TEST(SimNet, JitterStaysWithinBounds) {
    LinkParams p;
    p.delay = ms(20);
    p.jitter = ms(10);
    auto [net, got] = run_link(3, p, 2000, ms(1));
    SCOPED_TRACE(net.describe());
    ASSERT_EQ(got.size(), 2000u);
    std::int64_t lo = 1 << 30, hi = 0;
    for (const auto& a : got) {
        auto sent = ms(a.n);
        auto lat = us_of(a.when) - sent.count();
        lo = std::min(lo, lat);
        hi = std::max(hi, lat);
    }
    EXPECT_GE(lo, 20000);
    EXPECT_LE(hi, 30000);
    EXPECT_LT(lo, 20500); // the whole range is used
    EXPECT_GT(hi, 29500);
}

TEST(SimNet, LossRateIsNearTheParameter) {
    LinkParams p;
    p.loss = 0.05;
    auto [net, got] = run_link(42, p, 10000, ms(1));
    SCOPED_TRACE(net.describe());
    const auto& s = net.stats();
    EXPECT_EQ(s.sent, 10000u);
    EXPECT_GE(s.dropped_loss, 400u);
    EXPECT_LE(s.dropped_loss, 600u);
    EXPECT_EQ(s.delivered + s.dropped_loss, 10000u);
    EXPECT_EQ(got.size(), s.delivered);
    // Order is kept on a plain lossy link.
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end(),
                               [](const Arrival& a, const Arrival& b) { return a.n < b.n; }));
}

TEST(SimNet, DuplicatesArriveTwiceBackToBack) {
    LinkParams p;
    p.duplicate = 0.1;
    p.delay = ms(5);
    auto [net, got] = run_link(7, p, 10000, ms(1));
    SCOPED_TRACE(net.describe());
    const auto& s = net.stats();
    EXPECT_GE(s.duplicated, 850u);
    EXPECT_LE(s.duplicated, 1150u);
    EXPECT_EQ(got.size(), 10000u + s.duplicated);
    std::uint64_t twins = 0;
    for (std::size_t i = 1; i < got.size(); ++i) {
        if (got[i].n == got[i - 1].n) {
            ++twins;
            EXPECT_EQ(got[i].when, got[i - 1].when);
        }
    }
    EXPECT_EQ(twins, s.duplicated);
}

TEST(SimNet, ReorderLetsLaterDatagramsOvertake) {
    LinkParams p;
    p.reorder = 0.1;
    p.reorder_delay = ms(5);
    p.delay = ms(10);
    auto [net, got] = run_link(11, p, 5000, ms(1));
    SCOPED_TRACE(net.describe());
    const auto& s = net.stats();
    ASSERT_EQ(got.size(), 5000u); // nothing lost
    EXPECT_GE(s.reordered, 400u);
    EXPECT_LE(s.reordered, 600u);
    // Every reordered datagram is overtaken by the ~4 sent after it.
    std::uint64_t inversions = 0;
    for (std::size_t i = 1; i < got.size(); ++i)
        inversions += got[i].n < got[i - 1].n;
    EXPECT_GE(inversions, s.reordered / 2);
    std::vector<std::uint32_t> seen;
    for (const auto& a : got)
        seen.push_back(a.n);
    std::sort(seen.begin(), seen.end());
    for (std::uint32_t i = 0; i < seen.size(); ++i)
        ASSERT_EQ(seen[i], i);
}

TEST(SimNet, BottleneckSerializesAndTailDrops) {
    Network net(5);
    SCOPED_TRACE(net.describe());
    net.attach(kA);
    net.attach(kB);
    LinkParams p;
    p.rate_bytes_per_sec = 1e6; // 1000 bytes = 1 ms on the wire
    p.queue_bytes = 5000;       // bounds the backlog, the datagram in service included
    p.delay = ms(10);
    net.set_link(kA, kB, p);
    for (std::uint32_t i = 0; i < 10; ++i)
        net.send(tx({kA, 1}, {kB, 2}, numbered(i, 1000)), at_ms(0));
    EXPECT_EQ(net.stats().dropped_queue, 5u);
    auto got = drain_all(net);
    ASSERT_EQ(got.size(), 5u);
    for (std::uint32_t i = 0; i < 5; ++i) {
        EXPECT_EQ(got[i].n, i);
        EXPECT_EQ(got[i].when, at_ms(10 + 1 + i)); // serialization, then propagation
    }
    // The queue drains at the rate: 2.5 ms later 2.5 datagrams fit again (2 whole ones).
    net.send(tx({kA, 1}, {kB, 2}, numbered(100, 1000)), at_us(2500));
    net.send(tx({kA, 1}, {kB, 2}, numbered(101, 1000)), at_us(2500));
    net.send(tx({kA, 1}, {kB, 2}, numbered(102, 1000)), at_us(2500));
    EXPECT_EQ(net.stats().dropped_queue, 6u);
    got = drain_all(net);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].when, at_ms(16));
    EXPECT_EQ(got[1].when, at_ms(17));
}

TEST(SimNet, BottleneckGivesTheConfiguredThroughput) {
    // Offer 2 MB/s for one second into a 1 MB/s bottleneck with a 50 kB queue.
    LinkParams p;
    p.rate_bytes_per_sec = 1e6;
    p.queue_bytes = 50000;
    p.delay = ms(20);
    Network net(9);
    SCOPED_TRACE(net.describe());
    net.attach(kA);
    net.attach(kB);
    net.set_link(kA, kB, p);
    std::uint64_t bytes_by_1s = 0;
    Instant last{};
    Instant now{};
    auto take = [&](Instant t) {
        while (auto d = net.poll_delivery(t)) {
            last = t;
            if (t <= at_ms(1000))
                bytes_by_1s += d->payload.size();
        }
    };
    for (std::uint32_t i = 0; i < 2000; ++i, now += base::Duration(500)) {
        take(now);
        net.send(tx({kA, 1}, {kB, 2}, numbered(i, 1000)), now);
    }
    for (Instant t = net.next_delivery(); t != base::kNever; t = net.next_delivery())
        take(t);
    const auto& s = net.stats();
    // Delivered in the first second: (1000 - 20 ms of propagation) at 1 MB/s.
    EXPECT_NEAR(static_cast<double>(bytes_by_1s), 980000.0, 2000.0);
    // Everything accepted = one second of rate plus the queue.
    EXPECT_NEAR(static_cast<double>(s.delivered), 1050.0, 2.0);
    EXPECT_EQ(s.delivered + s.dropped_queue, 2000u);
    // The last one left the full queue 50 ms after the sending stopped, then propagated.
    EXPECT_NEAR(static_cast<double>(us_of(last)), 1000000.0 + 50000 + 20000, 1000.0);
}

TEST(SimNet, SameSeedSameSequenceAndLinksAreIndependent) {
    LinkParams p;
    p.loss = 0.1;
    p.duplicate = 0.05;
    p.reorder = 0.1;
    p.delay = ms(10);
    p.jitter = ms(3);
    auto a = run_link(1234, p, 3000, ms(1)).got;
    auto b = run_link(1234, p, 3000, ms(1)).got;
    auto c = run_link(4321, p, 3000, ms(1)).got;
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);

    // Traffic on another link does not perturb this link's pattern.
    Network net(1234);
    net.attach(kA);
    net.attach(kB);
    net.attach(kC);
    net.set_link(kA, kB, p);
    net.set_link(kC, kB, p);
    std::vector<Arrival> from_a;
    std::vector<std::uint32_t> numbers_a, numbers_c;
    auto keep = [&](const Arrival& r) {
        if (r.source.ip() == kA) {
            from_a.push_back(r);
            numbers_a.push_back(r.n);
        } else {
            numbers_c.push_back(r.n);
        }
    };
    Instant now{};
    for (std::uint32_t i = 0; i < 3000; ++i, now += ms(1)) {
        while (auto d = net.poll_delivery(now))
            keep({now, number_of(d->payload), d->source, d->destination});
        net.send(tx({kC, 1000}, {kB, 2000}, numbered(i)), now);
        net.send(tx({kA, 1000}, {kB, 2000}, numbered(i)), now);
    }
    for (const auto& r : drain_all(net))
        keep(r);
    EXPECT_EQ(from_a, a);
    // ... and two links with the same parameters do not share one pattern.
    EXPECT_NE(numbers_a, numbers_c);
}

TEST(SimNet, DropIfDropsTargetedDatagramsBeforeLoss) {
    Network net(3);
    net.attach(kA);
    net.attach(kB);
    LinkParams p;
    int hellos = 0;
    // "Drop the first DTLS ClientHello": content type 22, handshake type 1 at offset 13.
    p.drop_if = [&hellos](const net::Datagram& d) {
        bool hello = d.payload.size() > 13 && d.payload[0] == 22 && d.payload[13] == 1;
        return hello && ++hellos == 1;
    };
    net.set_link(kA, kB, p);
    base::Bytes hello(40, 0);
    hello[0] = 22;
    hello[13] = 1;
    base::Bytes other(40, 0);
    other[0] = 23;
    net.send(tx({kA, 1}, {kB, 2}, hello), at_ms(0));
    net.send(tx({kA, 1}, {kB, 2}, other), at_ms(0));
    net.send(tx({kA, 1}, {kB, 2}, hello), at_ms(1));
    auto first = net.poll_delivery(at_ms(1));
    auto second = net.poll_delivery(at_ms(1));
    ASSERT_TRUE(first && second);
    EXPECT_EQ(first->payload, other);
    EXPECT_EQ(second->payload, hello);
    EXPECT_FALSE(net.poll_delivery(at_ms(1)));
    EXPECT_EQ(net.stats().dropped_targeted, 1u);
    EXPECT_EQ(net.stats().dropped_loss, 0u);
}

// --- NAT ------------------------------------------------------------------------------------

const SocketAddr kHost(kH1, 5000);
const SocketAddr kServerA(kA, 3478);
const SocketAddr kServerAOtherPort(kA, 3479);
const SocketAddr kServerB(kB, 3478);

Network nat_world(Mapping m, Filtering f, bool hairpin = false) {
    Network net(77);
    net.add_nat("nat", NatParams{kNatIp, m, f, hairpin, seconds(120)});
    net.attach(kH1, "nat");
    net.attach(kH2, "nat");
    net.attach(kA);
    net.attach(kB);
    net.attach(kD);
    return net;
}

// Sends host -> `to` and returns the source the far side sees.
SocketAddr mapped(Network& net, SocketAddr from, SocketAddr to, Instant now) {
    net.send(tx(from, to, numbered(0)), now);
    auto d = net.poll_delivery(now);
    EXPECT_TRUE(d);
    return d ? d->source : SocketAddr();
}

// Whether `from` -> `to` reaches `expect`.
bool passes(Network& net, SocketAddr from, SocketAddr to, SocketAddr expect, Instant now) {
    net.send(tx(from, to, numbered(1)), now);
    auto d = net.poll_delivery(now);
    if (!d)
        return false;
    EXPECT_EQ(d->destination, expect);
    EXPECT_EQ(d->source, from);
    return true;
}

std::string name_of(Mapping m) {
    return m == Mapping::EndpointIndependent ? "EIM"
           : m == Mapping::AddressDependent  ? "ADM"
                                             : "APDM";
}
std::string name_of(Filtering f) {
    return f == Filtering::EndpointIndependent ? "EIF"
           : f == Filtering::AddressDependent  ? "ADF"
                                               : "APDF";
}

TEST(SimNet, NatMatrixFilteringAndMapping) {
    const Mapping maps[] = {Mapping::EndpointIndependent, Mapping::AddressDependent,
                            Mapping::AddressAndPortDependent};
    const Filtering filters[] = {Filtering::EndpointIndependent, Filtering::AddressDependent,
                                 Filtering::AddressAndPortDependent};
    for (Mapping m : maps) {
        for (Filtering f : filters) {
            SCOPED_TRACE(name_of(m) + "/" + name_of(f));
            // Filtering: the host sent only to A:3478.
            {
                Network net = nat_world(m, f);
                SCOPED_TRACE(net.describe());
                SocketAddr pub = mapped(net, kHost, kServerA, at_ms(0));
                EXPECT_EQ(pub.ip(), kNatIp);
                EXPECT_GE(pub.port(), Network::kFirstPublicPort);
                EXPECT_TRUE(passes(net, kServerA, pub, kHost, at_ms(1)));
                EXPECT_EQ(passes(net, kServerAOtherPort, pub, kHost, at_ms(2)),
                          f != Filtering::AddressAndPortDependent);
                EXPECT_EQ(passes(net, kServerB, pub, kHost, at_ms(3)),
                          f == Filtering::EndpointIndependent);
                EXPECT_EQ(passes(net, {kD, 3478}, pub, kHost, at_ms(3)),
                          f == Filtering::EndpointIndependent);
                // A port with no mapping never passes.
                SocketAddr unused(kNatIp, static_cast<std::uint16_t>(pub.port() ^ 1));
                EXPECT_FALSE(passes(net, kServerA, unused, kHost, at_ms(4)));
                std::uint64_t refused = 2 * (f != Filtering::EndpointIndependent) +
                                        (f == Filtering::AddressAndPortDependent) + 1;
                EXPECT_EQ(net.stats().dropped_filter, refused);
            }
            // Mapping: one host port towards A:3478, A:3479, B:3478.
            {
                Network net = nat_world(m, f);
                SCOPED_TRACE(net.describe());
                SocketAddr to_a = mapped(net, kHost, kServerA, at_ms(0));
                SocketAddr to_a2 = mapped(net, kHost, kServerAOtherPort, at_ms(1));
                SocketAddr to_b = mapped(net, kHost, kServerB, at_ms(2));
                SocketAddr again = mapped(net, kHost, kServerA, at_ms(3));
                EXPECT_EQ(again, to_a); // a live mapping is reused
                EXPECT_EQ(to_a == to_a2, m != Mapping::AddressAndPortDependent);
                EXPECT_EQ(to_a == to_b, m == Mapping::EndpointIndependent);
                EXPECT_EQ(net.mapping_of("nat", kHost, kServerB, at_ms(3)), to_b);
                // Another private port gets its own mapping.
                SocketAddr other = mapped(net, {kH1, 5001}, kServerA, at_ms(4));
                EXPECT_NE(other, to_a);
            }
        }
    }
}

TEST(SimNet, NatFiltersAtArrivalTime) {
    // APDF: A's other port sends before the host opened it, but arrives after: it passes
    // (what ICE simultaneous open relies on).
    Network net = nat_world(Mapping::EndpointIndependent, Filtering::AddressAndPortDependent);
    SCOPED_TRACE(net.describe());
    LinkParams slow;
    slow.delay = ms(50);
    net.set_link(kA, kNatIp, slow);
    SocketAddr pub = mapped(net, kHost, kServerA, at_ms(0));
    net.send(tx(kServerAOtherPort, pub, numbered(5)), at_ms(10)); // arrives at 60 ms
    net.send(tx(kHost, kServerAOtherPort, numbered(6)), at_ms(20));
    auto out = net.poll_delivery(at_ms(20));
    ASSERT_TRUE(out);
    EXPECT_EQ(out->destination, kServerAOtherPort);
    auto in = net.poll_delivery(at_ms(60));
    ASSERT_TRUE(in);
    EXPECT_EQ(number_of(in->payload), 5u);
    EXPECT_EQ(in->destination, kHost);
}

TEST(SimNet, NatMappingTimesOutUnlessRefreshedOutbound) {
    Network net = nat_world(Mapping::EndpointIndependent, Filtering::EndpointIndependent);
    SCOPED_TRACE(net.describe());
    SocketAddr pub = mapped(net, kHost, kServerA, at_ms(0));
    // Inbound traffic does not refresh (RFC 4787 REQ-6 only requires outbound refresh).
    EXPECT_TRUE(passes(net, kServerA, pub, kHost, at_ms(100000)));
    EXPECT_FALSE(passes(net, kServerA, pub, kHost, at_ms(120001)));
    EXPECT_FALSE(net.mapping_of("nat", kHost, kServerA, at_ms(120001)));
    // A new outbound packet makes a fresh mapping; outbound keeps it alive.
    SocketAddr fresh = mapped(net, kHost, kServerA, at_ms(130000));
    EXPECT_EQ(fresh.ip(), kNatIp);
    EXPECT_EQ(mapped(net, kHost, kServerB, at_ms(200000)), fresh);
    EXPECT_TRUE(passes(net, kServerA, fresh, kHost, at_ms(300000)));
}

TEST(SimNet, HairpinAndSameLanAndUnroutable) {
    for (bool hairpin : {false, true}) {
        SCOPED_TRACE(hairpin ? "hairpin" : "no hairpin");
        Network net =
            nat_world(Mapping::EndpointIndependent, Filtering::EndpointIndependent, hairpin);
        SCOPED_TRACE(net.describe());
        SocketAddr pub1 = mapped(net, kHost, kServerA, at_ms(0));
        SocketAddr pub2 = mapped(net, {kH2, 6000}, kServerA, at_ms(0));
        // Same LAN: direct, untranslated.
        EXPECT_TRUE(passes(net, kHost, {kH2, 6000}, {kH2, 6000}, at_ms(1)));
        // Through the NAT's public address.
        net.send(tx(kHost, pub2, numbered(9)), at_ms(2));
        auto d = net.poll_delivery(at_ms(2));
        EXPECT_EQ(d.has_value(), hairpin);
        if (d) {
            EXPECT_EQ(d->source, pub1); // RFC 4787 REQ-9: the external source
            EXPECT_EQ(d->destination, SocketAddr(kH2, 6000));
        }
        EXPECT_EQ(net.stats().dropped_filter, hairpin ? 0u : 1u);
    }
    // Private hosts are not reachable from outside; unknown addresses go nowhere.
    Network net = nat_world(Mapping::EndpointIndependent, Filtering::EndpointIndependent);
    net.add_nat("other", NatParams{kNat2Ip, Mapping::EndpointIndependent,
                                   Filtering::EndpointIndependent, false, seconds(120)});
    net.attach(kH3, "other");
    EXPECT_FALSE(passes(net, kServerA, kHost, kHost, at_ms(0)));
    EXPECT_FALSE(passes(net, {kH3, 1}, kHost, kHost, at_ms(0)));
    EXPECT_FALSE(passes(net, kServerA, {kC, 1}, {kC, 1}, at_ms(0)));
    EXPECT_EQ(net.stats().dropped_unroutable, 3u);
    // Across two NATs (EIM/EIF both): the far NAT's mapping lets it in.
    SocketAddr pub3 = mapped(net, {kH3, 7000}, kServerA, at_ms(1));
    SocketAddr pub1 = mapped(net, kHost, kServerA, at_ms(1));
    net.send(tx(kHost, pub3, numbered(3)), at_ms(2));
    auto d = net.poll_delivery(at_ms(2));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->source, pub1);
    EXPECT_EQ(d->destination, SocketAddr(kH3, 7000));
}

// --- run_until ------------------------------------------------------------------------------

// Sends a ping every 100 ms from its first timeout; counts pongs.
struct Pinger {
    Pinger(SocketAddr s, SocketAddr p, Instant first = {}) : self(s), peer(p), next(first) {}
    SocketAddr self, peer;
    Instant next;
    std::deque<net::Transmit> out;
    int pongs = 0;
    int timeouts = 0;

    void handle_receive(const net::Datagram& d, Instant) {
        if (d.payload == base::Bytes{'p', 'o'})
            ++pongs;
    }
    void handle_timeout(Instant now) {
        ++timeouts;
        if (now >= next) {
            out.push_back(tx(self, peer, {'p', 'i'}));
            next = now + ms(100);
        }
    }
    std::optional<net::Transmit> poll_transmit() {
        if (out.empty())
            return std::nullopt;
        auto t = std::move(out.front());
        out.pop_front();
        return t;
    }
    Instant poll_timeout() const { return next; }
};

// Answers pings; no timers.
struct Ponger {
    std::deque<net::Transmit> out;
    int polls = 0;
    void handle_receive(const net::Datagram& d, Instant) {
        // An unspecified source: run_until fills in the endpoint's address.
        out.push_back(tx(SocketAddr(IpAddr(), d.destination.port()), d.source, {'p', 'o'}));
    }
    void handle_timeout(Instant) {}
    std::optional<net::Transmit> poll_transmit() {
        if (out.empty())
            return std::nullopt;
        auto t = std::move(out.front());
        out.pop_front();
        return t;
    }
    Instant poll_timeout() {
        ++polls;
        return base::kNever;
    }
};

TEST(SimNet, RunUntilStopsOnPredicateAtTheEventTime) {
    Network net = nat_world(Mapping::AddressAndPortDependent, Filtering::AddressAndPortDependent);
    SCOPED_TRACE(net.describe());
    LinkParams p;
    p.delay = ms(10);
    net.set_default_link(p);
    Pinger pinger(kHost, kServerA);
    Ponger ponger;
    Endpoint a = make_endpoint(pinger, {kH1});
    int pong_events = 0;
    Endpoint b = make_endpoint(ponger, {kA}, [&](Instant) { ++pong_events; });
    Instant end =
        run_until(net, {&a, &b}, at_ms(0), at_ms(10000), [&] { return pinger.pongs == 3; });
    // Pings at 0, 100, 200 ms; the third pong is back 20 ms later, through the NAT both ways.
    EXPECT_EQ(end, at_ms(220));
    EXPECT_EQ(pinger.pongs, 3);
    EXPECT_EQ(pong_events, 3);
    EXPECT_EQ(pinger.timeouts, 3);
    EXPECT_EQ(net.stats().dropped_filter, 0u);
}

TEST(SimNet, RunUntilJumpsToTheDeadlineWithoutBusyLooping) {
    Network net(1);
    net.attach(kA);
    net.attach(kB);
    Ponger idle1, idle2;
    Endpoint a = make_endpoint(idle1, {kA});
    Endpoint b = make_endpoint(idle2, {kB});
    int checks = 0;
    Instant end = run_until(net, {&a, &b}, at_ms(5), at_ms(3600 * 1000), [&] {
        ++checks;
        return false;
    });
    EXPECT_EQ(end, at_ms(3600 * 1000));
    EXPECT_EQ(checks, 1);
    EXPECT_LE(idle1.polls, 3);

    // A single timer far away: one jump to it, then to the deadline.
    Pinger lonely({kA, 1}, {kB, 2}, at_ms(5000));
    Endpoint c = make_endpoint(lonely, {kA});
    Endpoint d = make_endpoint(idle2, {kB});
    checks = 0;
    end = run_until(net, {&c, &d}, at_ms(0), at_ms(7000), [&] {
        ++checks;
        return lonely.timeouts > 0;
    });
    EXPECT_EQ(end, at_ms(5000));
    EXPECT_EQ(checks, 2);
    EXPECT_EQ(lonely.timeouts, 1);
    // Keeps going: the next ping is due at 5100 ms, the deadline stops it first.
    end = run_until(net, {&c, &d}, end, at_ms(5050), [] { return false; });
    EXPECT_EQ(end, at_ms(5050));
    EXPECT_EQ(lonely.timeouts, 1);
}

TEST(SimNet, HundredThousandDatagramsThroughABottleneck) {
    // Data-channel scale: 100k x 1200 bytes paced at the bottleneck rate with loss.
    Network net(99);
    SCOPED_TRACE(net.describe());
    net.attach(kA);
    net.attach(kB);
    LinkParams p;
    p.rate_bytes_per_sec = 12e6; // one 1200-byte datagram per 100 µs
    p.delay = ms(25);
    p.jitter = ms(1);
    p.loss = 0.01;
    net.set_link(kA, kB, p);
    std::uint64_t got = 0;
    Instant now{};
    for (std::uint32_t i = 0; i < 100000; ++i, now += base::Duration(100)) {
        while (net.poll_delivery(now))
            ++got;
        net.send(tx({kA, 1}, {kB, 2}, numbered(i, 1200)), now);
    }
    for (Instant t = net.next_delivery(); t != base::kNever; t = net.next_delivery()) {
        while (net.poll_delivery(t))
            ++got;
    }
    EXPECT_EQ(net.stats().dropped_queue, 0u);
    EXPECT_EQ(got + net.stats().dropped_loss, 100000u);
    EXPECT_NEAR(static_cast<double>(net.stats().dropped_loss), 1000.0, 150.0);
}

} // namespace
} // namespace rtcat::sim
