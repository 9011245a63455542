// The stun-probe machine on virtual time, through a NAT model (RFC 4787 mapping and filtering,
// hairpinning) to an RFC 5780 STUN server model with a primary and an alternate address.

#include <map>
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "core/stun/probe.hpp"

using namespace rtcat;
using namespace rtcat::stun;
using net::IpAddr;
using net::SocketAddr;

namespace {

SocketAddr sa(const char* s) {
    return *SocketAddr::parse(s);
}

enum class MapMode { None, EIM, ADM, APDM };
enum class FilterMode { EIF, ADF, APDF };

// A NAT between the private side (10.0.0.0/24) and the public one.
class Nat {
public:
    Nat(MapMode m, FilterMode f, bool hairpin) : map_(m), filter_(f), hairpin_(hairpin) {}

    // Outbound: returns the translated source.
    SocketAddr outbound(const SocketAddr& from, const SocketAddr& to) {
        if (map_ == MapMode::None)
            return from;
        Key k{from, map_ == MapMode::EIM ? IpAddr() : to.ip(),
              map_ == MapMode::APDM ? to.port() : std::uint16_t{0}};
        auto it = mappings_.find(k);
        if (it == mappings_.end()) {
            SocketAddr pub(kPublic, next_port_++);
            it = mappings_.emplace(k, pub).first;
            owner_[pub] = from;
        }
        sent_[it->second].insert(to);
        return it->second;
    }
    // Inbound to a public address: the private destination, or nullopt when filtered.
    std::optional<SocketAddr> inbound(const SocketAddr& from, const SocketAddr& to) {
        if (map_ == MapMode::None)
            return to;
        auto o = owner_.find(to);
        if (o == owner_.end())
            return std::nullopt;
        const auto& sent = sent_[to];
        bool ok = false;
        for (const auto& s : sent) {
            if (filter_ == FilterMode::EIF || (filter_ == FilterMode::ADF && s.ip() == from.ip()) ||
                s == from)
                ok = true;
        }
        if (!ok)
            return std::nullopt;
        return o->second;
    }
    bool hairpin() const { return hairpin_; }
    static inline const IpAddr kPublic = IpAddr::v4(203, 0, 113, 1);

private:
    using Key = std::tuple<SocketAddr, IpAddr, std::uint16_t>;
    MapMode map_;
    FilterMode filter_;
    bool hairpin_;
    std::map<Key, SocketAddr> mappings_;
    std::map<SocketAddr, SocketAddr> owner_;
    std::map<SocketAddr, std::set<SocketAddr>> sent_;
    std::uint16_t next_port_ = 40000;
};

// An RFC 5780 server on ip1/ip2 x port1/port2, or a plain one when `rfc5780` is false.
struct StunServerModel {
    IpAddr ip1, ip2;
    std::uint16_t port1, port2;
    bool rfc5780 = true;
    bool garbage = false;   // answers with junk
    bool wrong_tid = false; // answers with a different transaction id
    std::optional<std::pair<int, std::string>> error = std::nullopt; // answers with this error

    bool owns(const SocketAddr& a) const {
        return (a.ip() == ip1 || (rfc5780 && a.ip() == ip2)) &&
               (a.port() == port1 || (rfc5780 && a.port() == port2));
    }
    // Returns (source, payload) of the response.
    std::optional<std::pair<SocketAddr, base::Bytes>>
    answer(const SocketAddr& from, const SocketAddr& to, const base::Bytes& req_bytes) {
        auto req = decode(req_bytes);
        if (!req || req->cls() != Class::Request)
            return std::nullopt;
        if (garbage)
            return std::pair{to, base::Bytes{0x01, 0x01, 0x00, 0x04, 1, 2, 3}};
        if (error)
            return std::pair{to, encode(Message::error_for(*req, error->first, error->second),
                                        {nullptr, false, true})};
        SocketAddr src = to;
        if (auto cr = req->change_request(); cr && rfc5780) {
            IpAddr ip = cr->first ? (to.ip() == ip1 ? ip2 : ip1) : to.ip();
            std::uint16_t port = cr->second ? (to.port() == port1 ? port2 : port1) : to.port();
            src = SocketAddr(ip, port);
        }
        auto resp = Message::success_for(*req);
        if (wrong_tid)
            resp = Message(Method::Binding, Class::Success, new_transaction_id());
        resp.add_xor_address(attr::XorMappedAddress, from);
        resp.add_string(attr::Software, "model");
        if (rfc5780) {
            resp.add_address(attr::ResponseOrigin, src);
            resp.add_address(attr::OtherAddress, SocketAddr(to.ip() == ip1 ? ip2 : ip1,
                                                            to.port() == port1 ? port2 : port1));
        }
        return std::pair{src, encode(resp, {nullptr, false, true})};
    }
};

struct World {
    World(Nat n, std::vector<StunServerModel> s) : nat(n), servers(std::move(s)) {}
    Nat nat;
    std::vector<StunServerModel> servers;
    base::Instant now{};
    std::vector<SocketAddr> unreachable; // destinations answering with ICMP
    int delivered = 0;

    // Carries one transmit; responses go back into the prober.
    void carry(Prober& p, const net::Transmit& t) {
        for (const auto& u : unreachable) {
            if (u == t.destination) {
                p.handle_unreachable(t.source, t.destination, "port unreachable", now);
                return;
            }
        }
        SocketAddr pub_src = nat.outbound(t.source, t.destination);
        // Hairpin: to our own public address.
        if (t.destination.ip() == Nat::kPublic) {
            if (!nat.hairpin()) {
                if (icmp_on_hairpin) // the NAT's own stack answers "port unreachable"
                    p.handle_unreachable(t.source, t.destination, "port unreachable", now);
                return;
            }
            if (auto in = nat.inbound(pub_src, t.destination))
                p.handle_receive(net::Datagram{pub_src, *in, t.payload}, now);
            return;
        }
        for (auto& s : servers) {
            if (!s.owns(t.destination))
                continue;
            auto r = s.answer(pub_src, t.destination, t.payload);
            if (!r)
                return;
            if (auto in = nat.inbound(r->first, pub_src)) {
                ++delivered;
                p.handle_receive(net::Datagram{r->first, *in, r->second}, now);
            }
            return;
        }
    }

    ProbeReport run(ProbeConfig cfg) {
        cfg.primary = sa("10.0.0.2:5000");
        cfg.filtering = sa("10.0.0.2:5001");
        cfg.hairpin = sa("10.0.0.2:5002");
        if (cfg.local_addresses.empty())
            cfg.local_addresses = {IpAddr::v4(10, 0, 0, 2)};
        if (nat_is_none)
            cfg.local_addresses.push_back(IpAddr::v4(10, 0, 0, 2));
        cfg.deadline = now + std::chrono::seconds(60);
        Prober p(cfg);
        p.start(now);
        for (int guard = 0; guard < 10000 && !p.done(); ++guard) {
            bool any = false;
            while (auto t = p.poll_transmit()) {
                any = true;
                now += base::ms(1);
                carry(p, *t);
            }
            if (!any && !p.done()) {
                auto next = p.poll_timeout();
                EXPECT_NE(next, base::kNever);
                if (next > now)
                    now = next;
                p.handle_timeout(now);
            }
        }
        EXPECT_TRUE(p.done());
        return p.report();
    }
    bool nat_is_none = false;
    bool icmp_on_hairpin = false;
};

StunServerModel rfc5780_server() {
    return {IpAddr::v4(198, 51, 100, 1), IpAddr::v4(198, 51, 100, 2), 3478, 3479};
}
StunServerModel plain_server(std::uint8_t last, std::uint16_t port = 3478) {
    return {IpAddr::v4(192, 0, 2, last), IpAddr(), port, 0, false};
}

ProbeConfig config_for(const std::vector<StunServerModel>& servers) {
    ProbeConfig c;
    for (const auto& s : servers)
        c.servers.push_back({SocketAddr(s.ip1, s.port1).to_string(), SocketAddr(s.ip1, s.port1)});
    return c;
}

struct Case {
    MapMode map;
    FilterMode filter;
    Mapping want_mapping;
    Filtering want_filtering;
    VerdictCode want_verdict;
};

} // namespace

class ProbeNatMatrix : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& param) {
    const char* map[] = {"NoNat", "EIM", "ADM", "APDM"};
    const char* filter[] = {"EIF", "ADF", "APDF"};
    return std::string(map[static_cast<int>(param.param.map)]) + "_" +
           filter[static_cast<int>(param.param.filter)];
}

TEST_P(ProbeNatMatrix, Rfc5780ServerClassifiesNat) {
    auto c = GetParam();
    World w{Nat(c.map, c.filter, true), {rfc5780_server()}};
    auto rep = w.run(config_for(w.servers));
    ASSERT_EQ(rep.servers.size(), 1u);
    EXPECT_EQ(rep.servers[0].status, ServerStatus::Ok) << rep.servers[0].error;
    EXPECT_EQ(rep.servers[0].answered, 3);
    EXPECT_EQ(rep.servers[0].rtts.size(), 3u);
    EXPECT_TRUE(rep.servers[0].other_address.has_value());
    EXPECT_EQ(rep.nat.mapping, c.want_mapping) << mapping_name(rep.nat.mapping);
    EXPECT_EQ(rep.nat.mapping_method, "rfc5780");
    EXPECT_EQ(rep.nat.filtering, c.want_filtering) << filtering_name(rep.nat.filtering);
    EXPECT_EQ(rep.nat.behind_nat, true);
    ASSERT_TRUE(rep.nat.public_address);
    EXPECT_EQ(rep.nat.public_address->ip(), Nat::kPublic);
    EXPECT_EQ(rep.verdict.code, c.want_verdict) << rep.verdict.summary;
    EXPECT_FALSE(rep.deadline_hit);
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, ProbeNatMatrix,
    ::testing::Values(Case{MapMode::EIM, FilterMode::EIF, Mapping::EndpointIndependent,
                           Filtering::EndpointIndependent, VerdictCode::Direct},
                      Case{MapMode::EIM, FilterMode::ADF, Mapping::EndpointIndependent,
                           Filtering::AddressDependent, VerdictCode::Direct},
                      Case{MapMode::EIM, FilterMode::APDF, Mapping::EndpointIndependent,
                           Filtering::AddressAndPortDependent, VerdictCode::Direct},
                      Case{MapMode::ADM, FilterMode::APDF, Mapping::AddressDependent,
                           Filtering::AddressAndPortDependent, VerdictCode::NeedsTurnForSymmetric},
                      Case{MapMode::APDM, FilterMode::APDF, Mapping::AddressAndPortDependent,
                           Filtering::AddressAndPortDependent, VerdictCode::NeedsTurnForSymmetric},
                      Case{MapMode::APDM, FilterMode::EIF, Mapping::AddressAndPortDependent,
                           Filtering::EndpointIndependent, VerdictCode::NeedsTurnForSymmetric}),
    case_name);

TEST(Probe, HairpinningDetectedOrNot) {
    for (bool hp : {true, false}) {
        World w{Nat(MapMode::EIM, FilterMode::EIF, hp), {rfc5780_server()}};
        auto rep = w.run(config_for(w.servers));
        ASSERT_TRUE(rep.nat.hairpinning.has_value());
        EXPECT_EQ(*rep.nat.hairpinning, hp);
    }
}

// Regression: an ICMP error for the hairpin probe used to cancel the RFC 5780 mapping tests.
TEST(Probe, IcmpForHairpinSettlesOnlyHairpin) {
    World w{Nat(MapMode::APDM, FilterMode::APDF, false), {rfc5780_server()}};
    w.icmp_on_hairpin = true;
    auto start = w.now;
    auto rep = w.run(config_for(w.servers));
    EXPECT_EQ(rep.nat.hairpinning, false);
    EXPECT_EQ(rep.nat.mapping, Mapping::AddressAndPortDependent);
    EXPECT_EQ(rep.nat.mapping_method, "rfc5780");
    EXPECT_TRUE(rep.nat.notes.empty());
    // The filtering tests' silence (250+500+1000 ms + 1 s) is the longest wait.
    EXPECT_LT(w.now - start, std::chrono::seconds(4));
}

TEST(Probe, NoNatWhenMappedAddressIsOurs) {
    World w{Nat(MapMode::None, FilterMode::EIF, true), {rfc5780_server()}};
    w.nat_is_none = true;
    auto rep = w.run(config_for(w.servers));
    EXPECT_EQ(rep.nat.mapping, Mapping::NoNat);
    EXPECT_EQ(rep.nat.behind_nat, false);
    EXPECT_EQ(rep.verdict.code, VerdictCode::NoNat);
    EXPECT_EQ(rep.nat.filtering, Filtering::EndpointIndependent);
}

TEST(Probe, MappingFromSeveralPlainServers) {
    {
        World w{Nat(MapMode::EIM, FilterMode::APDF, false), {plain_server(10), plain_server(20)}};
        auto rep = w.run(config_for(w.servers));
        EXPECT_EQ(rep.nat.mapping, Mapping::EndpointIndependent);
        EXPECT_EQ(rep.nat.mapping_method, "servers");
        EXPECT_EQ(rep.nat.filtering, Filtering::Unknown);
        EXPECT_FALSE(rep.nat.notes.empty());
    }
    {
        World w{Nat(MapMode::APDM, FilterMode::APDF, false), {plain_server(10), plain_server(20)}};
        auto rep = w.run(config_for(w.servers));
        EXPECT_EQ(rep.nat.mapping, Mapping::DependentUnspecified);
        EXPECT_EQ(rep.verdict.code, VerdictCode::NeedsTurnForSymmetric);
    }
    {
        // Same IP, two ports: APDM is told apart from ADM.
        World w{Nat(MapMode::APDM, FilterMode::APDF, false),
                {plain_server(10, 3478), plain_server(10, 3479), plain_server(20)}};
        auto rep = w.run(config_for(w.servers));
        EXPECT_EQ(rep.nat.mapping, Mapping::AddressAndPortDependent);
    }
    {
        World w{Nat(MapMode::ADM, FilterMode::APDF, false),
                {plain_server(10, 3478), plain_server(10, 3479), plain_server(20)}};
        auto rep = w.run(config_for(w.servers));
        EXPECT_EQ(rep.nat.mapping, Mapping::AddressDependent);
    }
    {
        World w{Nat(MapMode::EIM, FilterMode::APDF, false), {plain_server(10)}};
        auto rep = w.run(config_for(w.servers));
        EXPECT_EQ(rep.nat.mapping, Mapping::Unknown);
        EXPECT_EQ(rep.verdict.code, VerdictCode::Unknown);
    }
}

TEST(Probe, UnreachableServerFailsFastAndOthersStillAnswer) {
    World w{Nat(MapMode::EIM, FilterMode::APDF, false), {plain_server(10), plain_server(20)}};
    w.unreachable.push_back(SocketAddr(IpAddr::v4(192, 0, 2, 20), 3478));
    auto start = w.now;
    auto rep = w.run(config_for(w.servers));
    EXPECT_EQ(rep.servers[0].status, ServerStatus::Ok);
    EXPECT_EQ(rep.servers[1].status, ServerStatus::Unreachable);
    EXPECT_EQ(rep.servers[1].error, "port unreachable");
    // Nothing waited for the 39.5 s retransmission schedule.
    EXPECT_LT(w.now - start, std::chrono::seconds(5));
}

TEST(Probe, GarbageAndWrongTransactionIdsAreIgnoredAndCounted) {
    for (int mode = 0; mode < 2; ++mode) {
        auto s = plain_server(10);
        s.garbage = mode == 0;
        s.wrong_tid = mode == 1;
        World w{Nat(MapMode::None, FilterMode::EIF, false), {s}};
        w.nat_is_none = true;
        ProbeConfig cfg = config_for(w.servers);
        cfg.rtx = RetransmitConfig{base::ms(100), 3, 4};
        auto rep = w.run(cfg);
        EXPECT_EQ(rep.servers[0].status, ServerStatus::Timeout);
        EXPECT_EQ(rep.servers[0].ignored, 3); // one per transmission
        EXPECT_NE(rep.servers[0].error.find("ignored"), std::string::npos);
        EXPECT_EQ(rep.verdict.code, VerdictCode::UdpBlocked);
        EXPECT_GE(rep.ignored_datagrams, 3u);
    }
}

TEST(Probe, DeadlineEndsTheRun) {
    World w{Nat(MapMode::None, FilterMode::EIF, false), {plain_server(10)}};
    w.servers.clear(); // nobody answers
    ProbeConfig cfg;
    cfg.servers.push_back({"192.0.2.99:3478", sa("192.0.2.99:3478")});
    cfg.primary = sa("10.0.0.2:5000");
    cfg.filtering = sa("10.0.0.2:5001");
    cfg.hairpin = sa("10.0.0.2:5002");
    cfg.deadline = w.now + std::chrono::seconds(2);
    Prober p(cfg);
    p.start(w.now);
    int transmissions = 0;
    while (!p.done()) {
        while (p.poll_transmit())
            ++transmissions;
        w.now = p.poll_timeout();
        p.handle_timeout(w.now);
    }
    EXPECT_TRUE(p.report().deadline_hit);
    EXPECT_EQ(p.report().servers[0].status, ServerStatus::Timeout);
    // 0, 0.5 and 1.5 s: three transmissions before the 2 s deadline.
    EXPECT_EQ(transmissions, 3);
    EXPECT_EQ(w.now, cfg.deadline);
}

// Regression: a server answering Binding with an error response was reported like a silent
// one ("no STUN server answered: UDP looks blocked", and exit 3 in the CLI).
TEST(Probe, ErrorResponseMeansTheServerAnswered) {
    auto s = plain_server(10);
    s.error = std::pair{420, std::string("Unknown \x1b[2J Attribute")};
    World w{Nat(MapMode::EIM, FilterMode::APDF, false), {s}};
    auto start = w.now;
    auto rep = w.run(config_for(w.servers));
    ASSERT_EQ(rep.servers.size(), 1u);
    const auto& r = rep.servers[0];
    EXPECT_EQ(r.status, ServerStatus::Error);
    EXPECT_EQ(r.error_code, 420);
    EXPECT_EQ(r.error_reason, "Unknown \x1b[2J Attribute"); // as sent: printing escapes it
    EXPECT_EQ(r.error, "answered with an error response: 420 Unknown \x1b[2J Attribute");
    EXPECT_EQ(r.answered, 0);
    EXPECT_EQ(r.sent, 1); // an error ends the server's test: no more requests
    EXPECT_NE(rep.verdict.code, VerdictCode::UdpBlocked) << rep.verdict.summary;
    EXPECT_EQ(rep.verdict.code, VerdictCode::Unknown);
    EXPECT_NE(rep.verdict.summary.find("answered sent errors"), std::string::npos);
    EXPECT_LT(w.now - start, std::chrono::seconds(1));
}

// Regression: with no server to probe (none resolved under -4/-6) the run waited for the
// deadline; it ends at start now.
TEST(Probe, NothingToProbeEndsAtOnce) {
    ProbeConfig cfg;
    cfg.primary = sa("10.0.0.2:5000");
    cfg.filtering = sa("10.0.0.2:5001");
    cfg.hairpin = sa("10.0.0.2:5002");
    cfg.deadline = base::Instant{} + std::chrono::seconds(10);
    Prober p(cfg);
    p.start(base::Instant{});
    EXPECT_TRUE(p.done());
    EXPECT_FALSE(p.poll_transmit());
    EXPECT_FALSE(p.report().deadline_hit);
    EXPECT_EQ(p.report().verdict.summary, "no STUN server was probed");
}

TEST(NatBehaviour, VerdictWording) {
    auto v = make_verdict(Reach::Silent, Mapping::Unknown, Filtering::Unknown, std::nullopt);
    EXPECT_EQ(v.code, VerdictCode::UdpBlocked);
    v = make_verdict(Reach::RefusedOnly, Mapping::Unknown, Filtering::Unknown, std::nullopt);
    EXPECT_EQ(v.code, VerdictCode::Unknown);
    EXPECT_NE(v.detail.find("UDP gets through"), std::string::npos);
    v = make_verdict(Reach::Mapped, Mapping::AddressAndPortDependent, Filtering::Unknown, true);
    EXPECT_NE(v.summary.find("needs TURN"), std::string::npos);
    EXPECT_NE(v.detail.find("TURN relay works"), std::string::npos);
    v = make_verdict(Reach::Mapped, Mapping::EndpointIndependent, Filtering::EndpointIndependent,
                     false);
    EXPECT_NE(v.summary.find("direct connections likely"), std::string::npos);
    EXPECT_NE(v.detail.find("check failed"), std::string::npos);
}
