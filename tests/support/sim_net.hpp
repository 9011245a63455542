#pragma once
// A deterministic simulated network for tests that run sans-IO machines (ICE agents, DTLS,
// whole peers) on virtual time. This kernel has no `tc netem`, so impairment lives here:
// per-direction loss, duplication, reordering, delay + jitter, a serializing bottleneck with a
// finite tail-drop queue, targeted drops, and RFC 4787 NAT devices (mapping, filtering,
// hairpinning, mapping timeout).
//
// Model
// - Hosts are IP addresses. A host is either "public" or sits behind one NAT device. A NAT's
//   public IP is on the public internet (no nested NATs).
// - send(t, now) happens at the sender: the outbound NAT translation (mapping creation/refresh)
//   is applied at send time, then the link impairment decides drops and the arrival time.
//   Inbound NAT filtering and reverse translation happen at *arrival* time (the receiver's NAT
//   sits next to the receiver), so a packet that crosses the host's own first outbound packet
//   in flight is still let in when it arrives after it (what ICE simultaneous open relies on).
// - The link used for a datagram is keyed by (t.source.ip(), t.destination.ip()) exactly as the
//   sender wrote them (private source, destination as addressed, e.g. a NAT's public IP).
//   Links without set_link() use the default parameters but each (from, to) pair still has its
//   own bottleneck state and its own random stream.
// - Routing at the destination: an attached public host gets it as is; a host behind the same
//   NAT as the sender gets it directly (same LAN, no translation); a NAT's public IP goes
//   through that NAT's inbound filter (hairpinned when the sender is behind that NAT itself);
//   anything else (unknown address, a private host behind another NAT, family mismatch) is
//   dropped and counted as unroutable.
// - Randomness: everything derives from the seed. Each link and each NAT has its own
//   std::mt19937_64 stream (derived with splitmix64 from the seed and the link/NAT identity),
//   so traffic on one link does not perturb the impairment pattern of another. std::mt19937_64
//   is fully specified by the standard and we convert its output ourselves (no
//   std::*_distribution, whose algorithms are implementation-defined): same seed, same
//   sequence, on any standard library. Put describe() in SCOPED_TRACE to print the seed.
//
// Per datagram, in this order: LinkParams::drop_if (at the sender, before its NAT: no mapping
// is made) -> routing + outbound NAT (the mapping is made/refreshed even if the datagram is then
// lost on the wire) -> random loss -> bottleneck queue (tail drop) and serialization -> delay +
// jitter -> reorder extra delay -> duplication. Delivery order: by arrival time, ties in send
// order. A duplicate arrives right after its original (same instant, next sequence number).
// Link and default parameters may be changed mid-run; a link keeps its random stream and
// bottleneck backlog across changes.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/base/check.hpp"
#include "core/base/time.hpp"
#include "core/net/address.hpp"
#include "core/net/datagram.hpp"

namespace rtcat::sim {

// Impairment of one direction of one link. The default is a perfect link (no delay, no loss).
struct LinkParams {
    double loss = 0;                      // probability each datagram is dropped
    double duplicate = 0;                 // probability it is delivered twice
    double reorder = 0;                   // probability it gets `reorder_delay` extra delay
    base::Duration delay{0};              // one-way base latency (propagation)
    base::Duration jitter{0};             // uniform extra 0..jitter per datagram (reorders too)
    base::Duration reorder_delay{5000};   // extra delay of a "reordered" datagram
    double rate_bytes_per_sec = 0;        // 0 = unlimited; else a serializing bottleneck
    std::size_t queue_bytes = 256 * 1024; // bottleneck backlog limit; tail drop beyond
    // Targeted drops ("drop the first DTLS ClientHello"). Sees the datagram as sent (private
    // source, destination as addressed); evaluated before random loss; true = drop.
    std::function<bool(const net::Datagram&)> drop_if;
};

// RFC 4787 §4.1 mapping behaviour: which outbound flows share one public port.
enum class Mapping {
    EndpointIndependent,     // one public port per private addr:port
    AddressDependent,        // ... per (private addr:port, remote IP)
    AddressAndPortDependent, // ... per (private addr:port, remote IP:port)
};
// RFC 4787 §5 filtering behaviour: which inbound packets a mapping lets in.
enum class Filtering {
    EndpointIndependent,     // any source
    AddressDependent,        // sources whose IP this mapping has sent to
    AddressAndPortDependent, // sources whose IP:port this mapping has sent to
};

struct NatParams {
    net::IpAddr public_ip;
    Mapping mapping = Mapping::EndpointIndependent;
    Filtering filtering = Filtering::EndpointIndependent;
    // RFC 4787 §6 (REQ-9): a host behind the NAT may reach another one through its public
    // address; the hairpinned packet carries the sender's public mapping as source.
    bool hairpin = false;
    // RFC 4787 §4.3 (REQ-5: at least 2 minutes). Refreshed by outbound traffic only
    // (REQ-6 requires outbound refresh; inbound refresh is optional and not modelled).
    base::Duration mapping_timeout = std::chrono::seconds(120);
};

struct Stats {
    std::uint64_t sent = 0;               // send() calls
    std::uint64_t delivered = 0;          // returned by poll_delivery (duplicates included)
    std::uint64_t delivered_bytes = 0;    // payload bytes of those
    std::uint64_t dropped_loss = 0;       // random loss
    std::uint64_t dropped_targeted = 0;   // LinkParams::drop_if
    std::uint64_t dropped_queue = 0;      // bottleneck queue overflow (tail drop)
    std::uint64_t dropped_filter = 0;     // NAT inbound filter, expired mapping, no hairpin
    std::uint64_t dropped_unroutable = 0; // destination is no attached host nor NAT public IP
    std::uint64_t duplicated = 0;         // extra copies made
    std::uint64_t reordered = 0;          // datagrams given reorder_delay
};

class Network {
public:
    // Ephemeral public ports a NAT picks from (IANA dynamic range, RFC 6335 §6).
    static constexpr std::uint16_t kFirstPublicPort = 49152;
    static constexpr std::uint16_t kLastPublicPort = 65535;
    // run_until aborts when this many rounds pass without virtual time advancing: an endpoint
    // whose poll_timeout() stays <= now after handle_timeout(now) is a bug, not a workload.
    static constexpr int kMaxRoundsPerInstant = 100000;

    explicit Network(std::uint64_t seed) : seed_(seed) {}

    std::uint64_t seed() const { return seed_; }
    // "sim::Network seed=N": put it in SCOPED_TRACE so failures name the seed.
    std::string describe() const { return "sim::Network seed=" + std::to_string(seed_); }

    void add_nat(const std::string& name, NatParams p) {
        RTCAT_CHECK(!nats_.contains(name), "NAT name already used");
        RTCAT_CHECK(!nat_by_ip_.contains(p.public_ip) && !hosts_.contains(p.public_ip),
                    "NAT public IP already in use");
        Nat n;
        n.params = p;
        n.rng.seed(derive(seed_, name));
        nat_by_ip_[p.public_ip] = name;
        nats_.emplace(name, std::move(n));
    }

    // Hosts not attached to a NAT are public. Re-attaching a host is a test bug.
    void attach(net::IpAddr host, std::optional<std::string> behind_nat = {}) {
        RTCAT_CHECK(!hosts_.contains(host) && !nat_by_ip_.contains(host), "host already exists");
        RTCAT_CHECK(!behind_nat || nats_.contains(*behind_nat), "unknown NAT");
        hosts_[host] = std::move(behind_nat);
    }

    // Per-direction impairment from -> to (see the keying rule at the top).
    void set_link(net::IpAddr from, net::IpAddr to, LinkParams p) {
        link(from, to).params = std::move(p);
    }
    // Both directions at once.
    void set_link_both(net::IpAddr a, net::IpAddr b, const LinkParams& p) {
        set_link(a, b, p);
        set_link(b, a, p);
    }
    // Parameters of every pair without its own set_link().
    void set_default_link(LinkParams p) { default_link_ = std::move(p); }

    // Enqueues one datagram. The source IP must be an attached host (a test bug otherwise).
    void send(net::Transmit t, base::Instant now) {
        ++stats_.sent;
        auto host = hosts_.find(t.source.ip());
        RTCAT_CHECK(host != hosts_.end(), "send() from an address that is not an attached host");
        const std::optional<std::string>& src_nat = host->second;

        LinkState& l = link(t.source.ip(), t.destination.ip());
        const LinkParams& lp = l.params ? *l.params : default_link_;
        net::Datagram d{t.source, t.destination, std::move(t.payload)};
        if (lp.drop_if && lp.drop_if(d)) {
            ++stats_.dropped_targeted;
            return;
        }

        // Route and translate the source (outbound NAT) at the sender.
        bool via_nat = false;
        if (auto dh = hosts_.find(d.destination.ip()); dh != hosts_.end()) {
            // Public host, or a private host on the sender's own LAN.
            if (dh->second && dh->second != src_nat) {
                ++stats_.dropped_unroutable;
                return;
            }
            if (!dh->second && src_nat) {
                auto& nat = nats_.at(*src_nat);
                if (!(d.source = outbound(nat, t.source, d.destination, now)).port()) {
                    ++stats_.dropped_unroutable;
                    return;
                }
            }
        } else if (auto dn = nat_by_ip_.find(d.destination.ip()); dn != nat_by_ip_.end()) {
            via_nat = true;
            if (src_nat) {
                auto& nat = nats_.at(*src_nat);
                if (!(d.source = outbound(nat, t.source, d.destination, now)).port()) {
                    ++stats_.dropped_unroutable;
                    return;
                }
                if (*src_nat == dn->second && !nat.params.hairpin) {
                    ++stats_.dropped_filter;
                    return;
                }
            }
        } else {
            ++stats_.dropped_unroutable;
            return;
        }

        if (lp.loss > 0 && uniform(l.rng) < lp.loss) {
            ++stats_.dropped_loss;
            return;
        }
        // Bottleneck: the backlog is what is still unserialized at `now`; a datagram that
        // would push it past queue_bytes is tail-dropped (like a router's FIFO).
        const double now_us = static_cast<double>(now.time_since_epoch().count());
        double departure_us = now_us;
        if (lp.rate_bytes_per_sec > 0) {
            const double start = std::max(now_us, l.busy_until_us);
            const double backlog = (start - now_us) * lp.rate_bytes_per_sec / 1e6;
            const auto size = static_cast<double>(d.payload.size());
            if (backlog + size > static_cast<double>(lp.queue_bytes)) {
                ++stats_.dropped_queue;
                return;
            }
            l.busy_until_us = start + size * 1e6 / lp.rate_bytes_per_sec;
            departure_us = l.busy_until_us;
        }
        auto arrival = base::Instant{} +
                       base::Duration(static_cast<std::int64_t>(std::ceil(departure_us - 1e-6))) +
                       lp.delay;
        if (lp.jitter.count() > 0)
            arrival += base::Duration(static_cast<std::int64_t>(
                l.rng() % static_cast<std::uint64_t>(lp.jitter.count() + 1)));
        if (lp.reorder > 0 && uniform(l.rng) < lp.reorder) {
            ++stats_.reordered;
            arrival += lp.reorder_delay;
        }
        const bool dup = lp.duplicate > 0 && uniform(l.rng) < lp.duplicate;
        if (dup) {
            ++stats_.duplicated;
            push(Pending{arrival, next_seq_++, d, via_nat});
        }
        push(Pending{arrival, next_seq_++, std::move(d), via_nat});
    }

    // The next datagram whose arrival time is <= now, in arrival order (ties: send order), its
    // destination being the receiving host's private address (after reverse NAT translation).
    // Datagrams that the receiving NAT filters are dropped here, at their arrival time.
    std::optional<net::Datagram> poll_delivery(base::Instant now) {
        while (!queue_.empty() && queue_.front().arrival <= now) {
            std::pop_heap(queue_.begin(), queue_.end(), Later{});
            Pending p = std::move(queue_.back());
            queue_.pop_back();
            if (p.via_nat) {
                auto& nat = nats_.at(nat_by_ip_.at(p.d.destination.ip()));
                auto to = inbound(nat, p.d.source, p.d.destination, p.arrival);
                if (!to) {
                    ++stats_.dropped_filter;
                    continue;
                }
                p.d.destination = *to;
            }
            ++stats_.delivered;
            stats_.delivered_bytes += p.d.payload.size();
            return std::move(p.d);
        }
        return std::nullopt;
    }

    // Arrival time of the next queued datagram (it may still be filtered), kNever if none.
    base::Instant next_delivery() const {
        return queue_.empty() ? base::kNever : queue_.front().arrival;
    }
    std::size_t in_flight() const { return queue_.size(); }
    const Stats& stats() const { return stats_; }

    // The live public mapping of `internal` towards `remote`, if any (for assertions).
    std::optional<net::SocketAddr> mapping_of(const std::string& nat_name,
                                              const net::SocketAddr& internal,
                                              const net::SocketAddr& remote,
                                              base::Instant now) const {
        const Nat& nat = nats_.at(nat_name);
        auto it = nat.by_key.find(key_for(nat, internal, remote));
        if (it == nat.by_key.end())
            return std::nullopt;
        const auto& m = nat.by_port.at(it->second);
        if (now - m.last_outbound > nat.params.mapping_timeout)
            return std::nullopt;
        return net::SocketAddr(nat.params.public_ip, it->second);
    }

private:
    struct LinkState {
        std::optional<LinkParams> params; // nullopt: the default link
        std::mt19937_64 rng;
        double busy_until_us = 0; // end of the bottleneck's current backlog (fractional µs)
    };
    using MapKey = std::tuple<net::SocketAddr, net::IpAddr, std::uint16_t>;
    struct NatMapping {
        net::SocketAddr internal;
        MapKey key;
        base::Instant last_outbound{};
        std::set<net::SocketAddr> sent_to; // remote endpoints, for filtering
    };
    struct Nat {
        NatParams params;
        std::mt19937_64 rng;
        std::map<MapKey, std::uint16_t> by_key;
        std::map<std::uint16_t, NatMapping> by_port;
    };
    struct Pending {
        base::Instant arrival;
        std::uint64_t seq;
        net::Datagram d; // source already translated; destination as addressed
        bool via_nat;    // destination is a NAT public IP: filter + translate on arrival
    };
    struct Later {
        bool operator()(const Pending& a, const Pending& b) const {
            return std::tie(a.arrival, a.seq) > std::tie(b.arrival, b.seq);
        }
    };

    static std::uint64_t splitmix64(std::uint64_t x) {
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
    }
    // FNV-1a over the identity, mixed with the seed: a stable per-link / per-NAT stream.
    static std::uint64_t derive(std::uint64_t seed, const std::string& id) {
        std::uint64_t h = 0xcbf29ce484222325ULL;
        for (unsigned char c : id)
            h = (h ^ c) * 0x100000001b3ULL;
        return splitmix64(seed ^ splitmix64(h));
    }
    static std::string id_of(const net::IpAddr& a) {
        return std::string(reinterpret_cast<const char*>(a.data()), a.size());
    }
    // [0, 1) with 53 random bits.
    static double uniform(std::mt19937_64& rng) {
        return static_cast<double>(rng() >> 11) * 0x1.0p-53;
    }

    LinkState& link(const net::IpAddr& from, const net::IpAddr& to) {
        auto [it, fresh] = links_.try_emplace({from, to});
        if (fresh)
            it->second.rng.seed(derive(seed_, "link" + id_of(from) + ">" + id_of(to)));
        return it->second;
    }

    void push(Pending p) {
        queue_.push_back(std::move(p));
        std::push_heap(queue_.begin(), queue_.end(), Later{});
    }

    static MapKey key_for(const Nat& nat, const net::SocketAddr& internal,
                          const net::SocketAddr& remote) {
        switch (nat.params.mapping) {
        case Mapping::EndpointIndependent:
            return {internal, net::IpAddr(), 0};
        case Mapping::AddressDependent:
            return {internal, remote.ip(), 0};
        case Mapping::AddressAndPortDependent:
            break;
        }
        return {internal, remote.ip(), remote.port()};
    }

    bool expired(const Nat& nat, const NatMapping& m, base::Instant now) const {
        return now - m.last_outbound > nat.params.mapping_timeout;
    }

    // The public source for internal -> remote, creating or refreshing the mapping; port 0 when
    // the NAT cannot translate (family mismatch, port space exhausted).
    net::SocketAddr outbound(Nat& nat, const net::SocketAddr& internal,
                             const net::SocketAddr& remote, base::Instant now) {
        if (remote.family() != nat.params.public_ip.family())
            return {};
        MapKey key = key_for(nat, internal, remote);
        std::uint16_t port = 0;
        if (auto it = nat.by_key.find(key); it != nat.by_key.end()) {
            if (expired(nat, nat.by_port.at(it->second), now)) {
                nat.by_port.erase(it->second);
                nat.by_key.erase(it);
            } else {
                port = it->second;
            }
        }
        if (port == 0) {
            port = allocate_port(nat, now);
            if (port == 0)
                return {};
            nat.by_key[key] = port;
            nat.by_port[port] = NatMapping{internal, key, now, {}};
        }
        NatMapping& m = nat.by_port.at(port);
        m.last_outbound = now;
        m.sent_to.insert(remote);
        return {nat.params.public_ip, port};
    }

    // A random free port of the dynamic range (random like Linux's NAT without port
    // preservation, and deterministic from the seed). Expired mappings give their port back.
    std::uint16_t allocate_port(Nat& nat, base::Instant now) {
        constexpr std::uint32_t span = kLastPublicPort - kFirstPublicPort + 1;
        auto first = static_cast<std::uint32_t>(nat.rng() % span);
        for (std::uint32_t i = 0; i < span; ++i) {
            auto port = static_cast<std::uint16_t>(kFirstPublicPort + (first + i) % span);
            auto it = nat.by_port.find(port);
            if (it == nat.by_port.end())
                return port;
            if (expired(nat, it->second, now)) {
                nat.by_key.erase(it->second.key);
                nat.by_port.erase(it);
                return port;
            }
        }
        return 0;
    }

    // RFC 4787 §5: the private destination of an inbound datagram, or nullopt when no live
    // mapping owns the port or the filter refuses the source. Permissions are per mapping.
    std::optional<net::SocketAddr> inbound(Nat& nat, const net::SocketAddr& from,
                                           const net::SocketAddr& to, base::Instant now) {
        auto it = nat.by_port.find(to.port());
        if (it == nat.by_port.end() || expired(nat, it->second, now))
            return std::nullopt;
        const NatMapping& m = it->second;
        switch (nat.params.filtering) {
        case Filtering::EndpointIndependent:
            break;
        case Filtering::AddressDependent: {
            auto lb = m.sent_to.lower_bound(net::SocketAddr(from.ip(), 0));
            if (lb == m.sent_to.end() || lb->ip() != from.ip())
                return std::nullopt;
            break;
        }
        case Filtering::AddressAndPortDependent:
            if (!m.sent_to.contains(from))
                return std::nullopt;
            break;
        }
        return m.internal;
    }

    std::uint64_t seed_;
    LinkParams default_link_;
    std::map<net::IpAddr, std::optional<std::string>> hosts_;
    std::map<std::string, Nat> nats_;
    std::map<net::IpAddr, std::string> nat_by_ip_;
    std::map<std::pair<net::IpAddr, net::IpAddr>, LinkState> links_;
    std::vector<Pending> queue_; // min-heap by (arrival, seq)
    std::uint64_t next_seq_ = 0;
    Stats stats_;
};

// One participant of run_until: a sans-IO machine seen through std::functions. Every field
// but `addresses` may be empty (no receive: deliveries are dropped; no timer: kNever).
struct Endpoint {
    std::vector<net::IpAddr> addresses; // datagrams delivered to these go to this endpoint
    std::function<void(net::Datagram&&, base::Instant)> receive;
    std::function<void(base::Instant)> timeout;
    std::function<std::optional<net::Transmit>()> poll_transmit;
    std::function<base::Instant()> poll_timeout;
    // Called after every input (receive or timeout), e.g. to drain poll_event().
    std::function<void(base::Instant)> after_input;
};

// Adapts anything with the core contract (handle_receive(d, now), handle_timeout(now),
// poll_transmit(), poll_timeout()). `m` must outlive the Endpoint.
template <class Machine>
Endpoint make_endpoint(Machine& m, std::vector<net::IpAddr> addresses,
                       std::function<void(base::Instant)> after_input = {}) {
    Endpoint e;
    e.addresses = std::move(addresses);
    e.receive = [&m](net::Datagram&& d, base::Instant now) {
        (void)m.handle_receive(std::move(d), now);
    };
    e.timeout = [&m](base::Instant now) { m.handle_timeout(now); };
    e.poll_transmit = [&m] { return m.poll_transmit(); };
    e.poll_timeout = [&m] { return m.poll_timeout(); };
    e.after_input = std::move(after_input);
    return e;
}

// Runs the endpoints on virtual time from `start`: drains every endpoint's transmits into the
// network (an unspecified source IP becomes the endpoint's first address of the destination's
// family), delivers what has arrived, fires due timers, and repeats until nothing more happens
// at this instant; then checks `done` and jumps to the earliest of the next delivery and the
// endpoints' poll_timeout(). Never busy-loops: with nothing scheduled it jumps to `deadline`.
// Returns the virtual time at which `done` held, or `deadline` when it never did (check
// `done()` again to tell which).
inline base::Instant run_until(Network& net, const std::vector<Endpoint*>& endpoints,
                               base::Instant start, base::Instant deadline,
                               const std::function<bool()>& done) {
    std::map<net::IpAddr, Endpoint*> owner;
    for (Endpoint* e : endpoints) {
        for (const auto& a : e->addresses)
            RTCAT_CHECK(owner.emplace(a, e).second, "two endpoints claim one address");
    }
    auto drain = [&](Endpoint& e, base::Instant now) {
        if (!e.poll_transmit)
            return;
        while (auto t = e.poll_transmit()) {
            if (t->source.ip().is_unspecified()) {
                for (const auto& a : e.addresses) {
                    if (a.family() == t->destination.family()) {
                        t->source = net::SocketAddr(a, t->source.port());
                        break;
                    }
                }
            }
            net.send(std::move(*t), now);
        }
    };
    // An endpoint without a timeout handler has no timer, whatever poll_timeout says.
    auto timer_of = [](const Endpoint& e) {
        return e.timeout && e.poll_timeout ? e.poll_timeout() : base::kNever;
    };

    base::Instant now = start;
    int rounds = 0; // rounds at this instant
    for (;;) {
        for (bool progressed = true; progressed;) {
            progressed = false;
            RTCAT_CHECK(++rounds < Network::kMaxRoundsPerInstant,
                        "run_until: virtual time does not advance (timer stuck at now?)");
            for (Endpoint* e : endpoints)
                drain(*e, now);
            while (auto d = net.poll_delivery(now)) {
                auto it = owner.find(d->destination.ip());
                if (it == owner.end() || !it->second->receive)
                    continue;
                Endpoint& e = *it->second;
                e.receive(std::move(*d), now);
                if (e.after_input)
                    e.after_input(now);
                drain(e, now);
                progressed = true;
            }
            for (Endpoint* e : endpoints) {
                if (timer_of(*e) <= now) {
                    e->timeout(now);
                    if (e->after_input)
                        e->after_input(now);
                    drain(*e, now);
                    progressed = true;
                }
            }
        }
        if (done && done())
            return now;
        base::Instant next = net.next_delivery();
        for (Endpoint* e : endpoints)
            next = std::min(next, timer_of(*e));
        if (next > deadline)
            return std::max(now, deadline);
        if (next > now) {
            now = next;
            rounds = 0;
        }
    }
}

} // namespace rtcat::sim
