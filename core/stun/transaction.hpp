#pragma once
// STUN client transactions over UDP (RFC 8489 §6.2.1, §6.3): retransmission on an RTO that
// doubles after each transmission, Rc transmissions in all, then a final wait of Rm * RTO
// before the transaction times out. Responses are matched by transaction id only.
//
// Sans-IO: start() / handle_response() / handle_timeout() / cancel() mutate the state; after
// each call the caller drains poll_transmit() and poll_event(), then sleeps until
// poll_timeout(). Time is passed in as `now`; nothing here reads a clock.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/base/time.hpp"
#include "core/net/address.hpp"
#include "core/net/datagram.hpp"
#include "core/stun/message.hpp"

namespace rtcat::stun {

// RFC 8489 §6.2.1 defaults: RTO 500 ms, Rc = 7, Rm = 16, i.e. transmissions at 0, 0.5, 1.5,
// 3.5, 7.5, 15.5, 31.5 s and a timeout at 39.5 s.
struct RetransmitConfig {
    base::Duration rto = base::ms(500);
    int rc = 7;  // transmissions in all, the first included
    int rm = 16; // after the last transmission, wait rm * rto
};

struct TransactionEvent {
    enum class Kind { Response, Timeout };

    TransactionId transaction_id{};
    std::uint64_t user_tag = 0;
    Kind kind = Kind::Timeout;
    Message response;     // Kind::Response only
    net::SocketAddr from; // Kind::Response: where the response came from
    // Time from the *last* transmission to the response. When a retransmission happened the
    // response may answer an earlier copy, so the sample is ambiguous (Karn's algorithm,
    // RFC 6298 §3 as used by RFC 8489 §6.2.1) and must not feed an RTO estimator.
    base::Duration rtt{0};
    bool rtt_ambiguous = false;
    int retransmissions = 0; // transmissions beyond the first
};

class TransactionClient {
public:
    // Starts a transaction and queues its first transmission. `wire` is `request` encoded
    // (with whatever integrity the caller chose); the same bytes are retransmitted.
    // Starting a transaction id that is already pending is a programming error.
    void start(const Message& request, base::Bytes wire, net::SocketAddr destination,
               net::SocketAddr source, base::Instant now, RetransmitConfig cfg = {},
               std::uint64_t user_tag = 0);

    // Offers a received, decoded message. Returns true when it was a success or error
    // response to a pending transaction (which then completes with a Response event); false
    // otherwise, and the caller counts and drops it. The source address is not checked: RFC
    // 5780 CHANGE-REQUEST answers come from the alternate address, so `from` is reported.
    bool handle_response(const Message& msg, net::SocketAddr from, base::Instant now);

    // Retransmits or times out every transaction whose deadline is at or before `now`.
    void handle_timeout(base::Instant now);

    // Forgets a pending transaction: no event, no further transmission (also drops its
    // not-yet-polled transmissions). Unknown ids are ignored.
    void cancel(const TransactionId& tid);

    std::optional<net::Transmit> poll_transmit();
    std::optional<TransactionEvent> poll_event();
    // The earliest retransmission or timeout deadline; base::kNever when idle.
    base::Instant poll_timeout() const;

    std::size_t pending() const { return pending_.size(); }
    bool is_pending(const TransactionId& tid) const;
    // Total retransmissions sent (all transactions), for stats.
    std::uint64_t retransmissions_sent() const { return retransmissions_sent_; }

private:
    struct Pending {
        TransactionId tid{};
        std::uint64_t user_tag = 0;
        base::Bytes wire;
        net::SocketAddr destination;
        net::SocketAddr source;
        RetransmitConfig cfg;
        int transmissions = 0;      // sent so far
        base::Duration interval{0}; // wait after the latest transmission
        base::Instant last_sent{};  // time of the latest transmission
        base::Instant deadline{};   // next retransmission, or the timeout
    };
    struct Queued {
        TransactionId tid{};
        net::Transmit transmit;
    };

    void transmit(Pending& p, base::Instant now);
    std::vector<Pending>::iterator find(const TransactionId& tid);

    // A few concurrent transactions at most (RFC 8489 §6.2 limits a client to 10 outstanding
    // to one server), so a vector scanned linearly beats any map.
    std::vector<Pending> pending_;
    std::deque<Queued> transmits_;
    std::deque<TransactionEvent> events_;
    std::uint64_t retransmissions_sent_ = 0;
};

} // namespace rtcat::stun
