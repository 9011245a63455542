#include "core/stun/transaction.hpp"

#include <algorithm>
#include <utility>

#include "core/base/check.hpp"

namespace rtcat::stun {

namespace {
// RTO doubles after each transmission; beyond this many doublings a microsecond count would
// overflow long before anyone waited for it.
constexpr int kMaxTransmissions = 32;
} // namespace

void TransactionClient::start(const Message& request, base::Bytes wire, net::SocketAddr destination,
                              net::SocketAddr source, base::Instant now, RetransmitConfig cfg,
                              std::uint64_t user_tag) {
    RTCAT_CHECK(cfg.rc >= 1 && cfg.rc <= kMaxTransmissions, "RetransmitConfig::rc out of range");
    RTCAT_CHECK(cfg.rm >= 0, "RetransmitConfig::rm is negative");
    RTCAT_CHECK(cfg.rto > base::Duration::zero(), "RetransmitConfig::rto must be positive");
    RTCAT_CHECK(request.cls() == Class::Request, "only requests start client transactions");
    RTCAT_CHECK(!is_pending(request.transaction_id()), "transaction id already pending");

    Pending p;
    p.tid = request.transaction_id();
    p.user_tag = user_tag;
    p.wire = std::move(wire);
    p.destination = destination;
    p.source = source;
    p.cfg = cfg;
    pending_.push_back(std::move(p));
    transmit(pending_.back(), now);
}

void TransactionClient::transmit(Pending& p, base::Instant now) {
    transmits_.push_back(Queued{p.tid, net::Transmit{p.source, p.destination, p.wire}});
    if (p.transmissions > 0)
        ++retransmissions_sent_;
    ++p.transmissions;
    p.last_sent = now;
    // RFC 8489 §6.2.1: the first retransmission waits RTO and each later one twice the
    // previous wait; after the Rc-th transmission the client waits Rm * RTO for a response.
    if (p.transmissions == 1)
        p.interval = p.cfg.rto;
    else if (p.transmissions < p.cfg.rc)
        p.interval *= 2;
    if (p.transmissions >= p.cfg.rc)
        p.interval = p.cfg.rto * p.cfg.rm;
    // Deadlines run from the actual send time: a driver that wakes late still gives the
    // server a full interval to answer this copy.
    p.deadline = now + p.interval;
}

std::vector<TransactionClient::Pending>::iterator
TransactionClient::find(const TransactionId& tid) {
    return std::find_if(pending_.begin(), pending_.end(),
                        [&](const Pending& p) { return p.tid == tid; });
}

bool TransactionClient::is_pending(const TransactionId& tid) const {
    return std::any_of(pending_.begin(), pending_.end(),
                       [&](const Pending& p) { return p.tid == tid; });
}

bool TransactionClient::handle_response(const Message& msg, net::SocketAddr from,
                                        base::Instant now) {
    // RFC 8489 §6.3: only success and error responses complete a client transaction.
    if (msg.cls() != Class::Success && msg.cls() != Class::Error)
        return false;
    auto it = find(msg.transaction_id());
    if (it == pending_.end())
        return false;

    TransactionEvent ev;
    ev.transaction_id = it->tid;
    ev.user_tag = it->user_tag;
    ev.kind = TransactionEvent::Kind::Response;
    ev.response = msg;
    ev.from = from;
    ev.rtt = now - it->last_sent;
    ev.retransmissions = it->transmissions - 1;
    ev.rtt_ambiguous = ev.retransmissions > 0;
    pending_.erase(it);
    events_.push_back(std::move(ev));
    return true;
}

void TransactionClient::handle_timeout(base::Instant now) {
    // Fire due transactions in deadline order (ties in start order) so transmissions and
    // events come out in the order a real clock would have produced them.
    std::vector<std::size_t> due;
    for (std::size_t i = 0; i < pending_.size(); ++i)
        if (pending_[i].deadline <= now)
            due.push_back(i);
    std::stable_sort(due.begin(), due.end(), [&](std::size_t a, std::size_t b) {
        return pending_[a].deadline < pending_[b].deadline;
    });

    std::vector<TransactionId> timed_out;
    for (auto i : due) {
        Pending& p = pending_[i];
        if (p.transmissions < p.cfg.rc) {
            transmit(p, now);
            continue;
        }
        TransactionEvent ev;
        ev.transaction_id = p.tid;
        ev.user_tag = p.user_tag;
        ev.kind = TransactionEvent::Kind::Timeout;
        ev.rtt_ambiguous = p.transmissions > 1;
        ev.retransmissions = p.transmissions - 1;
        events_.push_back(std::move(ev));
        timed_out.push_back(p.tid);
    }
    for (const auto& tid : timed_out)
        pending_.erase(find(tid));
}

void TransactionClient::cancel(const TransactionId& tid) {
    auto it = find(tid);
    if (it == pending_.end())
        return;
    pending_.erase(it);
    std::erase_if(transmits_, [&](const Queued& q) { return q.tid == tid; });
}

std::optional<net::Transmit> TransactionClient::poll_transmit() {
    if (transmits_.empty())
        return std::nullopt;
    net::Transmit t = std::move(transmits_.front().transmit);
    transmits_.pop_front();
    return t;
}

std::optional<TransactionEvent> TransactionClient::poll_event() {
    if (events_.empty())
        return std::nullopt;
    TransactionEvent ev = std::move(events_.front());
    events_.pop_front();
    return ev;
}

base::Instant TransactionClient::poll_timeout() const {
    base::Instant next = base::kNever;
    for (const auto& p : pending_)
        next = std::min(next, p.deadline);
    return next;
}

} // namespace rtcat::stun
