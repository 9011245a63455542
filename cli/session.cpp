#include "cli/session.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <unistd.h>

#include <fmt/format.h>

#include "cli/exit_codes.hpp"
#include "core/base/log.hpp"
#include "core/base/printable.hpp"
#include "core/io/clock.hpp"
#include "core/io/interfaces.hpp"
#include "core/io/poller.hpp"
#include "core/io/resolver.hpp"
#include "core/io/signals.hpp"
#include "core/io/udp_socket.hpp"
#include "core/stun/uri.hpp"

namespace rtcat::cli {

namespace {

// Datagrams taken from one socket per loop turn: enough to amortize the system calls (a
// recv_batch returns up to UdpSocket::kMaxBatch receives, more datagrams when GRO coalesced
// some), few enough that timers and the other socket are not starved while a fast sender floods
// us.
constexpr size_t kReceiveBudgetPerTurn = 256;
// How long a finished session waits for the SCTP shutdown handshake before it just leaves.
constexpr base::Duration kLinger = std::chrono::seconds(2);

base::Result<std::string> read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return base::make_error("cannot read {}: {}", path, std::strerror(errno));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Resolved {
    std::vector<ice::StunServer> stun;
    std::optional<ice::TurnServer> turn;
};

base::Result<Resolved> resolve_servers(const PeerOptions& o) {
    Resolved r;
    for (const auto& s : o.stun) {
        auto uri = stun::parse_server_uri(s, stun::Scheme::Stun);
        if (!uri) {
            return base::make_error("--stun {}: {}", s, uri.error().message);
        }
        if (uri->is_tls() || uri->transport == stun::UriTransport::Tcp) {
            return base::make_error("--stun {}: only STUN over UDP is supported", s);
        }
        auto addrs = io::resolve(uri->host, uri->port);
        if (!addrs) {
            return base::make_error("--stun {}: {}", s, addrs.error().message);
        }
        for (const auto& a : *addrs) {
            r.stun.push_back(ice::StunServer{a});
        }
    }
    if (!o.turn.empty()) {
        auto uri = stun::parse_server_uri(o.turn, stun::Scheme::Turn);
        if (!uri) {
            return base::make_error("--turn {}: {}", o.turn, uri.error().message);
        }
        if (uri->is_tls() || uri->transport == stun::UriTransport::Tcp) {
            return base::make_error("--turn {}: only TURN over UDP is supported", o.turn);
        }
        if (!uri->username || !uri->password) {
            return base::make_error(
                "--turn {}: credentials are needed, as turn:USER:PASSWORD@host:port", o.turn);
        }
        auto addrs = io::resolve(uri->host, uri->port);
        if (!addrs || addrs->empty()) {
            return base::make_error("--turn {}: {}", o.turn,
                                    addrs ? "no address" : addrs.error().message);
        }
        r.turn = ice::TurnServer{addrs->front(), *uri->username, *uri->password};
    }
    return r;
}

// Every usable interface address of `family` (nullopt: both). Loopback only on request, or when
// nothing else is usable (a namespace with only `lo`): a candidate the peer can never reach only
// slows ICE.
std::vector<net::IpAddr> interface_addresses(std::optional<net::Family> family, bool loopback) {
    std::vector<net::IpAddr> out;
    std::vector<net::IpAddr> loopbacks;
    for (const auto& itf : io::list_interfaces()) {
        if (!itf.is_up || (family && itf.address.family() != *family)) {
            continue;
        }
        if (itf.is_loopback || itf.address.is_loopback()) {
            const auto lo =
                *net::IpAddr::parse(itf.address.family() == net::Family::V4 ? "127.0.0.1" : "::1");
            if (std::find(loopbacks.begin(), loopbacks.end(), lo) == loopbacks.end()) {
                loopbacks.push_back(lo);
            }
            continue;
        }
        // Link-local IPv6 needs a scope id the SDP cannot carry.
        if (itf.address.is_link_local()) {
            continue;
        }
        out.push_back(itf.address);
    }
    if (loopback || out.empty()) {
        out.insert(out.end(), loopbacks.begin(), loopbacks.end());
    }
    return out;
}

// The addresses to bind host sockets on, one host candidate each.
base::Result<std::vector<net::SocketAddr>> host_addresses(const PeerOptions& o) {
    std::vector<net::SocketAddr> out;
    auto add = [&](const net::SocketAddr& a) {
        if (std::find(out.begin(), out.end(), a) == out.end()) {
            out.push_back(a);
        }
    };
    if (!o.bind.empty()) {
        for (const auto& b : o.bind) {
            auto parsed = net::SocketAddr::parse(b);
            if (!parsed) {
                auto ip = net::IpAddr::parse(b);
                if (!ip) {
                    return base::make_error("--bind {}: not an IP address or IP:port", b);
                }
                parsed = net::SocketAddr(*ip, 0);
            }
            if (!parsed->ip().is_unspecified()) {
                add(*parsed);
                continue;
            }
            // 0.0.0.0 / :: mean "every interface" as for any server, but a host candidate
            // must name a real address (RFC 8445 §5.1.1.1): one socket per interface address.
            auto ips = interface_addresses(parsed->ip().family(), o.ice_loopback);
            if (ips.empty()) {
                return base::make_error("--bind {}: no usable {} interface", b,
                                        parsed->ip().family() == net::Family::V4 ? "IPv4" : "IPv6");
            }
            for (const auto& ip : ips) {
                add(net::SocketAddr(ip, parsed->port()));
            }
        }
        return out;
    }
    for (const auto& ip : interface_addresses(std::nullopt, o.ice_loopback)) {
        add(net::SocketAddr(ip, 0));
    }
    if (out.empty()) {
        return base::make_error("no usable network interface (not even loopback)");
    }
    return out;
}

SdpFormatChoice format_choice(const std::string& s) {
    if (s == "plain") {
        return SdpFormatChoice::Plain;
    }
    if (s == "json") {
        return SdpFormatChoice::Json;
    }
    if (s == "token") {
        return SdpFormatChoice::Token;
    }
    return SdpFormatChoice::Auto;
}

int exit_for(peer::FailureClass f) {
    switch (f) {
    case peer::FailureClass::Signaling:
        return kExitUsage;
    case peer::FailureClass::Connectivity:
        return kExitUnreachable;
    case peer::FailureClass::Security:
        return kExitSecurity;
    case peer::FailureClass::Protocol:
        return kExitFailure;
    }
    return kExitFailure;
}

struct Socket {
    io::UdpSocket sock;
    std::deque<net::Transmit> backlog; // waiting for POLLOUT
};

} // namespace

bool pair_is_relayed(const ice::CandidatePair& pair) {
    return pair.local.type == ice::CandidateType::Relay ||
           pair.remote.type == ice::CandidateType::Relay;
}

std::string describe_pair(const ice::CandidatePair& pair) {
    return fmt::format("{} {} <-> {} {} ({})", ice::candidate_type_name(pair.local.type),
                       pair.local.address.to_string(), ice::candidate_type_name(pair.remote.type),
                       pair.remote.address.to_string(),
                       pair_is_relayed(pair) ? "relayed" : "direct");
}

void add_peer_options(CLI::App& sub, PeerOptions& o) {
    sub.add_option("--stun", o.stun,
                   "STUN server for a server-reflexive candidate (host[:port] or stun: URI; "
                   "repeatable)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->allow_extra_args(false); // one value per occurrence: positional FILEs follow
    sub.add_option("--turn", o.turn,
                   "TURN server for a relay candidate: turn:USER:PASSWORD@host[:port]");
    sub.add_option("--bind", o.bind,
                   "Only gather host candidates on this local address (IP or IP:port; "
                   "repeatable). Default: every interface that is up")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->allow_extra_args(false); // one value per occurrence: positional FILEs follow
    sub.add_flag("--ice-loopback", o.ice_loopback,
                 "Also offer loopback candidates (127.0.0.1, ::1); automatic when no other "
                 "interface is usable");
    sub.add_option("--ice-transport", o.ice_transport,
                   "all: every candidate type; relay: only through the TURN server")
        ->check(CLI::IsMember({"all", "relay"}))
        ->capture_default_str();
    sub.add_option("--timeout", o.timeout,
                   "Seconds allowed for signaling and connection set-up (0: no limit)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    sub.add_option("--keylog", o.keylog,
                   "Append DTLS secrets to FILE in NSS key log format (for Wireshark and "
                   "rtcat decode-pcap); SSLKEYLOGFILE does the same");
    sub.add_flag("--json", o.json, "Report as one JSON object instead of text");
    sub.add_option("--sdp-in", o.sdp_in,
                   "Read the peer's description from PATH (file or fifo) instead of stdin");
    sub.add_option("--sdp-out", o.sdp_out,
                   "Write our description to PATH (file or fifo) instead of stdout");
    sub.add_option("--sdp-format", o.sdp_format,
                   "Form of our description: plain SDP, json {\"type\",\"sdp\"}, a one-line "
                   "token, or auto (the peer's form; a token on a terminal; else plain)")
        ->check(CLI::IsMember({"auto", "plain", "json", "token"}))
        ->capture_default_str();
    sub.add_option("--cert", o.cert,
                   "PEM certificate to use as our DTLS identity (with --key); default: a fresh "
                   "ECDSA P-256 certificate per run");
    sub.add_option("--key", o.key, "PEM private key for --cert");
    sub.add_option("--idle-timeout", o.idle_timeout,
                   "Seconds without progress (no data, no message) once connected before "
                   "giving up with exit 4; 0: never. Default: 60 when moving files, never in "
                   "netcat mode")
        ->check(CLI::NonNegativeNumber);
    sub.add_option("--max-message-size", o.max_message_size,
                   "Largest data channel message we accept, announced in the SDP")
        ->check(CLI::Range(1024u, 1u << 30))
        ->capture_default_str();
}

namespace {

// The copy-paste guide: what a newcomer needs to know while rtcat waits at a terminal.
void guide_after_writing(const PeerOptions& o, bool offerer, const SignalOutput& out) {
    if (!out.to_terminal() || base::log_level() >= base::LogLevel::Error) {
        return;
    }
    if (offerer) {
        std::fprintf(stderr,
                     "rtcat: above is our offer%s. On the other computer run\n\n"
                     "    %s\n\n"
                     "and paste it there; that prints an answer: paste the answer here and "
                     "press Enter.\n",
                     out.format() == sdp::SignalFormat::Token ? " (one line)" : "",
                     o.other_side.c_str());
    } else {
        std::fprintf(stderr,
                     "rtcat: above is our answer%s: paste it into the other rtcat (the one "
                     "that printed the offer) and press Enter there. Waiting for the "
                     "connection...\n",
                     out.format() == sdp::SignalFormat::Token ? " (one line)" : "");
    }
}

void guide_before_reading(bool offerer, const SignalInput& in) {
    if (offerer || !in.is_terminal() || base::log_level() >= base::LogLevel::Error) {
        return;
    }
    std::fprintf(stderr, "rtcat: paste the offer printed by the other side here and press "
                         "Enter...\n");
}

} // namespace

SessionResult run_session(const PeerOptions& o, bool offerer, SessionApp& app) {
    SessionResult result;
    // --timeout counts from here: signaling (a fifo nobody opens, a paste that never comes)
    // included.
    const base::Instant t0 = io::now();
    ConnectTimeline& tl = result.timeline;
    auto mark = [&](double& field, base::Instant now, std::string_view what) {
        if (field >= 0) {
            return;
        }
        field = base::to_ms(now - t0);
        // The monotonic clock is system-wide: its value lines up the logs of two processes.
        RTCAT_INFO("session", "+{:.1f} ms (monotonic {:.3f} ms): {}", field,
                   base::to_ms(now.time_since_epoch()), what);
    };
    auto fail = [&](int code, const std::string& message) {
        std::fprintf(stderr, "rtcat: %s\n", base::printable(message).c_str());
        result.exit_code = code;
        return result;
    };

    // --- identity ---------------------------------------------------------------------------
    base::Result<dtls::Certificate> cert = base::Error{};
    if (!o.cert.empty() || !o.key.empty()) {
        if (o.cert.empty() || o.key.empty()) {
            return fail(kExitUsage, "--cert and --key go together");
        }
        auto c = read_text_file(o.cert);
        auto k = read_text_file(o.key);
        if (!c || !k) {
            return fail(kExitUsage, (!c ? c.error() : k.error()).message);
        }
        cert = dtls::Certificate::load_pem(*c, *k);
    } else {
        cert = dtls::Certificate::generate();
    }
    if (!cert) {
        return fail(kExitUsage, "certificate: " + cert.error().message);
    }

    // --- key log ----------------------------------------------------------------------------
    std::string keylog_path = o.keylog;
    if (keylog_path.empty()) {
        if (const char* env = std::getenv("SSLKEYLOGFILE"); env && *env) {
            keylog_path = env;
        }
    }
    std::shared_ptr<std::FILE> keylog_file;
    if (!keylog_path.empty()) {
        std::FILE* f = std::fopen(keylog_path.c_str(), "a");
        if (!f) {
            return fail(kExitUsage,
                        fmt::format("--keylog {}: {}", keylog_path, std::strerror(errno)));
        }
        keylog_file.reset(f, [](std::FILE* p) { std::fclose(p); });
    }

    // --- servers and sockets ----------------------------------------------------------------
    auto servers = resolve_servers(o);
    if (!servers) {
        return fail(kExitUsage, servers.error().message);
    }
    if (o.ice_transport == "relay" && !servers->turn) {
        return fail(kExitUsage, "--ice-transport relay needs --turn");
    }
    auto addrs = host_addresses(o);
    if (!addrs) {
        return fail(kExitUnreachable, addrs.error().message);
    }
    std::vector<Socket> sockets;
    std::map<net::SocketAddr, size_t> socket_by_addr;
    for (const auto& a : *addrs) {
        auto s = io::UdpSocket::bind(a);
        if (!s) {
            return fail(kExitUsage,
                        fmt::format("cannot bind {}: {}", a.to_string(), s.error().message));
        }
        socket_by_addr[s->local_address()] = sockets.size();
        sockets.push_back(Socket{std::move(*s), {}});
    }

    peer::PeerConfig pc;
    pc.offerer = offerer;
    pc.certificate = *cert;
    for (const auto& s : sockets) {
        pc.host_sockets.push_back(s.sock.local_address());
    }
    pc.stun_servers = servers->stun;
    pc.turn = servers->turn;
    pc.relay_only = o.ice_transport == "relay";
    pc.max_message_size = o.max_message_size;
    if (keylog_file) {
        pc.keylog = [keylog_file](std::string_view line) {
            std::fprintf(keylog_file.get(), "%.*s\n", static_cast<int>(line.size()), line.data());
            std::fflush(keylog_file.get());
        };
    }

    auto signals = io::SignalPipe::install();
    if (!signals) {
        return fail(kExitFailure, signals.error().message);
    }

    const base::Instant start = io::now();
    peer::Peer peer(std::move(pc), start);
    mark(tl.peer_ms, io::now(), "peer ready");
    const base::Instant setup_deadline =
        o.timeout > 0 ? t0 + base::Duration(static_cast<int64_t>(o.timeout * 1e6)) : base::kNever;
    const base::Duration idle_limit =
        o.idle_timeout > 0 ? base::Duration(static_cast<int64_t>(o.idle_timeout * 1e6))
                           : base::Duration::zero();

    SignalInput input(o.sdp_in);
    SignalOutput output(o.sdp_out, format_choice(o.sdp_format));
    bool need_remote = true;
    bool ready = false;
    bool closing = false;
    bool closed = false;
    bool guided_input = false;
    base::Instant close_deadline = base::kNever;
    const auto plain_type = offerer ? sdp::SdpType::Answer : sdp::SdpType::Offer;
    int exit_code = kExitOk;
    bool aborted = false;
    uint64_t last_activity_count = 0;
    base::Instant last_activity = start;
    std::vector<net::Datagram> rx;
    rx.reserve(io::UdpSocket::kMaxBatch);

    auto end_with = [&](int code, const std::string& why) {
        if (!aborted && !closing) {
            if (!why.empty()) {
                std::fprintf(stderr, "rtcat: %s\n", base::printable(why).c_str());
            }
            app.on_abort(why);
        }
        aborted = true;
        exit_code = code;
    };
    // The peer hung up or vanished while connected: the application decides what that means.
    auto peer_gone = [&](const std::string& why) {
        if (aborted || closing) {
            return;
        }
        const int code = app.on_peer_gone(peer, why);
        if (code != kExitOk) {
            std::fprintf(stderr, "rtcat: %s\n", base::printable(why).c_str());
        }
        aborted = true;
        exit_code = code;
    };

    std::vector<net::Transmit> batch; // reused: send_batch wants contiguous transmits
    batch.reserve(io::UdpSocket::kMaxBatch);
    auto flush_transmits = [&] {
        while (auto t = peer.poll_transmit()) {
            auto it = socket_by_addr.find(t->source);
            if (it == socket_by_addr.end()) {
                // An unspecified source: the first socket of the destination's family.
                it = std::find_if(socket_by_addr.begin(), socket_by_addr.end(), [&](auto& kv) {
                    return kv.first.family() == t->destination.family();
                });
                if (it == socket_by_addr.end()) {
                    continue;
                }
            }
            sockets[it->second].backlog.push_back(std::move(*t));
        }
        for (auto& s : sockets) {
            while (!s.backlog.empty()) {
                // A deque segment is not contiguous: stage up to one batch.
                batch.clear();
                const size_t n = std::min(s.backlog.size(), io::UdpSocket::kMaxBatch);
                for (size_t i = 0; i < n; ++i) {
                    batch.push_back(std::move(s.backlog[i]));
                }
                auto sent = s.sock.send_batch(batch);
                size_t done = sent ? *sent : 1; // an error on the first: drop it, go on
                if (!sent) {
                    RTCAT_DEBUG("session", "send to {} failed: {}",
                                batch[0].destination.to_string(), sent.error().message);
                }
                for (size_t i = done; i < n; ++i) {
                    s.backlog[i] = std::move(batch[i]);
                }
                s.backlog.erase(s.backlog.begin(), s.backlog.begin() + static_cast<long>(done));
                if (done < n) {
                    break; // buffer full: wait for POLLOUT
                }
            }
        }
    };

    auto handle_events = [&](base::Instant now) {
        while (auto ev = peer.poll_event()) {
            if (auto* ld = std::get_if<peer::event::LocalDescription>(&*ev)) {
                output.start(sdp::SignalMessage{ld->type, ld->sdp}, input.format_seen());
            } else if (auto* ic = std::get_if<peer::event::IceConnected>(&*ev)) {
                result.pair = ic->pair;
                mark(tl.ice_ms, now, "ICE connected: " + describe_pair(ic->pair));
            } else if (auto* dc = std::get_if<peer::event::DtlsConnected>(&*ev)) {
                mark(tl.dtls_ms, now, "DTLS connected: " + dc->cipher);
            } else if (std::holds_alternative<dcep::event::Connected>(*ev)) {
                ready = true;
                last_activity = now;
                mark(tl.sctp_ms, now, "SCTP association up");
                app.on_ready(peer, now);
            } else if (auto* f = std::get_if<peer::event::Failed>(&*ev)) {
                if (ready && f->failure == peer::FailureClass::Connectivity) {
                    peer_gone("the peer vanished: " + f->reason);
                } else {
                    end_with(exit_for(f->failure), f->reason);
                }
                return;
            } else if (auto* c = std::get_if<dcep::event::Closed>(&*ev)) {
                if (!closing && !app.finished()) {
                    peer_gone("the peer closed the connection: " + c->reason);
                    return;
                }
            } else if (auto* pc2 = std::get_if<peer::event::Closed>(&*ev)) {
                if (closing || app.finished()) {
                    closed = true;
                } else if (ready) {
                    peer_gone("the peer closed the connection: " + pc2->reason);
                    return;
                } else {
                    end_with(kExitUnreachable,
                             "the peer closed the connection before it was up: " + pc2->reason);
                    return;
                }
            } else {
                if (std::holds_alternative<dcep::event::ChannelOpen>(*ev) &&
                    tl.channel_open_ms < 0) {
                    mark(tl.channel_open_ms, now, "first data channel open");
                    result.connect_ms = tl.channel_open_ms - tl.offer_ms;
                    RTCAT_INFO("session", "offer -> data channel open: {:.1f} ms",
                               result.connect_ms);
                }
                app.on_event(peer, *ev, now);
            }
        }
    };

    auto pump_output = [&] {
        if (!output.started() || output.done()) {
            return true;
        }
        // Timestamped before the write: once written the peer may act on it while we are not
        // scheduled, and a later stamp would hide that time.
        const base::Instant before_write = io::now();
        auto w = output.pump();
        if (!w) {
            end_with(kExitFailure, w.error().message);
            return false;
        }
        if (*w) {
            mark(offerer ? tl.offer_ms : tl.answer_ms, before_write,
                 offerer ? "our offer written" : "our answer written");
            guide_after_writing(o, offerer, output);
        }
        return true;
    };

    io::Poller poller;
    while (true) {
        base::Instant now = io::now();
        handle_events(now);
        if (aborted) {
            break;
        }
        if (!pump_output()) {
            break;
        }
        if (ready && !closing) {
            app.pump(peer, now);
            handle_events(now);
            if (aborted) {
                break;
            }
            if (const uint64_t a = app.activity(); a != last_activity_count) {
                last_activity_count = a;
                last_activity = now;
            }
            if (!app.finished() && idle_limit > base::Duration::zero() &&
                now - last_activity >= idle_limit && !app.on_idle()) {
                end_with(kExitTimeout,
                         fmt::format("nothing moved for {} s (--idle-timeout)", o.idle_timeout));
                break;
            }
            if (app.finished()) {
                exit_code = app.exit_code();
                closing = true;
                // SCTP SHUTDOWN first, so our last messages (acknowledgements) still arrive;
                // a peer that never answers gets kLinger.
                close_deadline = now + kLinger;
                peer.close(now);
                handle_events(now);
            }
        }
        if (closing && now >= close_deadline && !closed) {
            peer.close_now(now);
            closed = true;
        }
        flush_transmits();
        if (closed && std::all_of(sockets.begin(), sockets.end(),
                                  [](const Socket& s) { return s.backlog.empty(); })) {
            break;
        }
        if (!ready && now >= setup_deadline) {
            std::string why;
            if (output.started() && !output.done()) {
                why = fmt::format("timed out after {} s: nobody opened {} to read our "
                                  "description",
                                  o.timeout, output.describe());
            } else if (need_remote && output.done()) {
                why = fmt::format("timed out after {} s waiting for the peer's description on {}",
                                  o.timeout, input.describe());
            } else if (need_remote) {
                why = fmt::format("timed out after {} s waiting for the peer's description on {}",
                                  o.timeout, input.describe());
            } else {
                why = fmt::format("timed out after {} s before the connection was up", o.timeout);
            }
            end_with(kExitTimeout, why);
            break;
        }

        // --- what to wait for ---------------------------------------------------------------
        // The answerer needs the offer before it can answer; the offerer reads the answer once
        // its offer is out.
        const bool want_input = need_remote && (output.done() || !offerer);
        if (want_input && input.fd() < 0) {
            auto r = input.open();
            if (!r) {
                end_with(kExitUsage, r.error().message);
                break;
            }
            if (!guided_input) {
                guided_input = true;
                guide_before_reading(offerer, input);
            }
        }
        for (auto& s : sockets) {
            poller.set(s.sock.fd(),
                       s.backlog.empty() ? io::Interest::Read : io::Interest::ReadWrite);
        }
        poller.set((*signals)->fd(), io::Interest::Read);
        if (want_input && input.fd() >= 0) {
            poller.set(input.fd(), io::Interest::Read);
        } else if (input.fd() >= 0 && poller.contains(input.fd())) {
            poller.remove(input.fd());
        }
        const int out_fd = output.fd();
        if (out_fd >= 0) {
            poller.set(out_fd, io::Interest::Write);
        }
        const int app_fd = ready && !closing ? app.wants_readable_fd() : -1;
        if (app_fd >= 0) {
            poller.set(app_fd, io::Interest::Read);
        }
        base::Instant deadline = std::min(peer.poll_timeout(), app.poll_timeout());
        deadline = std::min(deadline, output.retry_at(now));
        if (!ready) {
            deadline = std::min(deadline, setup_deadline);
        } else if (idle_limit > base::Duration::zero() && !closing) {
            deadline = std::min(deadline, last_activity + idle_limit);
        }
        if (closing) {
            deadline = std::min(deadline, close_deadline);
        }
        auto w = poller.wait(deadline);
        if (out_fd >= 0) {
            // Re-registered each turn: the descriptor is closed once written.
            poller.remove(out_fd);
        }
        if (app_fd >= 0) {
            // Re-registered each turn: the app may stop wanting it.
            bool readable = poller.readable(app_fd);
            poller.remove(app_fd);
            if (readable) {
                ++last_activity_count; // reading our own input is progress too
                last_activity = io::now();
                app.on_fd_readable(peer, io::now());
            }
        }
        if (!w) {
            end_with(kExitFailure, w.error().message);
            break;
        }
        now = io::now();

        if (poller.readable((*signals)->fd())) {
            if (auto sig = (*signals)->take()) {
                if (*sig == SIGPIPE) {
                    end_with(kExitTransfer, "broken pipe");
                } else {
                    end_with(kExitInterrupted, "interrupted");
                }
                break;
            }
        }

        if (want_input && input.fd() >= 0 && poller.readable(input.fd())) {
            auto msg = input.on_readable(plain_type);
            if (!msg) {
                end_with(kExitUsage, msg.error().message);
                break;
            }
            if (*msg) {
                need_remote = false;
                poller.remove(input.fd());
                input.close();
                mark(offerer ? tl.answer_ms : tl.offer_ms, now,
                     offerer ? "the answer read" : "the offer read");
                auto r = peer.set_remote_description(**msg, now);
                if (!r) {
                    end_with(kExitUsage, "the peer's description: " + r.error().message);
                    break;
                }
            }
        }

        for (auto& s : sockets) {
            if (poller.has_error(s.sock.fd())) {
                while (auto e = s.sock.read_error()) {
                    RTCAT_DEBUG("session", "ICMP: {}", e->message);
                }
            }
            if (!poller.readable(s.sock.fd())) {
                continue;
            }
            size_t budget = kReceiveBudgetPerTurn;
            while (budget > 0) {
                rx.clear();
                auto n = s.sock.recv_batch(rx, io::UdpSocket::kMaxBatch);
                if (!n || *n == 0) {
                    break;
                }
                budget -= std::min(budget, *n);
                for (auto& d : rx) {
                    peer.handle_receive(std::move(d), now);
                }
                // Send what these produced (SACKs, acks) before reading more: it keeps the
                // peer's window open while we work through a burst.
                flush_transmits();
                if (*n < io::UdpSocket::kMaxBatch) {
                    break;
                }
            }
        }
        now = io::now();
        if (now >= peer.poll_timeout()) {
            peer.handle_timeout(now);
        }
    }

    if (!closed) {
        // Interrupted or failed: still tell the peer (close_notify), so it does not wait for
        // consent to expire.
        peer.close_now(io::now());
        flush_transmits();
    }
    result.exit_code = exit_code;
    if (auto p = peer.selected_pair()) {
        result.pair = p;
    }
    result.stats = peer.stats();
    for (const auto& s : sockets) {
        result.kernel_drops += s.sock.kernel_drops();
    }
    result.seconds_connected = base::to_ms(io::now() - start) / 1000.0;
    return result;
}

} // namespace rtcat::cli
