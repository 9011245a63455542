// sctp::Association (usrsctp AF_CONN, no threads) on its own: two associations in one process,
// pumped in memory on virtual time.

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/bytes.hpp"
#include "core/sctp/association.hpp"
#include "core/sctp/crc32c.hpp"
#include "core/sctp/tuning.hpp"
#include "tests/unit/sctp_test_wallclock.hpp"

using namespace rtcat;
using namespace std::chrono_literals;

namespace {

struct Pair {
    explicit Pair(sctp::Config c) : a(c, now), b(c, now) {}
    // usrsctp's own clock moves with `now` only (see sctp_test_wallclock.hpp).
    test_clock::ScopedVirtualWallClock virtual_wall_clock;
    base::Instant now = base::Instant{} + 1s;
    sctp::Association a;
    sctp::Association b;
    std::vector<sctp::Event> ea, eb;
    std::size_t largest = 0;

    void pump() {
        bool moved = true;
        while (moved) {
            moved = false;
            while (auto p = a.poll_transmit()) {
                moved = true;
                largest = std::max(largest, p->size());
                b.handle_receive(*p, now);
            }
            while (auto p = b.poll_transmit()) {
                moved = true;
                largest = std::max(largest, p->size());
                a.handle_receive(*p, now);
            }
        }
        while (auto e = a.poll_event())
            ea.push_back(std::move(*e));
        while (auto e = b.poll_event())
            eb.push_back(std::move(*e));
    }
    void step(base::Duration d) {
        test_clock::advance_wall_clock(d);
        now += d;
        a.handle_timeout(now);
        b.handle_timeout(now);
        pump();
    }
    template <typename P> bool run_until(P pred, int max_steps = 2000) {
        for (int i = 0; i < max_steps; ++i) {
            pump();
            if (pred())
                return true;
            step(10ms);
        }
        return pred();
    }
    std::vector<sctp::event::Message> messages(const std::vector<sctp::Event>& ev) const {
        std::vector<sctp::event::Message> out;
        for (auto& e : ev)
            if (auto* m = std::get_if<sctp::event::Message>(&e))
                out.push_back(*m);
        return out;
    }
};

// Pushes a whole message (explicit EOR, possibly in several calls), pumping in between.
void send_all(Pair& p, const sctp::SendParams& params, const base::Bytes& msg) {
    std::size_t off = 0;
    for (int guard = 0; guard < 100000; ++guard) {
        auto r = p.a.send(params, base::ByteView(msg).subspan(off));
        ASSERT_TRUE(r.ok()) << r.error().message;
        off += *r;
        if (off == msg.size())
            return;
        p.step(1ms);
    }
    FAIL() << "send did not complete";
}

TEST(SctpAssociation, ComesUpWithAllStreams) {
    Pair p(sctp::Config{});
    ASSERT_TRUE(p.run_until([&] { return p.a.up() && p.b.up(); }));
    ASSERT_FALSE(p.ea.empty());
    auto* up = std::get_if<sctp::event::Up>(&p.ea[0]);
    ASSERT_NE(up, nullptr);
    EXPECT_EQ(up->outbound_streams, sctp::tuning::kMaxStreams);
    EXPECT_EQ(up->inbound_streams, sctp::tuning::kMaxStreams);
    EXPECT_NE(p.a.poll_timeout(), base::kNever);
}

// Every packet fits the configured size (usrsctp's AF_CONN overhead accounting, measured).
TEST(SctpAssociation, PacketsNeverExceedMaxPacketSize) {
    for (std::size_t mps :
         {std::size_t{600}, std::size_t{1163}, std::size_t{1200}, std::size_t{1452}}) {
        sctp::Config c;
        c.max_packet_size = mps;
        Pair p(c);
        ASSERT_TRUE(p.run_until([&] { return p.a.up() && p.b.up(); }));
        sctp::SendParams params;
        params.stream = 1;
        params.ppid = 53;
        send_all(p, params, base::Bytes(300000, 7));
        // Single-chunk messages around the packet size, both directions.
        for (std::size_t n = mps - 40; n < mps + 8; ++n) {
            send_all(p, params, base::Bytes(n, 1));
            p.pump();
        }
        p.pump();
        EXPECT_LE(p.largest, mps) << "max_packet_size " << mps;
        EXPECT_GE(p.largest + 4, mps) << "the path MTU should be used fully";
        EXPECT_EQ(p.a.stats().largest_packet_out, p.largest);
    }
}

TEST(SctpAssociation, LargeMessagesGoInPiecesWithExplicitEor) {
    Pair p(sctp::Config{});
    ASSERT_TRUE(p.run_until([&] { return p.a.up() && p.b.up(); }));
    base::Bytes big(1 << 20);
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<std::uint8_t>(i * 7);
    sctp::SendParams params;
    params.stream = 3;
    params.ppid = 53;
    // Hand over in 3 pieces, the last one ends the message.
    params.end_of_message = false;
    std::size_t off = 0;
    for (std::size_t cut : {std::size_t{1000}, std::size_t{500000}}) {
        while (off < cut) {
            auto r = p.a.send(params, base::ByteView(big).subspan(off, cut - off));
            ASSERT_TRUE(r.ok());
            off += *r;
            p.step(1ms);
        }
    }
    params.end_of_message = true;
    send_all(p, params, base::Bytes(big.begin() + static_cast<std::ptrdiff_t>(off), big.end()));
    // The receive side limit is 256 KiB by default: raise it for this one.
    ASSERT_TRUE(p.run_until([&] { return p.b.stats().oversized_messages == 1; }));
    EXPECT_TRUE(p.messages(p.eb).empty()) << "1 MiB > max_receive_message_size is dropped";

    // Within the limit it arrives whole.
    base::Bytes ok(200000, 9);
    send_all(p, params, ok);
    ASSERT_TRUE(p.run_until([&] { return p.messages(p.eb).size() == 1; }));
    auto m = p.messages(p.eb)[0];
    EXPECT_EQ(m.stream, 3);
    EXPECT_EQ(m.ppid, 53u);
    EXPECT_EQ(m.data, ok);
}

TEST(SctpAssociation, StreamResetNotifiesBothSides) {
    Pair p(sctp::Config{});
    ASSERT_TRUE(p.run_until([&] { return p.a.up() && p.b.up(); }));
    sctp::SendParams params;
    params.stream = 4;
    params.ppid = 51;
    send_all(p, params, base::Bytes{'x'});
    ASSERT_TRUE(p.a.reset_stream(4).ok());
    auto resets = [](const std::vector<sctp::Event>& ev, bool incoming) {
        int n = 0;
        for (auto& e : ev)
            if (auto* r = std::get_if<sctp::event::StreamReset>(&e))
                if (r->incoming == incoming && r->streams == std::vector<std::uint16_t>{4})
                    ++n;
        return n;
    };
    ASSERT_TRUE(p.run_until([&] { return resets(p.ea, false) == 1 && resets(p.eb, true) == 1; }));
}

// usrsctp has one timer wheel for the process: advancing it for one association fires the other
// association's timers too. Their output must make that association due (poll_timeout() <= now)
// or a driver that only calls it when its deadline passes never picks it up. The peer tests'
// simulated network serves endpoints in a fixed order, so the receiver's delayed SACKs waited for
// the next inbound packet and a 20%-loss transfer crawled on backed-off retransmission timeouts.
TEST(SctpAssociation, TimerOutputOfAnotherAssociationMakesItDue) {
    Pair p(sctp::Config{});
    ASSERT_TRUE(p.run_until([&] { return p.a.up() && p.b.up(); }));
    p.step(500ms); // quiet: everything acknowledged
    while (p.b.poll_transmit()) {
    }
    sctp::SendParams params;
    params.stream = 2;
    params.ppid = 53;
    // One DATA packet at a time until b holds its SACK back (RFC 4960 §6.2: a SACK every
    // tuning::kSackFrequency packets, else after tuning::kSackDelayMs).
    bool delayed = false;
    for (int i = 0; i < 8 && !delayed; ++i) {
        ASSERT_EQ(*p.a.send(params, base::Bytes(100, 1)), 100u);
        while (auto data = p.a.poll_transmit())
            p.b.handle_receive(*data, p.now);
        delayed = !p.b.poll_transmit().has_value();
        while (auto more = p.b.poll_transmit()) {
        }
    }
    ASSERT_TRUE(delayed) << "b never delayed a SACK";
    EXPECT_GT(p.b.poll_timeout(), p.now);

    // Only a is driven: its tick runs the shared timer wheel, b's delayed-SACK timer fires and
    // b's SACK lands in b's outbox during a's input.
    const base::Instant later = p.now + 50ms;
    test_clock::advance_wall_clock(later - p.now);
    p.now = later;
    p.a.handle_timeout(p.now);
    EXPECT_LE(p.b.poll_timeout(), p.now) << "b has output waiting: it must be due now";
    p.b.handle_timeout(p.now);
    auto sack = p.b.poll_transmit();
    ASSERT_TRUE(sack.has_value());
    // Common header (12 bytes), then the first chunk: type 3 = SACK.
    ASSERT_GT(sack->size(), 12u);
    EXPECT_EQ((*sack)[12], 3);
    EXPECT_GT(p.b.poll_timeout(), p.now) << "drained: back to the regular tick";
}

TEST(SctpAssociation, GarbageIsCountedNotFatal) {
    Pair p(sctp::Config{});
    ASSERT_TRUE(p.run_until([&] { return p.a.up() && p.b.up(); }));
    std::mt19937 rng(11);
    for (int i = 0; i < 500; ++i) {
        base::Bytes junk(rng() % 1500);
        for (auto& v : junk)
            v = static_cast<std::uint8_t>(rng());
        // Half of them with a plausible common header (ports 5000/5000).
        if (i % 2 == 0 && junk.size() >= 16) {
            junk[0] = 0x13;
            junk[1] = 0x88;
            junk[2] = 0x13;
            junk[3] = 0x88;
        }
        p.b.handle_receive(junk, p.now);
    }
    EXPECT_EQ(p.b.stats().bad_packets, 500u);
    EXPECT_TRUE(p.b.up());
    sctp::SendParams params;
    params.stream = 1;
    params.ppid = 53;
    send_all(p, params, base::Bytes(10, 1));
    ASSERT_TRUE(p.run_until([&] { return p.messages(p.eb).size() == 1; }));
}

TEST(SctpAssociation, StackSurvivesManyLifecycles) {
    // Each iteration attaches to (and, at the end, finishes) the global usrsctp stack.
    for (int i = 0; i < 5; ++i) {
        Pair p(sctp::Config{});
        ASSERT_TRUE(p.run_until([&] { return p.a.up() && p.b.up(); })) << "iteration " << i;
    }
}

TEST(SctpAssociation, ShutdownEndsBothSides) {
    Pair p(sctp::Config{});
    ASSERT_TRUE(p.run_until([&] { return p.a.up() && p.b.up(); }));
    p.a.shutdown();
    ASSERT_TRUE(p.run_until([&] { return p.a.down() && p.b.down(); }));
    EXPECT_EQ(p.a.poll_timeout(), base::kNever);
    EXPECT_FALSE(p.a.send(sctp::SendParams{}, base::Bytes{1}).ok());
}

} // namespace

namespace {

// RFC 3720 Appendix B.4 (iSCSI, the same CRC32c), as the bytes go on the wire.
TEST(SctpCrc32c, KnownVectors) {
    std::vector<std::uint8_t> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
    for (int i = 0; i < 32; ++i) {
        up[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
        down[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(31 - i);
    }
    EXPECT_EQ(rtcat::sctp::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
    EXPECT_EQ(rtcat::sctp::crc32c(ones.data(), ones.size()), 0x62A8AB43u);
    EXPECT_EQ(rtcat::sctp::crc32c(up.data(), up.size()), 0x46DD794Eu);
    EXPECT_EQ(rtcat::sctp::crc32c(down.data(), down.size()), 0x113FDB5Cu);
    // Odd lengths and unaligned starts go through the byte-wise tail.
    EXPECT_EQ(rtcat::sctp::crc32c(up.data() + 1, 0), 0u);
    const std::string nine = "123456789";
    EXPECT_EQ(rtcat::sctp::crc32c(reinterpret_cast<const std::uint8_t*>(nine.data()), 9),
              0xE3069283u);
}

TEST(SctpCrc32c, PacketChecksumRoundTrip) {
    std::vector<std::uint8_t> pkt(1163);
    for (std::size_t i = 0; i < pkt.size(); ++i)
        pkt[i] = static_cast<std::uint8_t>(i * 7 + 3);
    rtcat::sctp::set_packet_checksum(pkt.data(), pkt.size());
    EXPECT_TRUE(rtcat::sctp::packet_checksum_ok(pkt.data(), pkt.size()));
    pkt[600] ^= 0x01;
    EXPECT_FALSE(rtcat::sctp::packet_checksum_ok(pkt.data(), pkt.size()));
    EXPECT_FALSE(rtcat::sctp::packet_checksum_ok(pkt.data(), 11));
}

} // namespace
