#include "core/ice/agent.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "core/base/check.hpp"
#include "core/base/log.hpp"
#include "core/net/demux.hpp"
#include "core/stun/turn_client.hpp"

namespace rtcat::ice {

namespace {

constexpr std::string_view kLog = "ice";

// RFC 8445 §5.1.2.2: the local preference tells bases of the same type apart. IPv6 (not
// link-local) is preferred over IPv4 (RFC 8421 §4 leaves the exact policy open), link-local
// IPv6 comes last; within a family the order of host_sockets (the driver lists interfaces
// in its order of preference) decides.
std::uint32_t local_preference_for(const net::IpAddr& ip, std::size_t index) {
    std::uint32_t top = 40000;
    if (ip.is_v6())
        top = ip.is_link_local() ? 20000 : 60000;
    return top - static_cast<std::uint32_t>(std::min<std::size_t>(index, 10000));
}

} // namespace

std::string_view state_name(State s) {
    switch (s) {
    case State::New:
        return "new";
    case State::Checking:
        return "checking";
    case State::Connected:
        return "connected";
    case State::Failed:
        return "failed";
    case State::Closed:
        return "closed";
    }
    return "new";
}

Agent::Agent(AgentConfig config, base::Instant now)
    : config_(std::move(config)), controlling_(config_.controlling),
      local_key_(stun::short_term_key(config_.local_pwd)),
      rng_state_((config_.tie_breaker ^ 0x9E3779B97F4A7C15ull) | 1) {
    RTCAT_CHECK(!config_.local_ufrag.empty() && !config_.local_pwd.empty(),
                "ICE needs local credentials");
    RTCAT_CHECK(config_.ta > base::Duration::zero(), "Ta must be positive");
    for (std::size_t i = 0; i < config_.host_sockets.size(); ++i) {
        const auto& sock = config_.host_sockets[i];
        RTCAT_CHECK(!sock.ip().is_unspecified(),
                    "host sockets are named by the interface address they are bound to");
        // §5.1.3: the same transport address twice is one candidate.
        bool dup = std::any_of(local_.begin(), local_.end(),
                               [&](const Candidate& c) { return c.address == sock; });
        if (dup)
            continue;
        std::uint32_t pref = local_preference_for(sock.ip(), i);
        Candidate c;
        c.foundation = compute_foundation(CandidateType::Host, sock.ip(), std::nullopt);
        c.component = 1;
        c.priority = compute_priority(CandidateType::Host, pref, 1);
        c.address = sock;
        c.type = CandidateType::Host;
        c.base = sock;
        add_local(std::move(c), pref, !config_.relay_only);
    }
    now_ = now;
    start_gathering(now);
    if (config_.relay_only && !turn_)
        set_state(State::Failed, "relay-only transport without a usable TURN server");
    pump(now);
}

Agent::~Agent() = default;

// --- gathering ------------------------------------------------------------------------------

void Agent::add_local(Candidate c, std::uint32_t local_pref, bool advertise) {
    bool paired =
        (c.type == CandidateType::Host && !config_.relay_only) || c.type == CandidateType::Relay;
    if (advertise)
        events_.push_back(event::LocalCandidate{c});
    local_.push_back(std::move(c));
    local_pref_.push_back(local_pref);
    local_paired_.push_back(paired);
    if (paired)
        form_pairs_for_local(local_.size() - 1);
}

void Agent::start_gathering(base::Instant now) {
    std::size_t hosts = local_.size();
    if (!config_.relay_only) {
        for (std::size_t h = 0; h < hosts; ++h) {
            for (const auto& server : config_.stun_servers) {
                if (server.address.family() != local_[h].address.family())
                    continue;
                auto msg = stun::Message::request(stun::Method::Binding);
                if (!config_.software.empty())
                    msg.add_string(stun::attr::Software, config_.software);
                stun::EncodeOptions opts;
                opts.fingerprint = true;
                stun::RetransmitConfig rtx;
                rtx.rto = kGatherRto;
                gathers_[msg.transaction_id()] = GatherCtx{h, server.address};
                gather_tx_.start(msg, stun::encode(msg, opts), server.address, local_[h].base, now,
                                 rtx);
            }
        }
    }
    if (config_.turn) {
        for (std::size_t h = 0; h < hosts; ++h) {
            if (local_[h].address.family() != config_.turn->address.family())
                continue;
            stun::TurnConfig tc;
            tc.server = config_.turn->address;
            tc.local = local_[h].base;
            tc.username = config_.turn->username;
            tc.password = config_.turn->password;
            tc.software = config_.software;
            // RFC 8656 §7.1: the default relayed family is IPv4; ask for IPv6 on IPv6.
            if (tc.server.family() == net::Family::V6)
                tc.requested_family = net::Family::V6;
            turn_ = std::make_unique<stun::TurnClient>(std::move(tc));
            turn_local_ = local_[h].base;
            turn_host_ = h;
            turn_pending_ = true;
            turn_->allocate(now);
            break;
        }
    }
    gathering_deadline_ = now + config_.gathering_timeout;
    finish_gathering_if_done();
}

void Agent::finish_gathering_if_done() {
    if (gathering_done_ || !gathers_.empty() || turn_pending_)
        return;
    gathering_done_ = true;
    gathering_deadline_ = base::kNever;
    events_.push_back(event::GatheringComplete{});
}

void Agent::on_gather_event(const stun::TransactionEvent& ev) {
    auto it = gathers_.find(ev.transaction_id);
    if (it == gathers_.end())
        return;
    GatherCtx ctx = it->second;
    gathers_.erase(it);
    if (ev.kind == stun::TransactionEvent::Kind::Response &&
        ev.response.cls() == stun::Class::Success) {
        if (auto mapped = ev.response.mapped_address()) {
            const Candidate& host = local_[ctx.host];
            // §5.1.3: a reflexive address equal to an existing candidate with the same base
            // (no NAT: the host address itself) is redundant. A peer-reflexive local learned
            // from a check that beat this response is not gathered and not signalled: it must
            // not suppress the server-reflexive candidate the peer needs to see.
            bool redundant = std::any_of(local_.begin(), local_.end(), [&](const Candidate& c) {
                return c.type != CandidateType::PeerReflexive && c.address == *mapped &&
                       c.base == host.base;
            });
            if (!redundant && mapped->family() == host.address.family()) {
                std::uint32_t pref = local_pref_[ctx.host];
                Candidate c;
                c.foundation = compute_foundation(CandidateType::ServerReflexive, host.base.ip(),
                                                  ctx.server.ip());
                c.priority = compute_priority(CandidateType::ServerReflexive, pref, 1);
                c.address = *mapped;
                c.type = CandidateType::ServerReflexive;
                c.related = host.base;
                c.base = host.base;
                add_local(std::move(c), pref, !config_.relay_only);
            }
        }
    }
    finish_gathering_if_done();
}

void Agent::on_turn_event(stun::TurnEvent&& ev, base::Instant now) {
    if (auto* a = std::get_if<stun::turn_event::Allocated>(&ev)) {
        if (relayed_)
            return;
        relayed_ = a->relayed;
        std::uint32_t pref = local_pref_[turn_host_];
        Candidate c;
        c.foundation = compute_foundation(CandidateType::Relay, local_[turn_host_].base.ip(),
                                          config_.turn->address.ip());
        c.priority = compute_priority(CandidateType::Relay, pref, 1);
        c.address = a->relayed;
        c.type = CandidateType::Relay;
        c.related = a->mapped;
        c.base = a->relayed; // RFC 8445 §5.1.1.2: a relayed candidate is its own base
        add_local(std::move(c), pref, true);
        relay_local_ = local_.size() - 1;
        turn_pending_ = false;
        finish_gathering_if_done();
    } else if (auto* f = std::get_if<stun::turn_event::AllocateFailed>(&ev)) {
        RTCAT_DEBUG(kLog, "TURN allocation failed: {}", f->message);
        turn_pending_ = false;
        finish_gathering_if_done();
        if (config_.relay_only)
            set_state(State::Failed, fmt::format("TURN allocation failed: {}", f->message));
    } else if (auto* lost = std::get_if<stun::turn_event::Failed>(&ev)) {
        if (has_selected_ && route_relayed_)
            set_state(State::Failed, fmt::format("TURN allocation lost: {}", lost->message));
    } else if (auto* d = std::get_if<stun::turn_event::Data>(&ev)) {
        // Only reachable outside handle_receive() if the TURN client queued data late; it
        // still goes through the ICE receive path (its payload cannot be returned here).
        if (relay_local_ && relayed_)
            (void)receive_on_local(net::Datagram{d->peer, *relayed_, std::move(d->data)},
                                   *relay_local_, now);
    }
}

// --- checklist ------------------------------------------------------------------------------

std::uint64_t Agent::pair_priority(std::size_t local, std::size_t remote) const {
    // RFC 8445 §6.1.2.3: G is the controlling agent's candidate priority, D the controlled's.
    std::uint64_t g = controlling_ ? local_[local].priority : remote_[remote].priority;
    std::uint64_t d = controlling_ ? remote_[remote].priority : local_[local].priority;
    return (std::min(g, d) << 32) + 2 * std::max(g, d) + (g > d ? 1 : 0);
}

void Agent::recompute_priorities() {
    for (auto& p : pairs_)
        p.priority = pair_priority(p.local, p.remote);
}

std::string Agent::pair_foundation(const Pair& p) const {
    return local_[p.local].foundation + ":" + remote_[p.remote].foundation;
}

std::optional<std::size_t> Agent::find_pair(std::size_t local, std::size_t remote) const {
    for (std::size_t i = 0; i < pairs_.size(); ++i)
        if (pairs_[i].local == local && pairs_[i].remote == remote)
            return i;
    return std::nullopt;
}

std::optional<std::size_t> Agent::add_pair(std::size_t local, std::size_t remote,
                                           bool in_checklist) {
    if (local_[local].address.family() != remote_[remote].address.family() ||
        local_[local].component != remote_[remote].component)
        return std::nullopt;
    if (auto existing = find_pair(local, remote))
        return existing;
    if (pairs_.size() >= kMaxPairs)
        return std::nullopt;
    Pair p;
    p.local = local;
    p.remote = remote;
    p.priority = pair_priority(local, remote);
    p.in_checklist = in_checklist;
    // §6.1.2.6: one pair per foundation starts Waiting, the others wait Frozen for it.
    std::string f = pair_foundation(p);
    bool active = std::any_of(pairs_.begin(), pairs_.end(), [&](const Pair& q) {
        return q.in_checklist &&
               (q.state == PairState::Waiting || q.state == PairState::InProgress) &&
               pair_foundation(q) == f;
    });
    p.state = active ? PairState::Frozen : PairState::Waiting;
    pairs_.push_back(p);
    // RFC 8656 §9: a relayed local reaches a peer only once a permission for its IP exists.
    if (turn_ && local_[local].type == CandidateType::Relay) {
        const net::IpAddr& ip = remote_[remote].address.ip();
        if (permissions_asked_.insert(ip).second)
            turn_->create_permission(ip, now_);
    }
    return pairs_.size() - 1;
}

void Agent::form_pairs_for_local(std::size_t local) {
    for (std::size_t r = 0; r < remote_.size(); ++r)
        if (remote_[r].type != CandidateType::PeerReflexive)
            (void)add_pair(local, r, true);
}

void Agent::form_pairs_for_remote(std::size_t remote) {
    for (std::size_t l = 0; l < local_.size(); ++l)
        if (local_paired_[l])
            (void)add_pair(l, remote, true);
}

void Agent::unfreeze_foundation(const Pair& p) {
    // §7.2.5.3.3: a success unfreezes the pairs that share its foundation.
    std::string f = pair_foundation(p);
    for (auto& q : pairs_)
        if (q.in_checklist && q.state == PairState::Frozen && pair_foundation(q) == f)
            q.state = PairState::Waiting;
}

bool Agent::checks_allowed() const {
    return remote_ufrag_.has_value() && (state_ == State::Checking || state_ == State::Connected);
}

void Agent::schedule_checks(base::Instant now) {
    if (!checks_allowed()) {
        next_check_at_ = base::kNever;
        return;
    }
    bool work = !triggered_.empty();
    if (!work && !has_selected_) {
        work = std::any_of(pairs_.begin(), pairs_.end(), [](const Pair& p) {
            return p.in_checklist &&
                   (p.state == PairState::Waiting || p.state == PairState::Frozen);
        });
    }
    if (!work) {
        next_check_at_ = base::kNever;
        return;
    }
    base::Instant earliest =
        last_check_at_ == base::Instant::min() ? now : last_check_at_ + config_.ta;
    next_check_at_ = std::max(now, earliest);
}

void Agent::on_pacing_timer(base::Instant now) {
    next_check_at_ = base::kNever;
    std::optional<std::size_t> pick;
    // §6.1.4.2: a triggered check first.
    while (!triggered_.empty() && !pick) {
        std::size_t i = triggered_.front();
        triggered_.pop_front();
        if (pairs_[i].state == PairState::Waiting)
            pick = i;
    }
    // Then the best Waiting pair, else the best Frozen one (one data stream: nothing else
    // would unfreeze it). Ordinary checks stop once a pair is selected (§8.3).
    if (!pick && !has_selected_) {
        for (int pass = 0; pass < 2 && !pick; ++pass) {
            PairState want = pass == 0 ? PairState::Waiting : PairState::Frozen;
            for (std::size_t i = 0; i < pairs_.size(); ++i) {
                if (!pairs_[i].in_checklist || pairs_[i].state != want)
                    continue;
                if (!pick || pairs_[i].priority > pairs_[*pick].priority)
                    pick = i;
            }
        }
    }
    if (pick) {
        send_check(*pick, CheckKind::Ordinary, now);
        last_check_at_ = now;
    }
    schedule_checks(now);
}

void Agent::send_check(std::size_t pi, CheckKind kind, base::Instant now) {
    RTCAT_CHECK(remote_ufrag_.has_value(), "checks need the remote credentials");
    Pair& p = pairs_[pi];
    const Candidate& local = local_[p.local];
    const Candidate& remote = remote_[p.remote];
    auto msg = stun::Message::request(stun::Method::Binding);
    // RFC 8445 §7.2.2: USERNAME "rfrag:lfrag", PRIORITY of a would-be prflx candidate
    // (§7.1.1), the role with our tie-breaker (§7.1.3), USE-CANDIDATE to nominate (§8.1.1).
    msg.add_string(stun::attr::Username, *remote_ufrag_ + ":" + config_.local_ufrag);
    msg.add_u32(stun::attr::Priority,
                compute_priority(CandidateType::PeerReflexive, local_pref_[p.local], 1));
    msg.add_u64(controlling_ ? stun::attr::IceControlling : stun::attr::IceControlled,
                config_.tie_breaker);
    if (kind == CheckKind::Nomination)
        msg.add_flag(stun::attr::UseCandidate);
    stun::EncodeOptions opts;
    opts.integrity_key = &remote_key_;
    opts.fingerprint = true;
    stun::RetransmitConfig rtx;
    if (kind == CheckKind::Consent) {
        rtx.rto = kConsentRto;
        rtx.rc = kConsentTransmissions;
        rtx.rm = 2;
        ++stats_.consent_checks_sent;
    } else {
        rtx.rto = kCheckRto;
        rtx.rc = kCheckTransmissions;
        rtx.rm = kCheckRm;
        ++stats_.checks_sent;
        if (p.state != PairState::Succeeded)
            p.state = PairState::InProgress;
    }
    checks_[msg.transaction_id()] = CheckCtx{pi, kind, controlling_, local.base, remote.address};
    check_tx_.start(msg, stun::encode(msg, opts), remote.address, local.base, now, rtx);
}

void Agent::on_check_event(const stun::TransactionEvent& ev, base::Instant now) {
    auto it = checks_.find(ev.transaction_id);
    if (it == checks_.end())
        return;
    CheckCtx ctx = it->second;
    checks_.erase(it);
    if (ctx.pair >= pairs_.size())
        return;
    if (ev.kind == stun::TransactionEvent::Kind::Timeout) {
        if (ctx.kind == CheckKind::Consent)
            return; // consent expiry is a matter of time since the last response
        fail_check(ctx, now);
        return;
    }
    const stun::Message& resp = ev.response;
    if (resp.cls() == stun::Class::Error) {
        auto ec = resp.error_code();
        int code = ec ? ec->code : 0;
        if (code == 487 && ctx.kind != CheckKind::Consent) {
            // §7.2.5.1: switch role unless we already did, then retry the pair.
            ++stats_.role_conflicts;
            if (ctx.sent_controlling == controlling_)
                switch_role(now);
            if (ctx.kind == CheckKind::Nomination) {
                nominating_ = false;
                maybe_nominate(now);
            } else {
                pairs_[ctx.pair].state = PairState::Waiting;
                triggered_.push_back(ctx.pair);
            }
            return;
        }
        if (ctx.kind != CheckKind::Consent)
            fail_check(ctx, now);
        return;
    }
    on_check_success(ctx, resp, ev.rtt, now);
}

void Agent::fail_check(const CheckCtx& ctx, base::Instant now) {
    Pair& p = pairs_[ctx.pair];
    p.state = PairState::Failed;
    if (ctx.kind == CheckKind::Nomination) {
        p.valid = false;
        nominating_ = false;
        update_route();
    }
    maybe_nominate(now);
    check_failure(now);
}

void Agent::on_check_success(const CheckCtx& ctx, const stun::Message& resp, base::Duration rtt,
                             base::Instant now) {
    ++stats_.responses_received;
    if (ctx.kind == CheckKind::Consent) {
        // RFC 7675 §5.1: an authenticated response on the selected pair renews consent.
        if (selected_ && *selected_ == ctx.pair) {
            ++stats_.consent_responses;
            consent_expiry_ = now + config_.consent_timeout;
            pairs_[ctx.pair].rtt = rtt;
        }
        return;
    }
    auto mapped = resp.get_xor_address(stun::attr::XorMappedAddress);
    if (!mapped) {
        ++stats_.malformed;
        fail_check(ctx, now);
        return;
    }
    std::size_t pi = ctx.pair;
    pairs_[pi].state = PairState::Succeeded;
    pairs_[pi].rtt = rtt;
    std::size_t checked_local = pairs_[pi].local;
    std::size_t remote = pairs_[pi].remote;
    // §7.2.5.3.1: the mapped address names the local candidate; an unknown one is a new
    // peer-reflexive local candidate with the priority we sent in the check.
    std::optional<std::size_t> local;
    for (std::size_t l = 0; l < local_.size(); ++l)
        if (local_[l].address == *mapped && local_[l].base == local_[checked_local].base)
            local = l;
    if (!local) {
        Candidate c;
        c.foundation = compute_foundation(CandidateType::PeerReflexive,
                                          local_[checked_local].base.ip(), std::nullopt);
        c.priority = compute_priority(CandidateType::PeerReflexive, local_pref_[checked_local], 1);
        c.address = *mapped;
        c.type = CandidateType::PeerReflexive;
        c.base = local_[checked_local].base;
        local_.push_back(std::move(c));
        local_pref_.push_back(local_pref_[checked_local]);
        local_paired_.push_back(false);
        local = local_.size() - 1;
    }
    // §7.2.5.3.2: the valid pair is (that local candidate, the checked remote).
    std::size_t v = pi;
    if (*local != checked_local) {
        auto found = find_pair(*local, remote);
        if (!found)
            found = add_pair(*local, remote, false);
        if (!found) {
            ++stats_.malformed; // checklist full: no room for the valid pair
            return;
        }
        v = *found;
    }
    pairs_[v].state = PairState::Succeeded;
    pairs_[v].valid = true;
    pairs_[v].rtt = rtt;
    pairs_[pi].valid_pair = v;
    if (first_valid_at_ == base::kNever)
        first_valid_at_ = now;
    unfreeze_foundation(pairs_[pi]);
    // §8.1.1 (controlling: our USE-CANDIDATE check succeeded) and §7.3.1.5 (controlled: the
    // peer's USE-CANDIDATE arrived while our check was under way).
    bool nominated_by_us =
        ctx.kind == CheckKind::Nomination && ctx.sent_controlling && controlling_;
    if (nominated_by_us) {
        nominating_ = false;
        pairs_[v].nominated = true;
    }
    if (!controlling_ && pairs_[pi].nominate_on_success)
        pairs_[v].nominated = true;
    update_route();
    update_selection(now);
    maybe_nominate(now);
}

std::optional<std::size_t> Agent::best_valid_pair() const {
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < pairs_.size(); ++i)
        if (pairs_[i].valid && pairs_[i].state == PairState::Succeeded &&
            (!best || pairs_[i].priority > pairs_[*best].priority))
            best = i;
    return best;
}

void Agent::maybe_nominate(base::Instant now) {
    if (!controlling_ || has_selected_ || nominating_ || !checks_allowed())
        return;
    const std::optional<std::size_t> best = best_valid_pair();
    if (!best) {
        nominate_at_ = base::kNever;
        return;
    }
    // Nominate at once when nothing better is still pending; otherwise give better pairs
    // kNominationSettle to succeed (a LAN answers within a few ms).
    bool better_pending = std::any_of(pairs_.begin(), pairs_.end(), [&](const Pair& p) {
        return p.in_checklist && p.priority > pairs_[*best].priority &&
               (p.state == PairState::Frozen || p.state == PairState::Waiting ||
                p.state == PairState::InProgress);
    });
    if (better_pending && now < first_valid_at_ + kNominationSettle) {
        nominate_at_ = first_valid_at_ + kNominationSettle;
        return;
    }
    nominate_at_ = base::kNever;
    nominating_ = true;
    send_check(*best, CheckKind::Nomination, now);
}

void Agent::update_selection(base::Instant now) {
    if (state_ == State::Failed || state_ == State::Closed)
        return;
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < pairs_.size(); ++i)
        if (pairs_[i].nominated && pairs_[i].valid && pairs_[i].state == PairState::Succeeded &&
            (!best || pairs_[i].priority > pairs_[*best].priority))
            best = i;
    if (!best || (selected_ && *selected_ == *best))
        return;
    selected_ = best;
    has_selected_ = true;
    set_route(*best);
    if (route_relayed_ && turn_)
        turn_->bind_channel(route_remote_, now); // RFC 8656 §12: cheaper framing for the data
    events_.push_back(event::SelectedPair{make_pair(*best)});
    consent_expiry_ = now + config_.consent_timeout;
    consent_next_ = now + consent_jitter();
    connect_deadline_ = base::kNever;
    nominate_at_ = base::kNever;
    if (state_ != State::Connected)
        set_state(State::Connected, "");
}

void Agent::set_route(std::size_t pair) {
    const Pair& p = pairs_[pair];
    route_pair_ = pair;
    has_route_ = true;
    route_local_base_ = local_[p.local].base;
    route_remote_ = remote_[p.remote].address;
    route_relayed_ = is_relay_base(route_local_base_);
}

void Agent::update_route() {
    if (has_selected_ || state_ == State::Failed || state_ == State::Closed)
        return; // the selected pair is the route (§12.1: only it, once selected)
    const std::optional<std::size_t> best = best_valid_pair();
    if (!best) {
        has_route_ = false;
        return;
    }
    if (!has_route_ || route_pair_ != *best)
        RTCAT_DEBUG(kLog, "sending on valid pair {} -> {} until one is selected",
                    local_[pairs_[*best].local].address.to_string(),
                    remote_[pairs_[*best].remote].address.to_string());
    set_route(*best);
}

void Agent::check_failure(base::Instant now) {
    if (has_selected_ || state_ != State::Checking || !end_of_remote_ || !gathering_done_ ||
        pairs_.empty() || !triggered_.empty() || nominating_)
        return;
    bool all_failed = std::all_of(pairs_.begin(), pairs_.end(), [](const Pair& p) {
        return !p.in_checklist || p.state == PairState::Failed;
    });
    bool any_valid =
        std::any_of(pairs_.begin(), pairs_.end(), [](const Pair& p) { return p.valid; });
    if (!all_failed || any_valid)
        return;
    if (now < connect_deadline_) {
        // Every pair ran out of retransmissions, but a lossy path can eat seven in a row while
        // the peer is still checking: start another round rather than give up before
        // connect_timeout (browsers likewise keep checking for their whole ICE timeout).
        for (auto& p : pairs_) {
            if (p.in_checklist && p.state == PairState::Failed)
                p.state = PairState::Waiting;
        }
        ++stats_.check_rounds;
        return;
    }
    set_state(State::Failed, "no candidate pair succeeded");
}

void Agent::switch_role(base::Instant now) {
    controlling_ = !controlling_;
    RTCAT_DEBUG(kLog, "role conflict: now {}", controlling_ ? "controlling" : "controlled");
    // §7.3.1.1: pair priorities depend on the role.
    recompute_priorities();
    update_route();
    nominating_ = false;
    nominate_at_ = base::kNever;
    maybe_nominate(now);
}

CandidatePair Agent::make_pair(std::size_t i) const {
    const Pair& p = pairs_[i];
    return CandidatePair{local_[p.local], remote_[p.remote], p.priority, p.nominated, p.rtt};
}

// --- inputs ---------------------------------------------------------------------------------

void Agent::set_remote_credentials(std::string ufrag, std::string pwd, base::Instant now) {
    now_ = now;
    if (state_ == State::Closed || state_ == State::Failed)
        return;
    // An ICE restart (new credentials mid-session) is not supported: the first ones stay.
    if (remote_ufrag_)
        return;
    remote_ufrag_ = std::move(ufrag);
    remote_key_ = stun::short_term_key(pwd);
    if (state_ == State::New) {
        set_state(State::Checking, "");
        connect_deadline_ = now + config_.connect_timeout;
    }
    pump(now);
}

void Agent::add_remote_candidate(const Candidate& c, base::Instant now) {
    now_ = now;
    if (state_ == State::Closed || state_ == State::Failed || c.component != 1 ||
        c.address.ip().is_unspecified() || c.address.port() == 0) {
        ++stats_.remote_candidates_ignored;
        return;
    }
    if (auto r = remote_by_address(c.address)) {
        Candidate& known = remote_[*r];
        if (known.type != CandidateType::PeerReflexive)
            return; // a duplicate
        // A peer-reflexive candidate now signalled: it takes the signalled attributes and is
        // paired like any other remote candidate.
        known.type = c.type;
        known.foundation = c.foundation;
        known.priority = c.priority;
        known.related = c.related;
        recompute_priorities();
        form_pairs_for_remote(*r);
        pump(now);
        return;
    }
    if (remote_.size() >= kMaxRemoteCandidates) {
        ++stats_.remote_candidates_ignored;
        return;
    }
    Candidate copy = c;
    copy.base = copy.address;
    remote_.push_back(std::move(copy));
    form_pairs_for_remote(remote_.size() - 1);
    pump(now);
}

void Agent::end_of_remote_candidates(base::Instant now) {
    now_ = now;
    end_of_remote_ = true;
    check_failure(now);
    pump(now);
}

std::optional<net::Datagram> Agent::handle_receive(net::Datagram&& d, base::Instant now) {
    // Fast path: application data on the selected pair (not STUN: RFC 7983 first byte > 3).
    if (has_selected_ && !d.payload.empty() && d.payload[0] > 3 && d.source == route_remote_ &&
        d.destination == route_local_base_) [[likely]]
        return std::move(d);
    now_ = now;
    auto out = receive_slow(std::move(d), now);
    pump(now);
    return out;
}

std::optional<net::Datagram> Agent::receive_slow(net::Datagram&& d, base::Instant now) {
    if (turn_ && d.destination == turn_local_ && d.source == config_.turn->address) {
        if (turn_->handle_receive(d, now)) {
            std::optional<net::Datagram> out;
            while (auto ev = turn_->poll_event()) {
                auto* data = std::get_if<stun::turn_event::Data>(&*ev);
                if (data && relay_local_ && relayed_ && state_ != State::Closed) {
                    auto r = receive_on_local(
                        net::Datagram{data->peer, *relayed_, std::move(data->data)}, *relay_local_,
                        now);
                    if (r)
                        out = std::move(r);
                } else if (!data) {
                    on_turn_event(std::move(*ev), now);
                }
            }
            return out;
        }
        // Not the TURN client's (a Binding answer to gathering from the same server): on.
    }
    if (state_ == State::Closed)
        return std::nullopt;
    auto local = local_for_destination(d.destination);
    if (!local) {
        ++stats_.unknown_source_drops;
        return std::nullopt;
    }
    return receive_on_local(std::move(d), *local, now);
}

std::optional<net::Datagram> Agent::receive_on_local(net::Datagram&& d, std::size_t local,
                                                     base::Instant now) {
    if (net::classify(d.payload) != net::PacketKind::Stun) {
        if (!local_paired_[local]) {
            ++stats_.policy_drops;
            return std::nullopt;
        }
        // RFC 8445 §11: data may arrive on any pair before or after nomination; we accept it
        // from any remote candidate (signalled or learned from an authenticated check).
        if (remote_by_address(d.source))
            return std::move(d);
        ++stats_.unknown_source_drops;
        return std::nullopt;
    }
    auto decoded = stun::decode(d.payload);
    if (!decoded.ok()) {
        ++stats_.malformed;
        return std::nullopt;
    }
    const stun::Message& msg = *decoded;
    switch (msg.cls()) {
    case stun::Class::Request:
        if (msg.method() != stun::Method::Binding) {
            ++stats_.bad_requests;
            return std::nullopt;
        }
        if (!local_paired_[local]) {
            ++stats_.policy_drops; // relay-only: the host socket is not a candidate
            return std::nullopt;
        }
        handle_request(msg, d.payload, d.source, local, now);
        break;
    case stun::Class::Success:
    case stun::Class::Error:
        handle_response(msg, d.payload, d, now);
        break;
    case stun::Class::Indication:
        break; // Binding indications are keepalives (RFC 8445 §11): nothing to do
    }
    return std::nullopt;
}

void Agent::respond(const stun::Message& resp, const base::Bytes* key, const net::SocketAddr& to,
                    std::size_t local) {
    stun::EncodeOptions opts;
    opts.integrity_key = key;
    opts.fingerprint = true;
    transmit_from(local_[local].base, to, stun::encode(resp, opts), now_);
}

void Agent::handle_request(const stun::Message& msg, base::ByteView raw,
                           const net::SocketAddr& from, std::size_t local, base::Instant now) {
    // RFC 8445 §7.3: ICE requests carry FINGERPRINT (decode() already verified its value).
    if (!msg.has(stun::attr::Fingerprint)) {
        ++stats_.no_fingerprint;
        return;
    }
    auto username = msg.get_string(stun::attr::Username);
    if (!username || !msg.has(stun::attr::MessageIntegrity)) {
        // RFC 8489 §9.1.3: missing USERNAME or MESSAGE-INTEGRITY → 400, unsigned.
        ++stats_.bad_requests;
        respond(stun::Message::error_for(msg, 400, "Bad Request"), nullptr, from, local);
        return;
    }
    auto colon = username->find(':');
    if (colon == std::string::npos ||
        std::string_view(*username).substr(0, colon) != config_.local_ufrag ||
        stun::check_integrity(raw, local_key_) != stun::IntegrityResult::Valid) {
        // RFC 8489 §9.1.3: unknown username or bad integrity → 401 without integrity. The
        // request is otherwise ignored: no candidate, no pair, no nomination.
        ++stats_.bad_integrity;
        respond(stun::Message::error_for(msg, 401, "Unauthenticated"), nullptr, from, local);
        return;
    }
    auto unknown = msg.unknown_comprehension_required();
    if (!unknown.empty()) {
        auto err = stun::Message::error_for(msg, 420, "Unknown Attribute");
        err.add_unknown_attributes(unknown);
        respond(err, &local_key_, from, local);
        return;
    }
    auto prio = msg.get_u32(stun::attr::Priority);
    if (!prio || *prio == 0) {
        ++stats_.bad_requests; // RFC 8445 §7.3: PRIORITY is mandatory
        respond(stun::Message::error_for(msg, 400, "Bad Request"), &local_key_, from, local);
        return;
    }
    ++stats_.checks_received;

    // §7.3.1.1: role conflicts.
    auto their_controlling = msg.get_u64(stun::attr::IceControlling);
    auto their_controlled = msg.get_u64(stun::attr::IceControlled);
    if (controlling_ && their_controlling) {
        ++stats_.role_conflicts;
        if (config_.tie_breaker >= *their_controlling) {
            respond(stun::Message::error_for(msg, 487, "Role Conflict"), &local_key_, from, local);
            return;
        }
        switch_role(now);
    } else if (!controlling_ && their_controlled) {
        ++stats_.role_conflicts;
        if (config_.tie_breaker >= *their_controlled) {
            switch_role(now);
        } else {
            respond(stun::Message::error_for(msg, 487, "Role Conflict"), &local_key_, from, local);
            return;
        }
    }

    // §7.3.1.3: an unknown source is a peer-reflexive remote candidate (not paired with
    // every local candidate: only the triggered check's pair is formed).
    auto remote = remote_by_address(from);
    if (!remote && remote_.size() < kMaxRemoteCandidates) {
        Candidate c;
        c.foundation = "p" + std::to_string(next_prflx_foundation_++);
        c.priority = *prio;
        c.address = from;
        c.type = CandidateType::PeerReflexive;
        c.base = from;
        remote_.push_back(std::move(c));
        remote = remote_.size() - 1;
        ++stats_.prflx_remote;
    }

    // §7.3.1.2: the success response, XOR-MAPPED-ADDRESS = the source, signed with our pwd.
    auto ok = stun::Message::success_for(msg);
    ok.add_xor_address(stun::attr::XorMappedAddress, from);
    respond(ok, &local_key_, from, local);

    if (!remote) {
        ++stats_.remote_candidates_ignored;
        return;
    }
    // §7.3.1.4 triggered check, §7.3.1.5 nomination by the peer.
    auto pi = add_pair(local, *remote, true);
    if (!pi)
        return;
    bool use_candidate = !controlling_ && msg.has(stun::attr::UseCandidate);
    Pair& p = pairs_[*pi];
    switch (p.state) {
    case PairState::Succeeded:
        if (use_candidate) {
            std::size_t v = p.valid_pair.value_or(*pi);
            pairs_[v].nominated = true;
            update_selection(now);
        }
        break;
    case PairState::InProgress:
        if (use_candidate)
            p.nominate_on_success = true;
        break;
    case PairState::Frozen:
    case PairState::Waiting:
    case PairState::Failed:
        if (use_candidate)
            p.nominate_on_success = true;
        p.state = PairState::Waiting;
        if (std::find(triggered_.begin(), triggered_.end(), *pi) == triggered_.end())
            triggered_.push_back(*pi);
        break;
    }
}

void Agent::handle_response(const stun::Message& msg, base::ByteView raw, const net::Datagram& d,
                            base::Instant now) {
    auto it = checks_.find(msg.transaction_id());
    if (it == checks_.end()) {
        if (gathers_.contains(msg.transaction_id())) {
            (void)gather_tx_.handle_response(msg, d.source, now);
            return;
        }
        ++stats_.unknown_transaction;
        return;
    }
    // §7.2.5: a response is authenticated with the remote password; anything else is
    // ignored as if it never arrived (the check keeps retransmitting).
    if (stun::check_integrity(raw, remote_key_) != stun::IntegrityResult::Valid) {
        ++stats_.bad_integrity;
        return;
    }
    if (!msg.unknown_comprehension_required().empty()) {
        ++stats_.malformed;
        return;
    }
    // §7.2.5.2.1: the response must come from where the request went, to where it came from.
    const CheckCtx& ctx = it->second;
    if (d.source != ctx.remote || d.destination != ctx.local_base) {
        ++stats_.asymmetric_responses;
        CheckCtx copy = ctx;
        check_tx_.cancel(msg.transaction_id());
        checks_.erase(it);
        if (copy.kind != CheckKind::Consent)
            fail_check(copy, now);
        return;
    }
    (void)check_tx_.handle_response(msg, d.source, now);
}

void Agent::transmit_from(const net::SocketAddr& base, const net::SocketAddr& to,
                          base::Bytes payload, base::Instant now) {
    if (is_relay_base(base)) {
        if (turn_)
            (void)turn_->send(to, payload, now);
        return;
    }
    transmits_.push_back(net::Transmit{base, to, std::move(payload)});
}

std::optional<std::size_t> Agent::local_for_destination(const net::SocketAddr& dest) const {
    for (std::size_t l = 0; l < local_.size(); ++l)
        if (local_[l].type == CandidateType::Host && local_[l].base == dest)
            return l;
    return std::nullopt;
}

std::optional<std::size_t> Agent::remote_by_address(const net::SocketAddr& a) const {
    for (std::size_t r = 0; r < remote_.size(); ++r)
        if (remote_[r].address == a)
            return r;
    return std::nullopt;
}

bool Agent::is_relay_base(const net::SocketAddr& a) const {
    return relayed_ && *relayed_ == a;
}

void Agent::handle_timeout(base::Instant now) {
    now_ = now;
    check_tx_.handle_timeout(now);
    gather_tx_.handle_timeout(now);
    if (turn_)
        turn_->handle_timeout(now);
    if (state_ != State::Closed) {
        if (now >= gathering_deadline_) {
            // Gathering gives up: a late TURN allocation still adds its candidate (trickled).
            for (const auto& [tid, ctx] : gathers_)
                gather_tx_.cancel(tid);
            gathers_.clear();
            turn_pending_ = false;
            finish_gathering_if_done();
        }
        if (now >= nominate_at_) {
            nominate_at_ = base::kNever;
            maybe_nominate(now);
        }
        if (now >= consent_next_ || now >= consent_expiry_)
            on_consent_timer(now);
        if (now >= connect_deadline_ && !has_selected_ && state_ == State::Checking)
            set_state(State::Failed, "no candidate pair succeeded");
    }
    pump(now);
}

void Agent::on_consent_timer(base::Instant now) {
    if (!has_selected_ || state_ != State::Connected) {
        consent_next_ = consent_expiry_ = base::kNever;
        return;
    }
    if (now >= consent_expiry_) {
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(config_.consent_timeout);
        set_state(State::Failed, fmt::format("consent lost (no response for {} s)", secs.count()));
        return;
    }
    if (now >= consent_next_) {
        send_check(*selected_, CheckKind::Consent, now);
        consent_next_ = now + consent_jitter();
    }
}

base::Duration Agent::consent_jitter() {
    // xorshift64*: deterministic for a given tie-breaker, good enough to de-synchronise.
    rng_state_ ^= rng_state_ >> 12;
    rng_state_ ^= rng_state_ << 25;
    rng_state_ ^= rng_state_ >> 27;
    std::uint64_t r = rng_state_ * 2685821657736338717ull;
    double unit = static_cast<double>(r >> 11) * 0x1.0p-53;
    double factor = 0.8 + 0.4 * unit; // RFC 7675 §5.1
    return base::Duration(
        static_cast<std::int64_t>(static_cast<double>(config_.consent_interval.count()) * factor));
}

void Agent::set_state(State s, std::string reason) {
    if (state_ == s)
        return;
    state_ = s;
    if (s == State::Failed || s == State::Closed) {
        // RFC 7675 §5.1: no more sending once consent is gone; nothing else runs either.
        has_selected_ = false;
        has_route_ = false;
        for (const auto& [tid, ctx] : checks_)
            check_tx_.cancel(tid);
        checks_.clear();
        triggered_.clear();
        next_check_at_ = nominate_at_ = connect_deadline_ = base::kNever;
        consent_next_ = consent_expiry_ = base::kNever;
    }
    events_.push_back(event::StateChanged{s, std::move(reason)});
}

bool Agent::send(base::Bytes payload, base::Instant now) {
    if (!has_route_ || now >= consent_expiry_) [[unlikely]] {
        ++stats_.send_dropped;
        return false;
    }
    if (!has_selected_) [[unlikely]]
        ++stats_.sent_before_selection;
    if (!route_relayed_) [[likely]] {
        transmits_.push_back(net::Transmit{route_local_base_, route_remote_, std::move(payload)});
        return true;
    }
    if (!turn_->send(route_remote_, payload, now)) {
        ++stats_.send_dropped;
        return false;
    }
    while (auto t = turn_->poll_transmit())
        transmits_.push_back(std::move(*t));
    return true;
}

void Agent::close(base::Instant now) {
    now_ = now;
    if (state_ == State::Closed)
        return;
    for (const auto& [tid, ctx] : gathers_)
        gather_tx_.cancel(tid);
    gathers_.clear();
    if (turn_)
        turn_->release(now);
    set_state(State::Closed, "closed");
    pump(now);
}

void Agent::pump(base::Instant now) {
    for (;;) {
        bool progress = false;
        while (auto ev = gather_tx_.poll_event()) {
            on_gather_event(*ev);
            progress = true;
        }
        while (auto ev = check_tx_.poll_event()) {
            on_check_event(*ev, now);
            progress = true;
        }
        if (turn_) {
            while (auto ev = turn_->poll_event()) {
                on_turn_event(std::move(*ev), now);
                progress = true;
            }
        }
        while (auto t = check_tx_.poll_transmit()) {
            transmit_from(t->source, t->destination, std::move(t->payload), now);
            progress = true;
        }
        while (auto t = gather_tx_.poll_transmit()) {
            transmits_.push_back(std::move(*t));
            progress = true;
        }
        if (turn_) {
            while (auto t = turn_->poll_transmit()) {
                transmits_.push_back(std::move(*t));
                progress = true;
            }
        }
        schedule_checks(now);
        if (next_check_at_ <= now) {
            on_pacing_timer(now);
            progress = true;
        }
        if (!progress)
            break;
    }
    stats_.check_retransmissions = check_tx_.retransmissions_sent();
}

std::optional<net::Transmit> Agent::poll_transmit() {
    if (transmits_.empty())
        return std::nullopt;
    auto t = std::move(transmits_.front());
    transmits_.pop_front();
    return t;
}

std::optional<Event> Agent::poll_event() {
    if (events_.empty())
        return std::nullopt;
    auto e = std::move(events_.front());
    events_.pop_front();
    return e;
}

base::Instant Agent::poll_timeout() const {
    base::Instant t =
        std::min({check_tx_.poll_timeout(), gather_tx_.poll_timeout(), gathering_deadline_,
                  next_check_at_, nominate_at_, consent_next_, consent_expiry_, connect_deadline_});
    if (turn_)
        t = std::min(t, turn_->poll_timeout());
    return t;
}

std::optional<CandidatePair> Agent::selected_pair() const {
    if (!has_selected_ || !selected_)
        return std::nullopt;
    return make_pair(*selected_);
}

std::vector<Agent::PairInfo> Agent::pairs() const {
    std::vector<PairInfo> out;
    for (std::size_t i = 0; i < pairs_.size(); ++i) {
        std::string_view st = "frozen";
        switch (pairs_[i].state) {
        case PairState::Frozen:
            st = "frozen";
            break;
        case PairState::Waiting:
            st = "waiting";
            break;
        case PairState::InProgress:
            st = "in-progress";
            break;
        case PairState::Succeeded:
            st = "succeeded";
            break;
        case PairState::Failed:
            st = "failed";
            break;
        }
        out.push_back(PairInfo{make_pair(i), st, pairs_[i].valid});
    }
    return out;
}

} // namespace rtcat::ice
