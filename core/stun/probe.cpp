#include "core/stun/probe.hpp"

#include <algorithm>

#include "core/base/log.hpp"
#include "core/base/random.hpp"
#include "core/stun/turn_client.hpp"

namespace rtcat::stun {

namespace {
constexpr const char* kLog = "probe";

std::uint64_t make_tag(std::uint8_t test, int index) {
    return (std::uint64_t{test} << 32) | static_cast<std::uint32_t>(index);
}
} // namespace

std::string_view server_status_name(ServerStatus s) {
    switch (s) {
    case ServerStatus::Pending:
        return "pending";
    case ServerStatus::Ok:
        return "ok";
    case ServerStatus::Timeout:
        return "timeout";
    case ServerStatus::Unreachable:
        return "unreachable";
    case ServerStatus::Error:
        return "error";
    }
    return "?";
}

std::string_view turn_status_name(TurnStatus s) {
    switch (s) {
    case TurnStatus::NotRun:
        return "not-run";
    case TurnStatus::Pending:
        return "pending";
    case TurnStatus::Ok:
        return "ok";
    case TurnStatus::AuthFailed:
        return "auth-failed";
    case TurnStatus::Unreachable:
        return "unreachable";
    case TurnStatus::Failed:
        return "failed";
    }
    return "?";
}

std::optional<base::Duration> ServerResult::rtt_min() const {
    if (rtts.empty())
        return std::nullopt;
    return *std::min_element(rtts.begin(), rtts.end());
}

std::optional<base::Duration> ServerResult::rtt_max() const {
    if (rtts.empty())
        return std::nullopt;
    return *std::max_element(rtts.begin(), rtts.end());
}

std::optional<base::Duration> ServerResult::rtt_avg() const {
    if (rtts.empty())
        return std::nullopt;
    base::Duration sum{0};
    for (auto r : rtts)
        sum += r;
    return sum / static_cast<long>(rtts.size());
}

Prober::Prober(ProbeConfig config) : cfg_(std::move(config)) {
    for (const auto& s : cfg_.servers) {
        ServerResult r;
        r.target = s;
        report_.servers.push_back(std::move(r));
    }
    in_flight_.resize(cfg_.servers.size());
    if (cfg_.turn) {
        report_.turn.status = TurnStatus::Pending;
        report_.turn.label = cfg_.turn->label;
        report_.turn.server = cfg_.turn->server;
    }
}

Prober::~Prober() = default;

void Prober::start(base::Instant now) {
    RTCAT_CHECK(!started_, "Prober started twice");
    started_ = true;
    for (int i = 0; i < static_cast<int>(cfg_.servers.size()); ++i)
        send_binding(i, now);
    if (cfg_.turn) {
        tp_ = std::make_unique<TurnProgress>();
        for (int i = 0; i < 2; ++i) {
            TurnConfig tc;
            tc.server = cfg_.turn->server;
            tc.local = i == 0 ? cfg_.turn_a : cfg_.turn_b;
            tc.username = cfg_.turn->username;
            tc.password = cfg_.turn->password;
            tc.rtx = cfg_.rtx;
            tc.software = cfg_.software.empty() ? "rtcat" : cfg_.software;
            // Relay in the family we reach the server over, so the check works IPv6-only too.
            if (cfg_.turn->server.family() == net::Family::V6)
                tc.requested_family = net::Family::V6;
            turn_[i] = std::make_unique<TurnClient>(tc);
            turn_[i]->allocate(now);
        }
    }
    drain(now);
    // Nothing to wait for (no server, no TURN check) must end now, not at the deadline.
    maybe_start_behaviour(now);
    check_done(now);
}

// The TURN check: allocations A and B on one server; A binds a channel to B's relayed
// address and sends a random token as ChannelData, B echoes it back with a Send indication.
// The token coming back to A proves relaying in both directions and both framings.
struct Prober::TurnProgress {
    bool allocated[2] = {false, false};
    bool permitted[2] = {false, false};
    bool channel_bound = false;
    bool setup_started = false;
    bool sent = false;
    bool releasing = false;
    bool release_done[2] = {false, false};
    bool release_confirmed[2] = {false, false};
    TurnStatus outcome = TurnStatus::Ok;
    base::Bytes token;
    base::Instant sent_at{};
    base::Instant relay_deadline = base::kNever;
};

void Prober::turn_receive(int which, const net::Datagram& d, base::Instant now) {
    if (!turn_[which] || !turn_[which]->handle_receive(d, now)) {
        ++report_.ignored_datagrams;
        RTCAT_DEBUG(kLog, "ignored datagram from {} on TURN socket {}", d.source.to_string(),
                    which);
    }
}

void Prober::drive_turn(base::Instant now) {
    auto& tr = report_.turn;
    auto& tp = *tp_;
    auto fail = [&](TurnStatus status, std::string message) {
        if (tp.outcome == TurnStatus::Ok) {
            tp.outcome = status;
            tr.error = std::move(message);
        }
        if (!tp.releasing) {
            tp.releasing = true;
            for (int i = 0; i < 2; ++i) {
                if (turn_[i] && tp.allocated[i])
                    turn_[i]->release(now);
                else
                    tp.release_done[i] = true;
            }
        }
    };
    for (int i = 0; i < 2; ++i) {
        if (!turn_[i])
            continue;
        while (auto ev = turn_[i]->poll_event()) {
            if (auto* a = std::get_if<turn_event::Allocated>(&*ev)) {
                tp.allocated[i] = true;
                if (i == 0) {
                    tr.relayed = a->relayed;
                    tr.mapped = a->mapped;
                    tr.lifetime = a->lifetime;
                    tr.software = a->server_software;
                }
                tr.realm = turn_[i]->credentials().realm();
                if (tp.releasing)
                    turn_[i]->release(now); // a failure elsewhere already ended the check
            } else if (auto* f = std::get_if<turn_event::AllocateFailed>(&*ev)) {
                if (!f->realm.empty())
                    tr.realm = f->realm;
                tp.release_done[i] = true;
                if (f->reason == TurnFailure::AuthFailed)
                    fail(TurnStatus::AuthFailed, f->message);
                else if (f->reason == TurnFailure::Timeout)
                    fail(TurnStatus::Unreachable, "no response from the TURN server");
                else if (f->alternate_server)
                    fail(TurnStatus::Failed, fmt::format("{} (server redirects to {})", f->message,
                                                         f->alternate_server->to_string()));
                else
                    fail(TurnStatus::Failed, f->message);
            } else if (std::get_if<turn_event::PermissionCreated>(&*ev)) {
                tp.permitted[i] = true;
            } else if (auto* pf = std::get_if<turn_event::PermissionFailed>(&*ev)) {
                fail(TurnStatus::Failed, fmt::format("CreatePermission for {} failed: {}",
                                                     pf->peer.to_string(), pf->message));
            } else if (std::get_if<turn_event::ChannelBound>(&*ev)) {
                tp.channel_bound = true;
            } else if (auto* cf = std::get_if<turn_event::ChannelBindFailed>(&*ev)) {
                fail(TurnStatus::Failed, fmt::format("ChannelBind to {} failed: {}",
                                                     cf->peer.to_string(), cf->message));
            } else if (auto* data = std::get_if<turn_event::Data>(&*ev)) {
                if (i == 1 && !tp.releasing && turn_[0] && turn_[0]->relayed_address() &&
                    data->peer == *turn_[0]->relayed_address()) {
                    turn_[1]->send(data->peer, data->data, now); // echo via Send indication
                } else if (i == 0 && tp.sent && !tp.releasing && data->data == tp.token &&
                           turn_[1] && data->peer == turn_[1]->relayed_address()) {
                    tr.relay_ok = true;
                    tr.relay_rtt = now - tp.sent_at;
                    tr.relay_bytes = 2 * tp.token.size();
                    fail(TurnStatus::Ok, ""); // done: release both
                } else {
                    ++report_.ignored_datagrams;
                }
            } else if (auto* rel = std::get_if<turn_event::Released>(&*ev)) {
                tp.release_done[i] = true;
                tp.release_confirmed[i] = rel->confirmed;
            } else if (auto* lost = std::get_if<turn_event::Failed>(&*ev)) {
                tp.release_done[i] = true;
                fail(TurnStatus::Failed, fmt::format("allocation lost: {}", lost->message));
            }
        }
    }
    if (!tp.releasing && tp.allocated[0] && tp.allocated[1] && !tp.setup_started) {
        tp.setup_started = true;
        auto a = *turn_[0]->relayed_address();
        auto b = *turn_[1]->relayed_address();
        turn_[0]->create_permission(b.ip(), now);
        turn_[1]->create_permission(a.ip(), now);
        turn_[0]->bind_channel(b, now);
    }
    if (!tp.releasing && !tp.sent && tp.permitted[0] && tp.permitted[1] && tp.channel_bound) {
        tp.sent = true;
        tp.token.resize(48);
        base::random_bytes(tp.token);
        tp.sent_at = now;
        // Generous for a relay on the path, short enough to fail a broken one quickly.
        tp.relay_deadline = now + std::chrono::seconds(3);
        turn_[0]->send(*turn_[1]->relayed_address(), tp.token, now);
    }
    if (tp.sent && !tp.releasing && now >= tp.relay_deadline) {
        tr.relay_ok = false;
        fail(TurnStatus::Failed, "relay test failed: the data sent through the relay did not "
                                 "come back");
    }
    // Drain what the calls above queued (events from sends are picked up next time round).
    for (auto& t : turn_) {
        if (!t)
            continue;
        while (auto x = t->poll_transmit())
            out_.push_back(std::move(*x));
    }
    if (tp.releasing && tp.release_done[0] && tp.release_done[1]) {
        tr.released = (!tp.allocated[0] || tp.release_confirmed[0]) &&
                      (!tp.allocated[1] || tp.release_confirmed[1]) &&
                      (tp.allocated[0] || tp.allocated[1]);
        tr.status = tp.outcome;
    }
}

TransactionId Prober::start_test(Test test, int index, const net::SocketAddr& source,
                                 const net::SocketAddr& dest, const RetransmitConfig& rtx,
                                 std::optional<std::pair<bool, bool>> change, base::Instant now) {
    auto req = Message::request(Method::Binding);
    if (change)
        req.add_change_request(change->first, change->second);
    if (!cfg_.software.empty())
        req.add_string(attr::Software, cfg_.software);
    auto wire = encode(req, {nullptr, false, true});
    tc_.start(req, std::move(wire), dest, source, now, rtx,
              make_tag(static_cast<std::uint8_t>(test), index));
    return req.transaction_id();
}

void Prober::send_binding(int server, base::Instant now) {
    auto& r = report_.servers[server];
    in_flight_[server] = start_test(Test::Binding, server, cfg_.primary, r.target.address, cfg_.rtx,
                                    std::nullopt, now);
    ++r.sent;
}

int Prober::server_by_address(const net::SocketAddr& a) const {
    for (int i = 0; i < static_cast<int>(cfg_.servers.size()); ++i)
        if (cfg_.servers[i].address == a)
            return i;
    return -1;
}

void Prober::handle_receive(const net::Datagram& d, base::Instant now) {
    if (finished_)
        return;
    if (cfg_.turn && (d.destination == cfg_.turn_a || d.destination == cfg_.turn_b)) {
        turn_receive(d.destination == cfg_.turn_a ? 0 : 1, d, now);
        drain(now);
        return;
    }
    auto ignore = [&](const char* why) {
        ++report_.ignored_datagrams;
        int s = server_by_address(d.source);
        if (s >= 0)
            ++report_.servers[s].ignored;
        RTCAT_DEBUG(kLog, "ignored datagram from {} on {}: {}", d.source.to_string(),
                    d.destination.to_string(), why);
    };
    auto msg = decode(d.payload);
    if (!msg) {
        ignore(msg.error().message.c_str());
        return;
    }
    if (msg->cls() == Class::Request) {
        // RFC 5780 §4.5 hairpinning: our own request, sent from the hairpin socket to the
        // primary socket's public mapping, came back in through the NAT.
        if (beh_.hairpin && msg->transaction_id() == *beh_.hairpin &&
            d.destination == cfg_.primary) {
            report_.nat.hairpinning = true;
            tc_.cancel(*beh_.hairpin);
            beh_.hairpin.reset();
            check_done(now);
        } else {
            ignore("unexpected request");
        }
        drain(now);
        return;
    }
    if (msg->cls() == Class::Indication) {
        ignore("unexpected indication");
        return;
    }
    // RFC 8489 §6.3.4: a response with unknown comprehension-required attributes is discarded.
    if (auto unknown = msg->unknown_comprehension_required(); !unknown.empty()) {
        ignore("response with unknown comprehension-required attributes");
        return;
    }
    if (!tc_.handle_response(*msg, d.source, now)) {
        ignore("response to no pending transaction");
        return;
    }
    drain(now);
}

void Prober::handle_unreachable(const net::SocketAddr& local, const net::SocketAddr& destination,
                                const std::string& reason, base::Instant now) {
    if (finished_)
        return;
    if (cfg_.turn && (local == cfg_.turn_a || local == cfg_.turn_b) &&
        destination == cfg_.turn->server) {
        if (report_.turn.status == TurnStatus::Pending) {
            report_.turn.status = TurnStatus::Unreachable;
            report_.turn.error = reason;
            turn_[0].reset();
            turn_[1].reset();
            tp_.reset();
        }
        check_done(now);
        drain(now);
        return;
    }
    for (int i = 0; i < static_cast<int>(cfg_.servers.size()); ++i) {
        auto& r = report_.servers[i];
        if (r.target.address != destination || r.status != ServerStatus::Pending)
            continue;
        // The ICMP error proves nothing listens there: fail now rather than after 39.5 s.
        if (in_flight_[i]) {
            tc_.cancel(*in_flight_[i]);
            in_flight_[i].reset();
        }
        if (r.answered == 0) {
            r.status = ServerStatus::Unreachable;
            r.error = reason;
        } else {
            r.status = ServerStatus::Ok;
        }
    }
    // An ICMP error answers a behaviour test at once: that address is dead (mapping tests), or
    // the NAT refused to loop our packet back (hairpinning).
    auto settle = [&](std::optional<TransactionId>& slot, const net::SocketAddr& dest,
                      const net::SocketAddr& from) {
        if (!slot || dest != destination || from != local)
            return false;
        tc_.cancel(*slot);
        slot.reset();
        return true;
    };
    if (settle(beh_.mapping2, beh_.mapping2_dest, cfg_.primary) ||
        settle(beh_.mapping3, beh_.mapping3_dest, cfg_.primary)) {
        beh_.mapping_failed = true;
        report_.nat.notes.push_back(
            fmt::format("RFC 5780 mapping test to {} failed: {}", destination.to_string(), reason));
    }
    if (settle(beh_.hairpin, beh_.hairpin_dest, cfg_.hairpin))
        report_.nat.hairpinning = false;
    maybe_start_behaviour(now);
    check_done(now);
    drain(now);
}

void Prober::handle_timeout(base::Instant now) {
    if (finished_ || !started_)
        return;
    if (now >= cfg_.deadline) {
        report_.deadline_hit = true;
        finish(now);
        return;
    }
    tc_.handle_timeout(now);
    for (auto& t : turn_)
        if (t)
            t->handle_timeout(now);
    drain(now);
}

void Prober::drain(base::Instant now) {
    // Events can start new transactions, which can complete only on later input, so one pass
    // over the queue at a time until it stays empty.
    for (;;) {
        bool any = false;
        while (auto ev = tc_.poll_event()) {
            any = true;
            on_event(*ev, now);
        }
        if (tp_ && report_.turn.status == TurnStatus::Pending)
            drive_turn(now);
        if (!any)
            break;
    }
    while (auto t = tc_.poll_transmit())
        out_.push_back(std::move(*t));
    for (auto& t : turn_) {
        if (!t)
            continue;
        while (auto tr = t->poll_transmit())
            out_.push_back(std::move(*tr));
    }
    check_done(now);
}

void Prober::on_event(const TransactionEvent& ev, base::Instant now) {
    auto test = static_cast<Test>(ev.user_tag >> 32);
    int index = static_cast<int>(ev.user_tag & 0xFFFFFFFF);
    if (test == Test::Binding)
        on_binding_event(index, ev, now);
    else
        on_behaviour_event(test, ev, now);
}

void Prober::on_binding_event(int server, const TransactionEvent& ev, base::Instant now) {
    auto& r = report_.servers[server];
    in_flight_[server].reset();
    if (r.status != ServerStatus::Pending)
        return;
    r.retransmissions += ev.retransmissions;
    if (ev.kind == TransactionEvent::Kind::Timeout) {
        ++r.lost;
        if (r.answered == 0) {
            // One full RFC 8489 retransmission schedule without an answer: the server is
            // not there for us; more requests would only repeat the wait.
            r.status = ServerStatus::Timeout;
            r.error = fmt::format("no response after {} transmissions", ev.retransmissions + 1);
            if (r.ignored > 0)
                r.error += fmt::format(" ({} malformed or unmatched datagrams from it ignored)",
                                       r.ignored);
            maybe_start_behaviour(now);
            return;
        }
    } else {
        const Message& m = ev.response;
        if (m.cls() == Class::Error) {
            auto ec = m.error_code();
            r.status = ServerStatus::Error;
            if (ec) {
                r.error_code = ec->code;
                r.error_reason = ec->reason;
                r.error =
                    fmt::format("answered with an error response: {} {}", ec->code, ec->reason);
            } else {
                r.error = "answered with an error response without a valid ERROR-CODE";
            }
            maybe_start_behaviour(now);
            return;
        }
        auto mapped = m.mapped_address();
        if (!mapped) {
            r.status = ServerStatus::Error;
            r.error = "answered with a success response without a (XOR-)MAPPED-ADDRESS";
            maybe_start_behaviour(now);
            return;
        }
        if (r.mapped && *r.mapped != *mapped)
            r.mapping_changed = true;
        r.mapped = *mapped;
        r.response_origin = m.get_address(attr::ResponseOrigin);
        r.other_address = m.get_address(attr::OtherAddress);
        if (auto sw = m.get_string(attr::Software))
            r.software = *sw;
        ++r.answered;
        r.rtts.push_back(ev.rtt);
    }
    if (r.sent < cfg_.count) {
        send_binding(server, now);
        return;
    }
    r.status = ServerStatus::Ok;
    maybe_start_behaviour(now);
}

void Prober::maybe_start_behaviour(base::Instant now) {
    if (beh_.started || !cfg_.behaviour_tests)
        return;
    for (const auto& r : report_.servers)
        if (r.status == ServerStatus::Pending)
            return;
    beh_.started = true;
    const ServerResult* first_ok = nullptr;
    for (int i = 0; i < static_cast<int>(report_.servers.size()); ++i) {
        const auto& r = report_.servers[i];
        if (r.status != ServerStatus::Ok)
            continue;
        if (!first_ok)
            first_ok = &r;
        // RFC 5780 §4.1: usable when OTHER-ADDRESS differs from the server in IP and port.
        if (beh_.server < 0 && r.other_address && r.other_address->ip() != r.target.address.ip() &&
            r.other_address->port() != r.target.address.port() &&
            r.other_address->family() == r.target.address.family())
            beh_.server = i;
    }
    if (!first_ok)
        return;
    if (beh_.server >= 0) {
        const auto& s = report_.servers[beh_.server];
        report_.nat.rfc5780_server = s.target.label;
        net::SocketAddr alt_ip_primary_port(s.other_address->ip(), s.target.address.port());
        beh_.mapping2_dest = alt_ip_primary_port;
        beh_.mapping3_dest = *s.other_address;
        beh_.mapping2 = start_test(Test::Mapping2, beh_.server, cfg_.primary, alt_ip_primary_port,
                                   cfg_.silence_rtx, std::nullopt, now);
        beh_.mapping3 = start_test(Test::Mapping3, beh_.server, cfg_.primary, *s.other_address,
                                   cfg_.silence_rtx, std::nullopt, now);
        beh_.filter1 = start_test(Test::Filter1, beh_.server, cfg_.filtering, s.target.address,
                                  cfg_.rtx, std::nullopt, now);
    }
    // Hairpinning needs a public mapping of the primary socket to aim at.
    if (first_ok->mapped && first_ok->mapped->family() == cfg_.hairpin.family()) {
        beh_.hairpin_dest = *first_ok->mapped;
        beh_.hairpin = start_test(Test::Hairpin, 0, cfg_.hairpin, *first_ok->mapped,
                                  cfg_.silence_rtx, std::nullopt, now);
    }
}

void Prober::on_behaviour_event(Test test, const TransactionEvent& ev, base::Instant now) {
    bool answered = ev.kind == TransactionEvent::Kind::Response;
    const Message& m = ev.response;
    bool success = answered && m.cls() == Class::Success;
    const auto& s = report_.servers[beh_.server < 0 ? 0 : beh_.server];
    switch (test) {
    case Test::Mapping2:
    case Test::Mapping3: {
        auto& slot = test == Test::Mapping2 ? beh_.mapping2 : beh_.mapping3;
        auto& out = test == Test::Mapping2 ? report_.nat.test2_mapped : report_.nat.test3_mapped;
        slot.reset();
        if (success && m.mapped_address())
            out = m.mapped_address();
        else {
            beh_.mapping_failed = true;
            report_.nat.notes.push_back(fmt::format(
                "RFC 5780 mapping test {} to the alternate address of {} got no usable answer",
                test == Test::Mapping2 ? "II" : "III", s.target.label));
        }
        break;
    }
    case Test::Filter1:
        beh_.filter1.reset();
        if (!success) {
            beh_.filter_aborted = true;
            report_.nat.notes.push_back("filtering tests skipped: the first binding on a fresh "
                                        "socket got no answer");
            break;
        }
        beh_.filter2 = start_test(Test::Filter2, beh_.server, cfg_.filtering, s.target.address,
                                  cfg_.silence_rtx, std::pair{true, true}, now);
        beh_.filter3 = start_test(Test::Filter3, beh_.server, cfg_.filtering, s.target.address,
                                  cfg_.silence_rtx, std::pair{false, true}, now);
        break;
    case Test::Filter2:
    case Test::Filter3: {
        bool change_ip = test == Test::Filter2;
        auto& slot = change_ip ? beh_.filter2 : beh_.filter3;
        auto& out = change_ip ? beh_.filter2_answered : beh_.filter3_answered;
        slot.reset();
        if (!answered) {
            out = false;
            break;
        }
        if (!success) {
            auto ec = m.error_code();
            beh_.filter_aborted = true;
            report_.nat.notes.push_back(fmt::format(
                "{} rejected CHANGE-REQUEST ({}): filtering unknown", s.target.label,
                ec ? fmt::format("{} {}", ec->code, ec->reason) : std::string("error")));
            break;
        }
        // The answer must really come from the other address, or the test proves nothing.
        const auto& primary = s.target.address;
        bool ip_changed = ev.from.ip() != primary.ip();
        bool port_changed = ev.from.port() != primary.port();
        if ((change_ip && (!ip_changed || !port_changed)) || (!change_ip && !port_changed)) {
            beh_.filter_aborted = true;
            report_.nat.notes.push_back(
                fmt::format("{} ignored CHANGE-REQUEST (answered from {}): filtering unknown",
                            s.target.label, ev.from.to_string()));
            break;
        }
        out = true;
        break;
    }
    case Test::Hairpin:
        beh_.hairpin.reset();
        // A response means someone answered our request at the public address instead of
        // the NAT looping it back to us: no hairpinning either way.
        report_.nat.hairpinning = false;
        break;
    case Test::Binding:
        break;
    }
    check_done(now);
}

void Prober::check_done(base::Instant now) {
    if (finished_ || !started_)
        return;
    for (const auto& r : report_.servers)
        if (r.status == ServerStatus::Pending)
            return;
    if (cfg_.behaviour_tests && !beh_.started)
        return;
    if (beh_.pending())
        return;
    if (report_.turn.status == TurnStatus::Pending)
        return;
    finish(now);
}

void Prober::finish(base::Instant now) {
    (void)now;
    finished_ = true;
    for (int i = 0; i < static_cast<int>(report_.servers.size()); ++i) {
        auto& r = report_.servers[i];
        if (r.status != ServerStatus::Pending)
            continue;
        if (r.answered > 0) {
            r.status = ServerStatus::Ok;
        } else {
            r.status = ServerStatus::Timeout;
            r.error = "no response before the deadline";
            if (r.ignored > 0)
                r.error += fmt::format(" ({} malformed or unmatched datagrams from it ignored)",
                                       r.ignored);
        }
    }
    if (report_.turn.status == TurnStatus::Pending) {
        report_.turn.status = TurnStatus::Failed;
        if (report_.turn.error.empty())
            report_.turn.error = "TURN check did not finish before the deadline";
    }
    if (beh_.pending())
        report_.nat.notes.push_back("some NAT behaviour tests did not finish before the deadline");

    auto& nat = report_.nat;
    const ServerResult* first_ok = nullptr;
    std::vector<MappingObservation> obs;
    for (const auto& r : report_.servers) {
        if (r.status != ServerStatus::Ok || !r.mapped)
            continue;
        if (!first_ok)
            first_ok = &r;
        obs.push_back({r.target.address, *r.mapped});
    }
    if (first_ok) {
        nat.public_address = first_ok->mapped;
        bool ours = std::find(cfg_.local_addresses.begin(), cfg_.local_addresses.end(),
                              first_ok->mapped->ip()) != cfg_.local_addresses.end() ||
                    first_ok->mapped->ip() == cfg_.primary.ip();
        nat.behind_nat = !ours;
        if (ours) {
            nat.mapping = Mapping::NoNat;
            nat.mapping_method = "local-address";
        } else if (beh_.server >= 0 && !beh_.mapping_failed && nat.test2_mapped &&
                   nat.test3_mapped) {
            const auto& s = report_.servers[beh_.server];
            nat.mapping = classify_mapping_rfc5780(*s.mapped, *nat.test2_mapped, *nat.test3_mapped);
            nat.mapping_method = "rfc5780";
        } else {
            nat.mapping = classify_mapping_servers(obs);
            if (nat.mapping != Mapping::Unknown)
                nat.mapping_method = "servers";
        }
        for (const auto& r : report_.servers)
            if (r.mapping_changed)
                nat.notes.push_back(
                    fmt::format("the mapping seen by {} changed between requests (NAT rebinding?)",
                                r.target.label));
    }
    if (!beh_.filter_aborted)
        nat.filtering = classify_filtering(beh_.filter2_answered, beh_.filter3_answered);
    if (beh_.server < 0 && cfg_.behaviour_tests && first_ok)
        nat.notes.push_back("no server offered RFC 5780 (OTHER-ADDRESS): filtering behaviour "
                            "not tested");

    std::optional<bool> turn_works;
    if (report_.turn.status != TurnStatus::NotRun)
        turn_works = report_.turn.status == TurnStatus::Ok;
    Reach reach = Reach::NoServer;
    if (first_ok) {
        reach = Reach::Mapped;
    } else if (!report_.servers.empty()) {
        reach = Reach::Silent;
        for (const auto& r : report_.servers)
            if (r.status == ServerStatus::Error)
                reach = Reach::RefusedOnly;
    }
    report_.verdict = make_verdict(reach, nat.mapping, nat.filtering, turn_works);
    out_.clear();
    for (auto& t : turn_)
        t.reset();
}

std::optional<net::Transmit> Prober::poll_transmit() {
    if (out_.empty())
        return std::nullopt;
    auto t = std::move(out_.front());
    out_.pop_front();
    return t;
}

base::Instant Prober::poll_timeout() const {
    if (finished_)
        return base::kNever;
    auto t = std::min(tc_.poll_timeout(), cfg_.deadline);
    for (const auto& c : turn_)
        if (c)
            t = std::min(t, c->poll_timeout());
    if (tp_ && report_.turn.status == TurnStatus::Pending)
        t = std::min(t, tp_->relay_deadline);
    return t;
}

} // namespace rtcat::stun
