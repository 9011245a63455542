// STUN client transactions (RFC 8489 §6.2.1) on virtual time, plus a smoke test of the
// message codec's integrity/fingerprint path the transaction and TURN layers depend on.

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/time.hpp"
#include "core/stun/message.hpp"
#include "core/stun/transaction.hpp"

namespace rtcat::stun {
namespace {

using base::Instant;
using base::ms;

const net::SocketAddr kServer(net::IpAddr::v4(192, 0, 2, 1), 3478);
const net::SocketAddr kAlternate(net::IpAddr::v4(192, 0, 2, 2), 3479);
const net::SocketAddr kLocal(net::IpAddr::v4(10, 0, 0, 1), 5000);

Instant at(std::int64_t millis) {
    return Instant{} + ms(millis);
}
std::int64_t millis(Instant t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - Instant{}).count();
}

struct Started {
    Message request;
    base::Bytes wire;
};

Started start(TransactionClient& tc, Instant now, RetransmitConfig cfg = {},
              std::uint64_t tag = 0) {
    Started s{Message::request(Method::Binding), {}};
    s.wire = encode(s.request);
    tc.start(s.request, s.wire, kServer, kLocal, now, cfg, tag);
    return s;
}

// Runs the client on its own deadlines until idle (or `until`), recording when each
// transmission left and when it gave up.
struct Trace {
    std::vector<std::int64_t> sent_ms;
    std::vector<TransactionEvent> events;
    std::vector<std::int64_t> event_ms;
};

Trace run(TransactionClient& tc, Instant now, Instant until = base::kNever) {
    Trace tr;
    for (;;) {
        while (auto t = tc.poll_transmit()) {
            EXPECT_EQ(t->destination, kServer);
            EXPECT_EQ(t->source, kLocal);
            tr.sent_ms.push_back(millis(now));
        }
        while (auto ev = tc.poll_event()) {
            tr.events.push_back(std::move(*ev));
            tr.event_ms.push_back(millis(now));
        }
        Instant next = tc.poll_timeout();
        if (next == base::kNever || next > until)
            break;
        EXPECT_GE(next, now);
        now = next;
        tc.handle_timeout(now);
    }
    return tr;
}

TEST(StunTransaction, DefaultScheduleRetransmitsAndTimesOutAt39500ms) {
    TransactionClient tc;
    auto s = start(tc, at(0), {}, 42);
    EXPECT_EQ(tc.pending(), 1u);
    auto tr = run(tc, at(0));
    EXPECT_EQ(tr.sent_ms, (std::vector<std::int64_t>{0, 500, 1500, 3500, 7500, 15500, 31500}));
    ASSERT_EQ(tr.events.size(), 1u);
    EXPECT_EQ(tr.event_ms[0], 39500);
    EXPECT_EQ(tr.events[0].kind, TransactionEvent::Kind::Timeout);
    EXPECT_EQ(tr.events[0].transaction_id, s.request.transaction_id());
    EXPECT_EQ(tr.events[0].user_tag, 42u);
    EXPECT_EQ(tr.events[0].retransmissions, 6);
    EXPECT_EQ(tc.pending(), 0u);
    EXPECT_EQ(tc.poll_timeout(), base::kNever);
    EXPECT_EQ(tc.retransmissions_sent(), 6u);
}

TEST(StunTransaction, CustomSchedule) {
    TransactionClient tc;
    start(tc, at(1000), RetransmitConfig{ms(100), 3, 4});
    auto tr = run(tc, at(1000));
    EXPECT_EQ(tr.sent_ms, (std::vector<std::int64_t>{1000, 1100, 1300}));
    ASSERT_EQ(tr.events.size(), 1u);
    EXPECT_EQ(tr.event_ms[0], 1700); // 1300 + 4 * 100
    EXPECT_EQ(tr.events[0].kind, TransactionEvent::Kind::Timeout);
}

TEST(StunTransaction, SingleTransmissionWaitsRmTimesRto) {
    TransactionClient tc;
    start(tc, at(0), RetransmitConfig{ms(200), 1, 3});
    auto tr = run(tc, at(0));
    EXPECT_EQ(tr.sent_ms, (std::vector<std::int64_t>{0}));
    ASSERT_EQ(tr.event_ms.size(), 1u);
    EXPECT_EQ(tr.event_ms[0], 600);
}

TEST(StunTransaction, RetransmitsTheSameBytes) {
    TransactionClient tc;
    auto s = start(tc, at(0));
    auto first = tc.poll_transmit();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->payload, s.wire);
    tc.handle_timeout(at(499));
    EXPECT_FALSE(tc.poll_transmit()) << "nothing is due before the RTO";
    tc.handle_timeout(at(500));
    auto second = tc.poll_transmit();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->payload, s.wire);
}

TEST(StunTransaction, LateWakeupSendsOnceAndMeasuresFromActualSend) {
    TransactionClient tc;
    start(tc, at(0));
    (void)tc.poll_transmit();
    // The driver oversleeps past two deadlines: one retransmission, next wait from now.
    tc.handle_timeout(at(1600));
    EXPECT_TRUE(tc.poll_transmit());
    EXPECT_FALSE(tc.poll_transmit());
    EXPECT_EQ(tc.poll_timeout(), at(1600 + 1000));
}

TEST(StunTransaction, ResponseAfterTwoRetransmissionsIsAmbiguous) {
    TransactionClient tc;
    auto s = start(tc, at(0), {}, 7);
    auto tr = run(tc, at(0), at(1500)); // transmissions at 0, 500, 1500
    ASSERT_EQ(tr.sent_ms.size(), 3u);
    auto resp = Message::success_for(s.request);
    EXPECT_TRUE(tc.handle_response(resp, kServer, at(1620)));
    auto ev = tc.poll_event();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->kind, TransactionEvent::Kind::Response);
    EXPECT_EQ(ev->user_tag, 7u);
    EXPECT_EQ(ev->retransmissions, 2);
    EXPECT_TRUE(ev->rtt_ambiguous);
    EXPECT_EQ(ev->rtt, ms(120)); // from the last transmission
    EXPECT_EQ(ev->from, kServer);
    EXPECT_EQ(ev->response.transaction_id(), s.request.transaction_id());
    EXPECT_EQ(tc.pending(), 0u);
    EXPECT_EQ(tc.poll_timeout(), base::kNever);
}

TEST(StunTransaction, ResponseBeforeAnyRetransmissionGivesExactRtt) {
    TransactionClient tc;
    auto s = start(tc, at(10));
    (void)tc.poll_transmit();
    auto resp = Message::error_for(s.request, 400, "Bad Request");
    EXPECT_TRUE(tc.handle_response(resp, kServer, at(10 + 37)));
    auto ev = tc.poll_event();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->retransmissions, 0);
    EXPECT_FALSE(ev->rtt_ambiguous);
    EXPECT_EQ(ev->rtt, ms(37));
    EXPECT_EQ(ev->response.cls(), Class::Error);
}

TEST(StunTransaction, ResponseFromAnotherAddressStillMatchesAndReportsIt) {
    TransactionClient tc;
    auto s = start(tc, at(0));
    EXPECT_TRUE(tc.handle_response(Message::success_for(s.request), kAlternate, at(5)));
    auto ev = tc.poll_event();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->from, kAlternate);
}

TEST(StunTransaction, UnknownTransactionIdAndNonResponsesAreIgnored) {
    TransactionClient tc;
    auto s = start(tc, at(0));
    auto other = Message::request(Method::Binding);
    EXPECT_FALSE(tc.handle_response(Message::success_for(other), kServer, at(5)));
    // Same id but a request or indication class: not a response.
    Message req(Method::Binding, Class::Request, s.request.transaction_id());
    Message ind(Method::Binding, Class::Indication, s.request.transaction_id());
    EXPECT_FALSE(tc.handle_response(req, kServer, at(5)));
    EXPECT_FALSE(tc.handle_response(ind, kServer, at(5)));
    EXPECT_FALSE(tc.poll_event());
    EXPECT_EQ(tc.pending(), 1u);
    // A duplicate response after completion is unknown too.
    EXPECT_TRUE(tc.handle_response(Message::success_for(s.request), kServer, at(6)));
    EXPECT_FALSE(tc.handle_response(Message::success_for(s.request), kServer, at(7)));
}

TEST(StunTransaction, CancelStopsEverything) {
    TransactionClient tc;
    auto a = start(tc, at(0));
    auto b = start(tc, at(0));
    tc.cancel(a.request.transaction_id());
    EXPECT_EQ(tc.pending(), 1u);
    // a's queued first transmission is gone, b's remains.
    auto t = tc.poll_transmit();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->payload, b.wire);
    EXPECT_FALSE(tc.poll_transmit());
    EXPECT_FALSE(tc.handle_response(Message::success_for(a.request), kServer, at(1)));
    tc.cancel(b.request.transaction_id());
    tc.cancel(b.request.transaction_id()); // unknown: ignored
    EXPECT_EQ(tc.pending(), 0u);
    EXPECT_EQ(tc.poll_timeout(), base::kNever);
    tc.handle_timeout(at(100000));
    EXPECT_FALSE(tc.poll_transmit());
    EXPECT_FALSE(tc.poll_event());
}

TEST(StunTransaction, IdleClientHasNoDeadline) {
    TransactionClient tc;
    EXPECT_EQ(tc.poll_timeout(), base::kNever);
    EXPECT_EQ(tc.pending(), 0u);
    tc.handle_timeout(at(0));
    EXPECT_FALSE(tc.poll_transmit());
    EXPECT_FALSE(tc.poll_event());
}

TEST(StunTransaction, ManyConcurrentTransactionsKeepDeadlineOrder) {
    TransactionClient tc;
    // Staggered starts with different RTOs: the merged schedule must come out in time order
    // and each transaction must follow its own schedule.
    struct Spec {
        std::int64_t start_ms;
        RetransmitConfig cfg;
    };
    std::vector<Spec> specs = {
        {0, {ms(500), 7, 16}},  {30, {ms(100), 4, 2}},   {30, {ms(250), 3, 4}},
        {470, {ms(40), 5, 10}}, {1000, {ms(500), 2, 1}},
    };
    std::vector<Started> started(specs.size());
    std::vector<std::vector<std::int64_t>> sent(specs.size());
    std::vector<std::int64_t> timeout_ms(specs.size(), -1);
    std::vector<std::int64_t> all_deadlines;

    auto find_index = [&](const base::Bytes& payload) {
        for (std::size_t i = 0; i < started.size(); ++i)
            if (started[i].wire == payload)
                return static_cast<int>(i);
        return -1;
    };
    auto drain = [&](Instant now) {
        while (auto t = tc.poll_transmit()) {
            int i = find_index(t->payload);
            ASSERT_GE(i, 0);
            sent[static_cast<std::size_t>(i)].push_back(millis(now));
        }
        while (auto ev = tc.poll_event()) {
            for (std::size_t i = 0; i < started.size(); ++i) {
                if (started[i].request.transaction_id() == ev->transaction_id) {
                    EXPECT_EQ(ev->user_tag, i);
                    timeout_ms[i] = millis(now);
                }
            }
        }
    };

    std::size_t next_start = 0;
    Instant now = at(0);
    for (;;) {
        while (next_start < specs.size() && at(specs[next_start].start_ms) <= now) {
            started[next_start] = start(tc, now, specs[next_start].cfg, next_start);
            ++next_start;
        }
        drain(now);
        Instant next = tc.poll_timeout();
        if (next_start < specs.size())
            next = std::min(next, at(specs[next_start].start_ms));
        if (next == base::kNever)
            break;
        ASSERT_GE(next, now);
        if (!all_deadlines.empty()) {
            ASSERT_GE(millis(next), all_deadlines.back());
        }
        all_deadlines.push_back(millis(next));
        now = next;
        tc.handle_timeout(now);
    }
    EXPECT_EQ(sent[0], (std::vector<std::int64_t>{0, 500, 1500, 3500, 7500, 15500, 31500}));
    EXPECT_EQ(timeout_ms[0], 39500);
    EXPECT_EQ(sent[1], (std::vector<std::int64_t>{30, 130, 330, 730}));
    EXPECT_EQ(timeout_ms[1], 930);
    EXPECT_EQ(sent[2], (std::vector<std::int64_t>{30, 280, 780}));
    EXPECT_EQ(timeout_ms[2], 1780);
    EXPECT_EQ(sent[3], (std::vector<std::int64_t>{470, 510, 590, 750, 1070}));
    EXPECT_EQ(timeout_ms[3], 1470);
    EXPECT_EQ(sent[4], (std::vector<std::int64_t>{1000, 1500}));
    EXPECT_EQ(timeout_ms[4], 2000);
    EXPECT_EQ(tc.pending(), 0u);
}

TEST(StunTransaction, ResponsesCompleteOnlyTheirOwnTransaction) {
    TransactionClient tc;
    std::vector<Started> s;
    for (int i = 0; i < 10; ++i)
        s.push_back(start(tc, at(0), {}, static_cast<std::uint64_t>(i)));
    EXPECT_EQ(tc.pending(), 10u);
    EXPECT_TRUE(tc.handle_response(Message::success_for(s[6].request), kServer, at(20)));
    auto ev = tc.poll_event();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->user_tag, 6u);
    EXPECT_EQ(tc.pending(), 9u);
    EXPECT_EQ(tc.poll_timeout(), at(500));
}

// --- codec smoke test (the lead owns the thorough codec tests) ------------------------------

TEST(StunCodecSmoke, IntegrityAndFingerprintRoundTrip) {
    Message m = Message::request(Method::Binding);
    m.add_string(attr::Username, "alice:bob");
    m.add_u32(attr::Priority, 0x6E0001FF);
    m.add_xor_address(attr::XorMappedAddress, kServer);
    base::Bytes key = short_term_key("s3cret");
    EncodeOptions opts;
    opts.integrity_key = &key;
    opts.fingerprint = true;
    base::Bytes wire = encode(m, opts);
    EXPECT_TRUE(looks_like_stun(wire));

    auto decoded = decode(wire);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(decoded->transaction_id(), m.transaction_id());
    EXPECT_EQ(decoded->get_string(attr::Username), "alice:bob");
    EXPECT_EQ(decoded->get_u32(attr::Priority), 0x6E0001FFu);
    EXPECT_EQ(decoded->get_xor_address(attr::XorMappedAddress), kServer);
    EXPECT_TRUE(decoded->has(attr::MessageIntegrity));
    EXPECT_TRUE(decoded->has(attr::Fingerprint));

    EXPECT_EQ(check_integrity(wire, key), IntegrityResult::Valid);
    EXPECT_EQ(check_integrity(wire, short_term_key("wrong")), IntegrityResult::Invalid);
    EXPECT_EQ(check_integrity(encode(m), key), IntegrityResult::Absent);

    // A flipped bit inside the covered part breaks the fingerprint (decode) and integrity.
    base::Bytes bad = wire;
    bad[kHeaderSize + 5] ^= 0x01;
    EXPECT_FALSE(decode(bad).ok());
    EXPECT_EQ(check_integrity(bad, key), IntegrityResult::Invalid);
}

TEST(StunCodecSmoke, LongTermSha256Integrity) {
    Message m = Message::request(Method::Allocate);
    m.add_requested_transport(17);
    base::Bytes key = long_term_key("user", "example.org", "pass", PasswordAlgorithm::Sha256);
    EXPECT_EQ(key.size(), 32u);
    EncodeOptions opts;
    opts.integrity_key = &key;
    opts.sha256 = true;
    base::Bytes wire = encode(m, opts);
    auto decoded = decode(wire);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_TRUE(decoded->has(attr::MessageIntegritySha256));
    EXPECT_FALSE(decoded->has(attr::MessageIntegrity));
    EXPECT_EQ(check_integrity(wire, key), IntegrityResult::Valid);
    EXPECT_EQ(check_integrity(wire, long_term_key("user", "example.org", "pass")),
              IntegrityResult::Invalid);
}

} // namespace
} // namespace rtcat::stun
