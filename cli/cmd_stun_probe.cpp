// rtcat stun-probe: can my peers reach each other, and do I need TURN?

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/app.hpp"
#include "cli/exit_codes.hpp"
#include "cli/manual.hpp"
#include "core/base/log.hpp"
#include "core/base/printable.hpp"
#include "core/io/clock.hpp"
#include "core/io/interfaces.hpp"
#include "core/io/poller.hpp"
#include "core/io/resolver.hpp"
#include "core/io/signals.hpp"
#include "core/io/udp_socket.hpp"
#include "core/stun/probe.hpp"
#include "core/stun/uri.hpp"

namespace rtcat::cli {

namespace {

constexpr const char* kLog = "stun-probe";

// Well-known public servers, used only when the user names none. Tests never rely on them.
const std::vector<std::string> kDefaultServers = {
    "stun:stun.l.google.com:19302",
    "stun:stun1.l.google.com:19302",
    "stun:stun.cloudflare.com:3478",
};

struct StunProbeOptions {
    std::vector<std::string> servers;
    std::string turn;
    std::string user;
    std::string pass;
    bool ipv4 = false;
    bool ipv6 = false;
    std::string bind;
    int count = 3;
    double timeout_s = 10.0;
    int rto_ms = 500;
    int retries = 7;
    bool no_behaviour = false;
    bool json = false;
};

struct UsageError {
    std::string message;
};

double ms_of(base::Duration d) {
    return base::to_ms(d);
}

std::string fmt_ms(std::optional<base::Duration> d) {
    return d ? fmt::format("{:.2f}", ms_of(*d)) : std::string("-");
}

nlohmann::ordered_json addr_json(const std::optional<net::SocketAddr>& a) {
    if (!a)
        return nullptr;
    return a->to_string();
}

nlohmann::ordered_json str_or_null(const std::string& s) {
    if (s.empty())
        return nullptr;
    return s;
}

nlohmann::ordered_json opt_bool(std::optional<bool> b) {
    if (!b)
        return nullptr;
    return *b;
}

struct Resolved {
    std::vector<stun::ProbeTarget> servers;
    std::vector<nlohmann::ordered_json> failed; // servers that could not be probed
    std::vector<std::string> failed_text;
    std::optional<stun::TurnTarget> turn;
    std::string turn_label;
    net::Family family = net::Family::V4;
};

base::Result<net::SocketAddr> resolve_one(const stun::ServerUri& uri, io::FamilyFilter filter) {
    auto addrs = io::resolve(uri.host, uri.port, filter);
    if (!addrs)
        return addrs.error();
    if (addrs->empty())
        return base::make_error("{} has no address of the requested family", uri.host);
    return addrs->front();
}

int run_stun_probe(const StunProbeOptions& o) {
    if (o.ipv4 && o.ipv6) {
        std::fprintf(stderr, "rtcat: -4 and -6 exclude each other\n");
        return kExitUsage;
    }
    // Parse everything before touching the network: usage errors come first and fast.
    std::vector<stun::ServerUri> stun_uris;
    std::optional<stun::ServerUri> turn_uri;
    auto reject = [](const stun::ServerUri& u,
                     const std::string& text) -> std::optional<std::string> {
        if (u.is_tls())
            return fmt::format("'{}': TLS transports (stuns:, turns:) are not supported yet; use "
                               "stun: or turn: (UDP)",
                               text);
        if (u.is_turn() && u.transport == stun::UriTransport::Tcp)
            return fmt::format("'{}': TURN over TCP is not supported yet; use ?transport=udp",
                               text);
        return std::nullopt;
    };
    bool defaults = o.servers.empty() && o.turn.empty();
    const auto& server_texts = defaults ? kDefaultServers : o.servers;
    for (const auto& text : server_texts) {
        auto u = stun::parse_server_uri(text);
        if (!u) {
            std::fprintf(stderr, "rtcat: bad server '%s': %s\n", text.c_str(),
                         u.error().message.c_str());
            return kExitUsage;
        }
        if (auto why = reject(*u, text)) {
            std::fprintf(stderr, "rtcat: %s\n", why->c_str());
            return kExitUsage;
        }
        if (u->is_turn()) {
            if (turn_uri) {
                std::fprintf(stderr, "rtcat: only one TURN server per run ('%s')\n", text.c_str());
                return kExitUsage;
            }
            turn_uri = *u;
        } else {
            stun_uris.push_back(*u);
        }
    }
    if (!o.turn.empty()) {
        if (turn_uri) {
            std::fprintf(stderr, "rtcat: only one TURN server per run (--turn and a turn: "
                                 "argument)\n");
            return kExitUsage;
        }
        auto u = stun::parse_server_uri(o.turn, stun::Scheme::Turn);
        if (!u) {
            std::fprintf(stderr, "rtcat: bad --turn '%s': %s\n", o.turn.c_str(),
                         u.error().message.c_str());
            return kExitUsage;
        }
        if (!u->is_turn()) {
            std::fprintf(stderr, "rtcat: --turn wants a turn: URI, got '%s'\n", o.turn.c_str());
            return kExitUsage;
        }
        if (auto why = reject(*u, o.turn)) {
            std::fprintf(stderr, "rtcat: %s\n", why->c_str());
            return kExitUsage;
        }
        turn_uri = *u;
    }
    // A TURN server answers Binding too: with nothing else to probe, probe it.
    if (stun_uris.empty() && turn_uri) {
        auto as_stun = *turn_uri;
        as_stun.scheme = stun::Scheme::Stun;
        as_stun.username.reset();
        as_stun.password.reset();
        as_stun.transport_given = false;
        stun_uris.push_back(as_stun);
    }
    std::optional<net::SocketAddr> bind_addr;
    if (!o.bind.empty()) {
        if (auto sa = net::SocketAddr::parse(o.bind))
            bind_addr = *sa;
        else if (auto ip = net::IpAddr::parse(o.bind))
            bind_addr = net::SocketAddr(*ip, 0);
        else {
            std::fprintf(stderr,
                         "rtcat: bad --bind '%s': expected an IP address, IP:PORT or [IPv6]:PORT\n",
                         o.bind.c_str());
            return kExitUsage;
        }
        if ((o.ipv4 && bind_addr->ip().is_v6()) || (o.ipv6 && bind_addr->ip().is_v4())) {
            std::fprintf(stderr, "rtcat: --bind %s contradicts %s\n", o.bind.c_str(),
                         o.ipv4 ? "-4" : "-6");
            return kExitUsage;
        }
    }
    // An IP literal has one family. Against -4/-6 (or a --bind address) of the other it can
    // never be probed: without this check the run would only wait out --timeout.
    std::optional<net::Family> wanted;
    std::string wanted_by;
    if (o.ipv4 || o.ipv6) {
        wanted = o.ipv4 ? net::Family::V4 : net::Family::V6;
        wanted_by = o.ipv4 ? "-4" : "-6";
    } else if (bind_addr) {
        wanted = bind_addr->family();
        wanted_by = "--bind " + o.bind;
    }
    if (wanted) {
        std::vector<const stun::ServerUri*> literals;
        if (turn_uri)
            literals.push_back(&*turn_uri);
        for (const auto& u : stun_uris)
            literals.push_back(&u);
        for (const auto* u : literals) {
            auto ip = u->host_is_ip ? net::IpAddr::parse(u->host) : std::nullopt;
            if (ip && ip->family() != *wanted) {
                std::fprintf(stderr, "rtcat: %s contradicts %s, an %s address\n", wanted_by.c_str(),
                             u->to_string().c_str(), ip->is_v4() ? "IPv4" : "IPv6");
                return kExitUsage;
            }
        }
    }

    auto signals_r = io::SignalPipe::install();
    if (!signals_r) {
        std::fprintf(stderr, "rtcat: %s\n", signals_r.error().message.c_str());
        return kExitFailure;
    }
    auto& signals = **signals_r;
    auto started = io::now();
    auto deadline = started + std::chrono::duration_cast<base::Duration>(
                                  std::chrono::duration<double>(o.timeout_s));

    // Family: -4/-6, else the --bind address's, else the first server's.
    io::FamilyFilter filter = o.ipv4   ? io::FamilyFilter::V4Only
                              : o.ipv6 ? io::FamilyFilter::V6Only
                                       : io::FamilyFilter::Any;
    if (filter == io::FamilyFilter::Any && bind_addr)
        filter = bind_addr->ip().is_v4() ? io::FamilyFilter::V4Only : io::FamilyFilter::V6Only;

    Resolved res;
    std::optional<net::Family> family;
    if (filter == io::FamilyFilter::V4Only)
        family = net::Family::V4;
    if (filter == io::FamilyFilter::V6Only)
        family = net::Family::V6;
    auto resolve_uri = [&](const stun::ServerUri& u) -> base::Result<net::SocketAddr> {
        io::FamilyFilter f = filter;
        if (family)
            f = *family == net::Family::V4 ? io::FamilyFilter::V4Only : io::FamilyFilter::V6Only;
        auto a = resolve_one(u, f);
        if (a && !family)
            family = a->family();
        return a;
    };
    std::vector<std::pair<std::string, std::string>> unresolved;
    if (turn_uri) {
        auto a = resolve_uri(*turn_uri);
        if (!a) {
            std::fprintf(stderr, "rtcat: TURN server %s: %s\n", turn_uri->to_string().c_str(),
                         a.error().message.c_str());
            return kExitUnreachable;
        }
        stun::TurnTarget t;
        t.label = turn_uri->to_string();
        t.server = *a;
        t.username = turn_uri->username.value_or(o.user);
        t.password = turn_uri->password.value_or(o.pass);
        res.turn = t;
    }
    for (const auto& u : stun_uris) {
        auto a = resolve_uri(u);
        if (!a) {
            unresolved.emplace_back(u.to_string(), a.error().message);
            RTCAT_WARN(kLog, "{}: {}", u.to_string(), a.error().message);
            continue;
        }
        res.servers.push_back(stun::ProbeTarget{u.to_string(), *a});
    }
    res.family = family.value_or(net::Family::V4);

    // Sockets: primary, filtering, hairpin, and two for the TURN check.
    net::SocketAddr wildcard(res.family == net::Family::V4
                                 ? net::IpAddr()
                                 : net::IpAddr::v6(std::array<std::uint8_t, 16>{}),
                             0);
    net::SocketAddr primary_bind = bind_addr.value_or(wildcard);
    net::SocketAddr other_bind(primary_bind.ip(), 0);
    std::vector<io::UdpSocket> sockets;
    auto open = [&](const net::SocketAddr& at) -> bool {
        io::UdpOptions uo;
        uo.rcvbuf = 256 * 1024; // a probe moves a few hundred bytes
        uo.sndbuf = 256 * 1024;
        auto s = io::UdpSocket::bind(at, uo);
        if (!s) {
            std::fprintf(stderr, "rtcat: cannot bind UDP socket to %s: %s\n",
                         at.to_string().c_str(), s.error().message.c_str());
            return false;
        }
        sockets.push_back(std::move(*s));
        return true;
    };
    if (!open(primary_bind) || !open(other_bind) || !open(other_bind))
        return kExitUsage;
    if (res.turn && (!open(other_bind) || !open(other_bind)))
        return kExitUsage;

    stun::ProbeConfig cfg;
    cfg.servers = res.servers;
    cfg.primary = sockets[0].local_address();
    cfg.filtering = sockets[1].local_address();
    cfg.hairpin = sockets[2].local_address();
    if (res.turn) {
        cfg.turn = res.turn;
        cfg.turn_a = sockets[3].local_address();
        cfg.turn_b = sockets[4].local_address();
    }
    cfg.count = o.count;
    cfg.rtx.rto = base::ms(o.rto_ms);
    cfg.rtx.rc = o.retries;
    cfg.behaviour_tests = !o.no_behaviour;
    cfg.software = "rtcat " RTCAT_VERSION;
    cfg.deadline = deadline;
    for (const auto& itf : io::list_interfaces())
        cfg.local_addresses.push_back(itf.address);

    RTCAT_INFO(kLog, "probing {} server(s) from {}{}", cfg.servers.size(), cfg.primary.to_string(),
               res.turn ? " with a TURN check" : "");
    stun::Prober prober(cfg);
    prober.start(io::now());

    io::Poller poller;
    for (const auto& s : sockets)
        poller.set(s.fd(), io::Interest::Read);
    poller.set(signals.fd(), io::Interest::Read);
    bool interrupted = false;
    std::vector<net::Datagram> batch;
    auto flush = [&] {
        while (auto t = prober.poll_transmit()) {
            for (auto& s : sockets) {
                if (s.local_address() != t->source)
                    continue;
                auto r = s.send_to(t->payload, t->destination);
                if (!r)
                    RTCAT_WARN(kLog, "send to {} failed: {}", t->destination.to_string(),
                               r.error().message);
                break;
            }
        }
    };
    flush();
    while (!prober.done()) {
        auto wait = prober.poll_timeout();
        auto w = poller.wait(wait);
        if (!w) {
            std::fprintf(stderr, "rtcat: poll failed: %s\n", w.error().message.c_str());
            return kExitFailure;
        }
        if (poller.readable(signals.fd()) && signals.take()) {
            interrupted = true;
            break;
        }
        auto now = io::now();
        for (auto& s : sockets) {
            if (poller.has_error(s.fd())) {
                while (auto e = s.read_error()) {
                    RTCAT_DEBUG(kLog, "ICMP: {}", e->message);
                    prober.handle_unreachable(s.local_address(), e->destination, e->message, now);
                }
            }
            if (!poller.readable(s.fd()))
                continue;
            for (;;) {
                batch.clear();
                auto n = s.recv_batch(batch, io::UdpSocket::kMaxBatch);
                if (!n || *n == 0)
                    break;
                for (auto& d : batch) {
                    // Route by socket, not by the packet's own destination address.
                    d.destination = s.local_address();
                    prober.handle_receive(d, now);
                }
            }
        }
        prober.handle_timeout(io::now());
        flush();
    }
    const auto& rep = prober.report();
    auto elapsed = io::now() - started;

    // Exit status (rtcat-stun-probe(1) EXIT STATUS). A server that sent an error response is
    // reachable: only silence (or ICMP) everywhere means "nothing answered".
    int answered = 0, refused = 0, total = static_cast<int>(rep.servers.size() + unresolved.size());
    for (const auto& s : rep.servers) {
        answered += s.status == stun::ServerStatus::Ok;
        refused += s.status == stun::ServerStatus::Error;
    }
    bool turn_requested = rep.turn.status != stun::TurnStatus::NotRun;
    bool turn_ok = rep.turn.status == stun::TurnStatus::Ok;
    int code = kExitOk;
    if (interrupted)
        code = kExitInterrupted;
    else if (rep.turn.status == stun::TurnStatus::AuthFailed)
        code = kExitAuth;
    else if (answered == 0 && refused == 0 && !turn_ok)
        code = rep.deadline_hit ? kExitTimeout : kExitUnreachable;
    else if (answered < total || (turn_requested && !turn_ok))
        code = kExitPartial;

    if (o.json) {
        nlohmann::ordered_json j;
        j["version"] = 1;
        j["local_address"] = cfg.primary.to_string();
        j["family"] = res.family == net::Family::V4 ? "ipv4" : "ipv6";
        j["count"] = o.count;
        auto servers = nlohmann::ordered_json::array();
        for (const auto& s : rep.servers) {
            nlohmann::ordered_json e;
            e["server"] = s.target.label;
            e["address"] = s.target.address.to_string();
            e["status"] = stun::server_status_name(s.status);
            e["error"] = str_or_null(s.error);
            e["error_code"] =
                s.error_code ? nlohmann::ordered_json(*s.error_code) : nlohmann::ordered_json();
            e["error_reason"] =
                s.error_code ? nlohmann::ordered_json(s.error_reason) : nlohmann::ordered_json();
            e["mapped_address"] = addr_json(s.mapped);
            nlohmann::ordered_json rtt;
            auto put = [](std::optional<base::Duration> d) -> nlohmann::ordered_json {
                if (!d)
                    return nullptr;
                return std::round(ms_of(*d) * 1000.0) / 1000.0;
            };
            rtt["min"] = put(s.rtt_min());
            rtt["avg"] = put(s.rtt_avg());
            rtt["max"] = put(s.rtt_max());
            e["rtt_ms"] = rtt;
            e["requests"] = s.sent;
            e["responses"] = s.answered;
            e["lost"] = s.lost;
            e["retransmissions"] = s.retransmissions;
            e["ignored_datagrams"] = s.ignored;
            e["software"] = str_or_null(s.software);
            e["response_origin"] = addr_json(s.response_origin);
            e["other_address"] = addr_json(s.other_address);
            e["rfc5780"] = s.other_address.has_value();
            servers.push_back(e);
        }
        for (const auto& [label, err] : unresolved) {
            nlohmann::ordered_json e;
            e["server"] = label;
            e["address"] = nullptr;
            e["status"] = "unresolved";
            e["error"] = err;
            servers.push_back(e);
        }
        j["servers"] = servers;
        nlohmann::ordered_json nat;
        nat["public_address"] = addr_json(rep.nat.public_address);
        nat["behind_nat"] = opt_bool(rep.nat.behind_nat);
        nat["mapping"] = stun::mapping_name(rep.nat.mapping);
        nat["mapping_method"] = rep.nat.mapping_method.empty()
                                    ? nlohmann::ordered_json(nullptr)
                                    : nlohmann::ordered_json(rep.nat.mapping_method);
        nat["filtering"] = stun::filtering_name(rep.nat.filtering);
        nat["hairpinning"] = opt_bool(rep.nat.hairpinning);
        nat["rfc5780_server"] = rep.nat.rfc5780_server.empty()
                                    ? nlohmann::ordered_json(nullptr)
                                    : nlohmann::ordered_json(rep.nat.rfc5780_server);
        nat["notes"] = rep.nat.notes;
        j["nat"] = nat;
        if (turn_requested) {
            const auto& t = rep.turn;
            nlohmann::ordered_json tj;
            tj["server"] = t.label;
            tj["address"] = t.server.to_string();
            tj["status"] = stun::turn_status_name(t.status);
            tj["error"] = str_or_null(t.error);
            tj["realm"] = str_or_null(t.realm);
            tj["software"] = str_or_null(t.software);
            tj["relayed_address"] = addr_json(t.relayed);
            tj["mapped_address"] = addr_json(t.mapped);
            tj["lifetime_s"] =
                t.relayed
                    ? nlohmann::ordered_json(
                          std::chrono::duration_cast<std::chrono::seconds>(t.lifetime).count())
                    : nlohmann::ordered_json(nullptr);
            tj["relay_ok"] = opt_bool(t.relay_ok);
            tj["relay_rtt_ms"] =
                t.relay_rtt
                    ? nlohmann::ordered_json(std::round(ms_of(*t.relay_rtt) * 1000.0) / 1000.0)
                    : nlohmann::ordered_json(nullptr);
            tj["relay_bytes"] = t.relay_bytes;
            tj["released"] = t.released;
            j["turn"] = tj;
        } else {
            j["turn"] = nullptr;
        }
        nlohmann::ordered_json v;
        v["code"] = stun::verdict_code_name(rep.verdict.code);
        v["summary"] = rep.verdict.summary;
        v["detail"] = rep.verdict.detail;
        j["verdict"] = v;
        j["timed_out"] = rep.deadline_hit;
        j["interrupted"] = interrupted;
        j["elapsed_ms"] = std::round(ms_of(elapsed) * 10.0) / 10.0;
        j["exit_code"] = code;
        // Server strings are arbitrary bytes: dump() would throw on invalid UTF-8 (replace it
        // with U+FFFD instead), and ASCII-only output keeps C1 controls off a terminal too.
        std::puts(j.dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace).c_str());
        std::fflush(stdout);
        return code;
    }

    // Text output: every string a server chose (SOFTWARE, error reasons, realm, and the notes
    // and errors that quote them) goes through printable(): raw, an ESC or CR from a server
    // could clear the terminal or forge a line of this report. Labels are escaped too.
    const auto safe = [](std::string_view text) { return base::printable(text); };
    std::string out;
    out += fmt::format("stun-probe from {} ({} server{}, {} request{} each)\n\n",
                       cfg.primary.to_string(), total, total == 1 ? "" : "s", o.count,
                       o.count == 1 ? "" : "s");
    out += fmt::format("{:<34} {:<12} {:<24} {:<22} {:>4}  {}\n", "SERVER", "STATUS", "MAPPED",
                       "RTT min/avg/max ms", "RETX", "SOFTWARE");
    for (const auto& s : rep.servers) {
        std::string rtt = s.rtts.empty() ? "-"
                                         : fmt::format("{}/{}/{}", fmt_ms(s.rtt_min()),
                                                       fmt_ms(s.rtt_avg()), fmt_ms(s.rtt_max()));
        out +=
            fmt::format("{:<34} {:<12} {:<24} {:<22} {:>4}  {}\n", safe(s.target.label),
                        stun::server_status_name(s.status), s.mapped ? s.mapped->to_string() : "-",
                        rtt, s.retransmissions, s.software.empty() ? "-" : safe(s.software));
        if (s.target.label.find(s.target.address.to_string()) == std::string::npos)
            out += fmt::format("    address {}\n", s.target.address.to_string());
        if (!s.error.empty())
            out += fmt::format("    {}\n", safe(s.error));
        if (s.response_origin || s.other_address)
            out += fmt::format("    response-origin {}, other-address {}\n",
                               s.response_origin ? s.response_origin->to_string() : "-",
                               s.other_address ? s.other_address->to_string() : "-");
        if (s.lost > 0 && s.status == stun::ServerStatus::Ok)
            out += fmt::format("    {} of {} requests lost\n", s.lost, s.sent);
    }
    for (const auto& [label, err] : unresolved)
        out += fmt::format("{:<34} {:<12} {}\n", safe(label), "unresolved", safe(err));

    const auto& nat = rep.nat;
    out += "\nNAT\n";
    out += fmt::format("  public address   {}\n",
                       nat.public_address ? nat.public_address->to_string() : "-");
    out += fmt::format("  behind NAT       {}\n",
                       nat.behind_nat ? (*nat.behind_nat ? "yes" : "no") : "unknown");
    std::string method;
    if (nat.mapping_method == "rfc5780")
        method = fmt::format(" (RFC 5780 tests via {})", safe(nat.rfc5780_server));
    else if (nat.mapping_method == "servers")
        method = " (compared across servers)";
    out += fmt::format("  mapping          {}{}\n", stun::mapping_name(nat.mapping), method);
    out += fmt::format("  filtering        {}\n", stun::filtering_name(nat.filtering));
    out += fmt::format("  hairpinning      {}\n",
                       nat.hairpinning ? (*nat.hairpinning ? "yes" : "no") : "unknown");
    for (const auto& n : nat.notes)
        out += fmt::format("  note: {}\n", safe(n));

    if (turn_requested) {
        const auto& t = rep.turn;
        out += fmt::format("\nTURN {} ({})\n", safe(t.label), t.server.to_string());
        out += fmt::format("  status           {}{}\n", stun::turn_status_name(t.status),
                           t.realm.empty() ? "" : fmt::format(" (realm \"{}\")", safe(t.realm)));
        if (!t.error.empty())
            out += fmt::format("  error            {}\n", safe(t.error));
        if (t.relayed)
            out +=
                fmt::format("  relayed address  {}, lifetime {} s\n", t.relayed->to_string(),
                            std::chrono::duration_cast<std::chrono::seconds>(t.lifetime).count());
        if (t.mapped)
            out += fmt::format("  mapped address   {}\n", t.mapped->to_string());
        if (t.relay_ok)
            out += fmt::format("  relay test       {}\n",
                               *t.relay_ok ? fmt::format("ok: {} bytes relayed between two "
                                                         "allocations, round trip {} ms",
                                                         t.relay_bytes, fmt_ms(t.relay_rtt))
                                           : std::string("FAILED: data did not cross the relay"));
        if (t.relayed)
            out += fmt::format("  released         {}\n", t.released ? "yes" : "no");
    }
    out +=
        fmt::format("\nVerdict: {}\n  {}\n", safe(rep.verdict.summary), safe(rep.verdict.detail));
    if (rep.deadline_hit)
        out += fmt::format("\n(stopped by --timeout after {:.1f} s)\n", o.timeout_s);
    if (interrupted)
        out += "\n(interrupted)\n";
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
    if (code == kExitAuth)
        std::fprintf(stderr, "rtcat: TURN authentication failed for user '%s' in realm \"%s\"%s\n",
                     res.turn ? safe(res.turn->username).c_str() : "", safe(rep.turn.realm).c_str(),
                     res.turn && res.turn->username.empty()
                         ? " (no credentials given: use --user/--pass or turn:USER:PASS@HOST)"
                         : "");
    else if (code == kExitUnreachable && rep.servers.empty())
        std::fprintf(stderr, "rtcat: no server could be probed\n");
    else if (code == kExitUnreachable)
        std::fprintf(stderr, "rtcat: no server answered\n");
    else if (code == kExitPartial && answered == 0 && refused > 0)
        std::fprintf(stderr,
                     "rtcat: no server gave a mapped address: %d answered with an error response\n",
                     refused);
    else if (code == kExitTimeout)
        std::fprintf(stderr, "rtcat: no server answered within --timeout %.1f s\n", o.timeout_s);
    return code;
}

} // namespace

void add_stun_probe(CLI::App& app, AppContext& ctx) {
    auto& o = ctx.make<StunProbeOptions>();
    auto* sub = app.add_subcommand(
        "stun-probe", "Probe STUN/TURN servers: mapped address, RTT, NAT mapping and filtering "
                      "behaviour, hairpinning, and whether a TURN relay works");
    sub->add_option("servers", o.servers,
                    "Servers to probe: HOST, HOST:PORT, [IPv6]:PORT, stun:HOST[:PORT] or "
                    "turn:[USER:PASS@]HOST[:PORT][?transport=udp] (default: a few public STUN "
                    "servers)")
        ->type_name("SERVER");
    sub->add_option("--turn", o.turn,
                    "Also check this TURN server: allocate, relay data between two allocations, "
                    "release")
        ->type_name("URI");
    sub->add_option("--user", o.user, "TURN user name (unless given in the URI)")
        ->type_name("NAME");
    sub->add_option("--pass", o.pass, "TURN password (unless given in the URI)")
        ->type_name("PASSWORD");
    sub->add_flag("-4", o.ipv4, "Use IPv4 only");
    sub->add_flag("-6", o.ipv6, "Use IPv6 only");
    sub->add_option("--bind", o.bind, "Local address (and port) to probe from")
        ->type_name("ADDR[:PORT]");
    sub->add_option("--count", o.count, "Binding requests per server (for RTT statistics)")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    sub->add_option("--timeout", o.timeout_s, "Give up after this many seconds in all")
        ->check(CLI::Range(0.1, 3600.0))
        ->type_name("SECONDS")
        ->capture_default_str();
    sub->add_option("--rto", o.rto_ms,
                    "Initial STUN retransmission timeout; doubles on each retransmission "
                    "(RFC 8489 RTO)")
        ->check(CLI::Range(10, 10000))
        ->type_name("MS")
        ->capture_default_str();
    sub->add_option("--retries", o.retries,
                    "Transmissions per request before giving up (RFC 8489 Rc)")
        ->check(CLI::Range(1, 20))
        ->capture_default_str();
    sub->add_flag("--no-nat-tests", o.no_behaviour,
                  "Skip the NAT mapping, filtering and hairpinning tests");
    sub->add_flag("--json", o.json, "Print one JSON document instead of the text report");
    ctx.commands.emplace_back(sub, [&o] { return run_stun_probe(o); });

    register_manual(ManualPage{
        "stun-probe",
        "probe STUN/TURN servers and NAT behaviour",
        {
            {"DESCRIPTION",
             "Answers the question \"can my peers reach each other, and do I need TURN?\". "
             "Every server is probed at once from one local UDP socket: --count Binding "
             "requests each, with RFC 8489 retransmissions, giving the mapped (public) "
             "address, round-trip times, retransmissions and the server's SOFTWARE, "
             "RESPONSE-ORIGIN and OTHER-ADDRESS.\n\n"
             "NAT mapping behaviour (RFC 4787 terms) comes from the RFC 5780 tests when a "
             "server reports an OTHER-ADDRESS (Binding requests to its alternate IP and port "
             "from the same socket), otherwise from comparing the mapped addresses that "
             "several servers report. Filtering behaviour comes from CHANGE-REQUEST tests on a "
             "fresh socket, hairpinning from a second socket sending to the first one's public "
             "address. A one-line verdict sums it up.\n\n"
             "With --turn (or a turn: argument) rtcat allocates two relayed addresses with "
             "the long-term credential mechanism, relays a message from one to the other and "
             "back (ChannelData one way, Send/Data indications the other), reports the relayed "
             "address and lifetime, and releases both allocations.\n\n"
             "When no server is given, a short built-in list of public STUN servers is used."},
            {"OUTPUT",
             "A text report on standard output: a table of servers, the NAT behaviour, the "
             "TURN check and the verdict. Diagnostics go to standard error."},
            {"JSON OUTPUT",
             "With --json, one JSON object on one line. Field names are stable:\n\n"
             "version\n    Schema version (1).\n"
             "local_address, family\n    The probing socket and \"ipv4\" or \"ipv6\".\n"
             "servers[]\n    server, address, status (ok, timeout, unreachable, error, "
             "unresolved), error, error_code, error_reason, mapped_address, rtt_ms {min, avg, "
             "max}, requests, responses, lost, retransmissions, ignored_datagrams, software, "
             "response_origin, other_address, rfc5780. Status error means the server answered "
             "but gave no mapped address: error_code and error_reason are its ERROR-CODE when "
             "it sent an error response (else null).\n"
             "nat\n    public_address, behind_nat, mapping (endpoint-independent, "
             "address-dependent, address-and-port-dependent, address-dependent-or-stricter, "
             "no-nat, unknown), mapping_method (rfc5780, servers, local-address), filtering "
             "(endpoint-independent, address-dependent, address-and-port-dependent, unknown), "
             "hairpinning, rfc5780_server, notes[].\n"
             "turn\n    null without a TURN check; else server, address, status (ok, "
             "auth-failed, unreachable, failed), error, realm, software, relayed_address, "
             "mapped_address, lifetime_s, relay_ok, relay_rtt_ms, relay_bytes, released.\n"
             "verdict\n    code (direct, no-nat, needs-turn-for-symmetric-peers, udp-blocked, "
             "unknown), summary, detail.\n"
             "timed_out, interrupted, elapsed_ms, exit_code\n    How the run ended.\n\n"
             "Strings are as the servers sent them, JSON-escaped, with any byte that is not "
             "UTF-8 replaced by U+FFFD; the output is ASCII. In the text report, control "
             "characters and bytes that are not UTF-8 in server strings (SOFTWARE, reason "
             "phrases, realm) are shown escaped (\\e, \\r, \\xNN)."},
            {"EXIT STATUS",
             "0\n    Every server answered with a mapped address (and the TURN check "
             "passed).\n"
             "2\n    Usage error: bad option, server address or URI, or an IP address of the "
             "family that -4, -6 or --bind excludes.\n"
             "3\n    No server answered (unreachable, or every request timed out), or none "
             "could be probed. A server that sent an error response has answered.\n"
             "4\n    No server answered before --timeout.\n"
             "6\n    TURN authentication failed (wrong or missing credentials); the message "
             "names the realm.\n"
             "8\n    Partial: at least one server answered (an error response counts as an "
             "answer) but not every server gave a mapped address, or the TURN check failed.\n"
             "130\n    Interrupted."},
            {"EXAMPLES", "Probe two servers, three requests each:\n\n"
                         "  rtcat stun-probe stun.example.org 198.51.100.7:3478\n\n"
                         "Check a TURN server as a script would:\n\n"
                         "  rtcat stun-probe --json --turn "
                         "'turn:alice:secret@turn.example.org?transport=udp'\n\n"
                         "Only IPv6, from a given address:\n\n"
                         "  rtcat stun-probe -6 --bind 2001:db8::5 'stun:[2001:db8::1]:3478'"},
            {"SEE ALSO", "rtcat(1), RFC 8489 (STUN), RFC 5780 (NAT behaviour discovery), RFC 4787, "
                         "RFC 8656 (TURN), RFC 7064, RFC 7065"},
        },
    });
}

} // namespace rtcat::cli
