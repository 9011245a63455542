// Two whole Peers (ICE + DTLS + SCTP/DCEP) on virtual time through the simulated network:
// connection set-up, data channels of each kind, the rtcat-file/1 transfer under loss, DTLS
// flight loss, and the failures that must fail closed.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "cli/transfer.hpp"
#include "core/base/sha256.hpp"
#include "core/peer/peer.hpp"
#include "core/sdp/sdp.hpp"
#include "tests/support/peer_pair.hpp"
#include "tests/support/sim_net.hpp"

namespace rtcat {
namespace {

namespace fs = std::filesystem;
using base::Instant;

const net::IpAddr kA = *net::IpAddr::parse("10.0.0.1");
const net::IpAddr kB = *net::IpAddr::parse("10.0.0.2");

base::Instant t0() {
    return base::Instant(std::chrono::seconds(1000));
}

// Two public hosts on one link (`link` both ways), the peers created at once: the offerer a on
// kA:40000, the answerer b on kB:50000, 100 ms gathering. Virtual time starts at t0().
struct Pair : test::PeerPair {
    explicit Pair(uint64_t seed, sim::LinkParams link = {}) : PeerPair(seed, t0()) {
        net.attach(kA);
        net.attach(kB);
        net.set_default_link(std::move(link));
        start(config(true, net::SocketAddr(kA, 40000), base::ms(100)),
              config(false, net::SocketAddr(kB, 50000), base::ms(100)));
    }
};

TEST(Peer, ConnectsOnPerfectLinkWithinAFewMilliseconds) {
    Pair p(1);
    const Instant start = p.now;
    ASSERT_TRUE(p.connect()) << "a failed: " << (p.a.failed ? p.a.failed->reason : "-")
                             << " b failed: " << (p.b.failed ? p.b.failed->reason : "-");
    // Virtual time: no delay on the link, so this is the machines' own pacing and timers.
    EXPECT_LT(base::to_ms(p.now - start), 50.0);
    auto sel = p.a.peer->selected_pair();
    ASSERT_TRUE(sel.has_value());
    EXPECT_EQ(sel->remote.address.ip(), kB);
    EXPECT_EQ(p.a.peer->stats().dropped_unknown, 0u);
}

TEST(Peer, ConnectsWithDelayAndLoss) {
    sim::LinkParams link;
    link.delay = base::ms(20);
    link.loss = 0.2;
    for (uint64_t seed : {11u, 12u, 13u}) {
        Pair p(seed, link);
        SCOPED_TRACE(p.net.describe());
        EXPECT_TRUE(p.connect(std::chrono::seconds(30)))
            << "a: " << (p.a.failed ? p.a.failed->reason : "-")
            << " b: " << (p.b.failed ? p.b.failed->reason : "-") << " a.ice sent "
            << p.a.peer->stats().ice.checks_sent << " rtx "
            << p.a.peer->stats().ice.check_retransmissions << " resp "
            << p.a.peer->stats().ice.responses_received << " recv "
            << p.a.peer->stats().ice.checks_received << " asym "
            << p.a.peer->stats().ice.asymmetric_responses << " badmi "
            << p.a.peer->stats().ice.bad_integrity << " b.ice sent "
            << p.b.peer->stats().ice.checks_sent << " resp "
            << p.b.peer->stats().ice.responses_received << " recv "
            << p.b.peer->stats().ice.checks_received << " a.unk_tx "
            << p.a.peer->stats().ice.unknown_transaction << " a.malformed "
            << p.a.peer->stats().ice.malformed << " a.nofp " << p.a.peer->stats().ice.no_fingerprint
            << " net sent " << p.net.stats().sent << " lost " << p.net.stats().dropped_loss
            << " delivered " << p.net.stats().delivered << " t=" << base::to_ms(p.now - t0());
    }
}

TEST(Peer, FingerprintMismatchFailsClosed) {
    Pair p(2);
    // Flip one byte of the answer's fingerprint: the offerer must refuse the DTLS peer.
    p.tamper_answer = [](sdp::SignalMessage& m) {
        auto pos = m.sdp.find("a=fingerprint:sha-256 ");
        ASSERT_NE(pos, std::string::npos);
        char& c = m.sdp[pos + 22];
        c = c == 'A' ? 'B' : 'A';
    };
    p.run(std::chrono::seconds(10), [&] { return p.a.failed || p.b.failed; });
    ASSERT_TRUE(p.a.failed.has_value());
    EXPECT_EQ(p.a.failed->failure, peer::FailureClass::Security);
    EXPECT_FALSE(p.a.ready);
    EXPECT_FALSE(p.b.ready);
}

TEST(Peer, MissingFingerprintIsRejected) {
    Pair p(3);
    p.exchange_sdp = false;
    p.run(std::chrono::seconds(1), [&] { return p.a.local.has_value(); });
    ASSERT_TRUE(p.a.local.has_value());
    auto m = *p.a.local;
    auto pos = m.sdp.find("a=fingerprint:");
    auto end = m.sdp.find("\r\n", pos);
    m.sdp.erase(pos, end + 2 - pos);
    auto r = p.b.peer->set_remote_description(m, p.now);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("fingerprint"), std::string::npos) << r.error().message;
}

// A description with more candidates than ICE keeps: the best are kept, not the first (the
// real candidate, listed last with the highest priority, was dropped silently before).
TEST(Peer, TooManyRemoteCandidatesKeepsTheBest) {
    Pair p(4);
    p.tamper_offer = [](sdp::SignalMessage& m) {
        std::string junk;
        for (int i = 0; i < 150; ++i) {
            junk += "a=candidate:" + std::to_string(900 + i) + " 1 udp " +
                    std::to_string(1000 + i) + " 192.0.2." + std::to_string(i % 250 + 1) + " " +
                    std::to_string(20000 + i) + " typ host\r\n";
        }
        const auto pos = m.sdp.find("a=candidate:");
        ASSERT_NE(pos, std::string::npos);
        m.sdp.insert(pos, junk);
    };
    ASSERT_TRUE(p.connect()) << p.a.failure_text() << " / " << p.b.failure_text();
    const auto& kept = p.b.peer->remote_candidates();
    ASSERT_EQ(kept.size(), ice::kMaxRemoteCandidates);
    EXPECT_TRUE(
        std::any_of(kept.begin(), kept.end(), [](const auto& c) { return c.address.ip() == kA; }));
    for (const auto& c : kept) {
        EXPECT_TRUE(c.address.ip() == kA || c.priority >= 1050) << c.priority;
    }
}

TEST(Peer, DroppedClientHelloAndFinishedStillConnect) {
    sim::LinkParams link;
    int hellos = 0;
    int finished_flights = 0;
    link.drop_if = [&](const net::Datagram& d) {
        // DTLS record: content type 22 (handshake), first handshake message type at byte 13.
        if (d.payload.size() > 13 && d.payload[0] == 22) {
            const uint8_t hs = d.payload[13];
            if (hs == 1 && hellos++ == 0) {
                return true; // the first ClientHello
            }
        }
        // The client's second flight starts with a Certificate (11) then ChangeCipherSpec
        // (type 20 record): drop the first datagram carrying a ChangeCipherSpec.
        for (size_t i = 0; i + 13 <= d.payload.size();) {
            if (d.payload[i] == 20 && finished_flights++ == 0) {
                return true;
            }
            const size_t len = (size_t(d.payload[i + 11]) << 8) | d.payload[i + 12];
            i += 13 + len;
        }
        return false;
    };
    Pair p(4, link);
    EXPECT_TRUE(p.connect(std::chrono::seconds(20)));
    EXPECT_GE(hellos, 2);
    EXPECT_GE(finished_flights, 1);
}

TEST(Peer, DataChannelsOfEveryKind) {
    Pair p(5);
    ASSERT_TRUE(p.connect());
    struct Kind {
        bool ordered;
        dcep::Reliability rel;
        uint32_t value;
    };
    std::vector<Kind> kinds = {{true, dcep::Reliability::Reliable, 0},
                               {false, dcep::Reliability::Reliable, 0},
                               {true, dcep::Reliability::MaxRetransmits, 0},
                               {false, dcep::Reliability::MaxLifetime, 100}};
    std::vector<uint16_t> ids;
    for (size_t i = 0; i < kinds.size(); ++i) {
        dcep::ChannelOptions o;
        o.label = "k" + std::to_string(i);
        o.protocol = "test";
        o.ordered = kinds[i].ordered;
        o.reliability = kinds[i].rel;
        o.reliability_value = kinds[i].value;
        auto id = p.a.peer->open_channel(o, p.now);
        ASSERT_TRUE(id.ok());
        ids.push_back(*id);
    }
    p.run(std::chrono::seconds(2),
          [&] { return p.b.events_of<dcep::event::ChannelOpen>().size() == kinds.size(); });
    auto opens = p.b.events_of<dcep::event::ChannelOpen>();
    ASSERT_EQ(opens.size(), kinds.size());
    for (size_t i = 0; i < kinds.size(); ++i) {
        EXPECT_EQ(opens[i].channel.options.label, "k" + std::to_string(i));
        EXPECT_EQ(opens[i].channel.options.ordered, kinds[i].ordered);
        EXPECT_EQ(opens[i].channel.options.reliability, kinds[i].rel);
        // RFC 8832 §6: the DTLS client (the answerer here) uses even ids, so ours are odd.
        EXPECT_EQ(opens[i].channel.id % 2, 1);
    }
    // Text, binary, empty and the largest message both ways.
    std::vector<uint8_t> big(262144);
    for (size_t i = 0; i < big.size(); ++i) {
        big[i] = static_cast<uint8_t>(i * 7);
    }
    const std::string text = "hello";
    ASSERT_TRUE(p.a.peer
                    ->send(ids[0],
                           std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()),
                                                    text.size()),
                           false, p.now)
                    .ok());
    ASSERT_TRUE(p.a.peer->send(ids[0], {}, true, p.now).ok());
    ASSERT_TRUE(p.a.peer->send(ids[0], big, true, p.now).ok());
    p.run(std::chrono::seconds(5),
          [&] { return p.b.events_of<dcep::event::Message>().size() >= 3; });
    auto msgs = p.b.events_of<dcep::event::Message>();
    ASSERT_EQ(msgs.size(), 3u);
    EXPECT_FALSE(msgs[0].binary);
    EXPECT_EQ(std::string(msgs[0].data.begin(), msgs[0].data.end()), text);
    EXPECT_TRUE(msgs[1].binary);
    EXPECT_TRUE(msgs[1].data.empty());
    EXPECT_EQ(msgs[2].data, big);
    // Too big for the peer's max-message-size: refused at send, nothing truncated.
    std::vector<uint8_t> too_big(262145);
    EXPECT_FALSE(p.a.peer->send(ids[0], too_big, true, p.now).ok());
}

TEST(Peer, GarbageAtEveryLayerIsDroppedNotFatal) {
    Pair p(6);
    ASSERT_TRUE(p.connect());
    std::mt19937_64 rng(6);
    auto from = p.a.peer->selected_pair()->local.address;
    auto to = p.b.peer->selected_pair()->local.address;
    for (int i = 0; i < 2000; ++i) {
        net::Datagram d;
        d.source = from;
        d.destination = to;
        d.payload.resize(1 + rng() % 1200);
        for (auto& x : d.payload) {
            x = static_cast<uint8_t>(rng());
        }
        // Every class of first byte: STUN, DTLS, TURN channel, RTP, other.
        static const uint8_t firsts[] = {0, 1, 22, 23, 21, 64, 128, 200, 255};
        d.payload[0] = firsts[i % 9];
        p.b.peer->handle_receive(std::move(d), p.now);
        while (p.b.peer->poll_transmit()) {
        }
        p.drain(p.b, p.now);
    }
    EXPECT_FALSE(p.b.failed.has_value());
    EXPECT_GT(p.b.peer->stats().dropped_unencrypted_media, 0u);
    // Still working afterwards.
    dcep::ChannelOptions o;
    o.label = "after";
    auto id = p.a.peer->open_channel(o, p.now);
    ASSERT_TRUE(id.ok());
    p.run(std::chrono::seconds(2),
          [&] { return !p.b.events_of<dcep::event::ChannelOpen>().empty(); });
    EXPECT_FALSE(p.b.events_of<dcep::event::ChannelOpen>().empty());
}

// --- rtcat-file/1 over the simulated network -------------------------------------------------

fs::path temp_dir(const std::string& name) {
    auto d = fs::temp_directory_path() /
             fmt::format("rtcat-peer-test-{}-{}", name, std::random_device{}());
    fs::create_directories(d);
    return d;
}

std::string file_sha(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), {});
    return base::Sha256::hex(base::Sha256::of(data));
}

void write_random(const fs::path& p, size_t size, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> d(size);
    for (auto& x : d) {
        x = static_cast<uint8_t>(rng());
    }
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
}

constexpr size_t kBigFile = 3 * 1024 * 1024 + 17;

// Sends a.bin (first_file_size bytes), dir/empty.bin and dir/sub/b.bin from a to b: three file
// channels, the second and third on the same stream id (the id is free again after the ack).
// `took`, if given, receives the virtual time the transfer took.
void transfer_over(double loss, uint64_t seed, size_t first_file_size = kBigFile,
                   base::Duration limit = std::chrono::seconds(600),
                   base::Duration* took = nullptr) {
    sim::LinkParams link;
    link.loss = loss;
    link.delay = base::ms(5);
    link.reorder = loss > 0 ? 0.02 : 0;
    link.duplicate = loss > 0 ? 0.01 : 0;
    Pair p(seed, link);
    SCOPED_TRACE(p.net.describe());
    auto src = temp_dir("src");
    auto dst = temp_dir("dst");
    write_random(src / "a.bin", first_file_size, seed);
    fs::create_directories(src / "dir" / "sub");
    write_random(src / "dir" / "sub" / "b.bin", 100000, seed + 1);
    write_random(src / "dir" / "empty.bin", 0, seed + 2);
    auto sources =
        cli::transfer::collect_sources({(src / "a.bin").string(), (src / "dir").string()});
    ASSERT_TRUE(sources.ok()) << sources.error().message;
    // The protocol path is under test: under loss the receiver's first word may take a few
    // RTOs, which must not switch the sender to plain mode here (transfer_test covers that).
    cli::transfer::SenderOptions so;
    so.plain_after = std::chrono::hours(1);
    cli::transfer::Sender sender(std::move(sources->sources), so);
    cli::transfer::ReceiverOptions ro;
    ro.out_dir = dst;
    auto created = cli::transfer::Receiver::create(ro);
    ASSERT_TRUE(created.ok()) << created.error().message;
    cli::transfer::Receiver& receiver = **created;
    p.a.keep_events = false;
    p.b.keep_events = false;
    p.a.app = [&](peer::Peer& pe, peer::Event& ev, Instant n) {
        if (std::holds_alternative<dcep::event::Connected>(ev)) {
            sender.on_ready(pe, n);
        }
        sender.on_event(pe, ev, n);
        sender.pump(pe, n);
    };
    p.b.app = [&](peer::Peer& pe, peer::Event& ev, Instant n) { receiver.on_event(pe, ev, n); };
    // The sender refills on every input (the app hook runs per event; pump after timers too).
    p.a.after_input = [&](peer::Peer& pe, Instant n) {
        if (p.a.ready) {
            sender.pump(pe, n);
        }
    };
    const Instant start = p.now;
    p.run(limit,
          [&] { return (sender.finished() && receiver.finished()) || p.a.failed || p.b.failed; });
    if (took != nullptr) {
        *took = p.now - start;
    }
    ASSERT_FALSE(p.a.failed.has_value()) << p.a.failed->reason;
    ASSERT_FALSE(p.b.failed.has_value()) << p.b.failed->reason;
    ASSERT_TRUE(sender.finished())
        << "sender results " << sender.results().size() << ", receiver results "
        << receiver.results().size() << ", receiver finished " << receiver.finished() << ", t "
        << base::to_ms(p.now - t0()) << " ms, bytes sent " << sender.progress().bytes_done
        << ", received " << receiver.progress().bytes_done << ", a.dcep bad "
        << p.a.peer->stats().sctp.bad_dcep << ", b.dcep bad " << p.b.peer->stats().sctp.bad_dcep;
    ASSERT_TRUE(receiver.finished())
        << "sender error: " << sender.error() << "; receiver error: " << receiver.error();
    EXPECT_FALSE(sender.failed()) << sender.error();
    EXPECT_FALSE(receiver.failed()) << receiver.error();
    EXPECT_EQ(file_sha(src / "a.bin"), file_sha(dst / "a.bin"));
    EXPECT_EQ(file_sha(src / "dir" / "sub" / "b.bin"), file_sha(dst / "dir" / "sub" / "b.bin"));
    EXPECT_TRUE(fs::exists(dst / "dir" / "empty.bin"));
    EXPECT_EQ(fs::file_size(dst / "dir" / "empty.bin"), 0u);
    EXPECT_FALSE(fs::exists(dst / "a.bin.part"));
    EXPECT_EQ(sender.results().size(), 3u);
    for (const auto& r : sender.results()) {
        EXPECT_TRUE(r.ok) << r.name << ": " << r.error;
        EXPECT_TRUE(r.verified) << r.name;
    }
    EXPECT_EQ(sender.mode(), cli::transfer::Mode::Protocol);
    fs::remove_all(src);
    fs::remove_all(dst);
}

TEST(PeerTransfer, ByteIdenticalWithoutLoss) {
    transfer_over(0.0, 21);
}
TEST(PeerTransfer, ByteIdenticalAtFivePercentLoss) {
    transfer_over(0.05, 22);
}

// 20% loss each way (plus reordering and duplication), over many seeds. This stalled at a file
// boundary about one run in ten (2 of 3 files acknowledged, the third never started), for three
// reasons, each fixed where it lives:
// - core/dcep: the receiver dropped the DATA_CHANNEL_OPEN of the third file's channel, sent on
//   the stream id the second file's channel had just freed, whenever the sender's answer to the
//   receiver's stream reset was lost (the sender already considered the id free; SCTP had
//   acknowledged the OPEN, so nothing resent it). See Reopen in data_channels.cpp and
//   DcepDataChannels.ReopenWhileOurResetIsUnansweredIsHeld.
// - core/sctp: the shared usrsctp timer wheel put the receiver's delayed SACKs and
//   retransmissions in its outbox during the SENDER's ticks and nothing made the receiver due,
//   so they waited for its next inbound packet (SctpAssociation.TimerOutputOfAnother...).
// - this harness: usrsctp's clock included the test process's real CPU time, so on a loaded
//   machine an RTT sample of hundreds of ms set RTO to seconds (ScopedVirtualWallClock in Pair).
// The last two only slowed transfers down, but into the 600 s limit. What remains is SCTP at
// 20% loss: mostly RTO-driven recovery (RTO.min 200 ms, backing off to RTO.max 10 s when a
// retransmission and its SACK are lost again), about 12 KB/s and a long tail for the control
// round trips. 3 MiB takes 100..600 s of virtual time; with a 512 KiB first file (still several
// 64 KiB messages, every channel boundary) runs took 8..330 s (median ~33 s). The limit is
// generous because a stall is forever and a slow run is not a bug; it costs no real time.
//
// Then "association lost" in 0.2..0.7% of runs, two causes, each fixed where it lives:
// - core/dcep: a stream reset sent while our data was unacknowledged was answered "In progress"
//   by the receiver's usrsctp, which then held the sender's `done` behind the reset and never
//   performed it (it re-checks only on new DATA); the sender's retransmitted request ended the
//   association. Resets now wait until the association is dry (kResetPressure in
//   data_channels.cpp; DcepDataChannels.ResetWhileDataIsUnacknowledged...).
// - core/sctp: 11 T3 rounds in a row without an acknowledgement (DATA or SACK lost, 0.36 each)
//   hit RFC 4960's Association.Max.Retrans of 10 a few times in a thousand runs; the limit is
//   20 now (tuning.hpp). The soak below gave 1500/1500 after both.
constexpr size_t kLossyFirstFile = 512 * 1024 + 17;

class PeerTransferAtTwentyPercentLoss : public ::testing::TestWithParam<uint64_t> {};

TEST_P(PeerTransferAtTwentyPercentLoss, ByteIdentical) {
    transfer_over(0.20, GetParam(), kLossyFirstFile, std::chrono::seconds(1800));
}

INSTANTIATE_TEST_SUITE_P(PeerTransfer, PeerTransferAtTwentyPercentLoss,
                         ::testing::Range<uint64_t>(1, 9));

// The big run (not in the default suite): RTCAT_SOAK_SEEDS seeds (default 200) of the 20% test
// above, then a summary of the virtual durations. RTCAT_SOAK_BIG=1 sends the 3 MiB file instead;
// RTCAT_SOAK_FIRST (default 1000) is the first seed.
TEST(PeerTransferSoak, DISABLED_TwentyPercentLossManySeeds) {
    const char* env = std::getenv("RTCAT_SOAK_SEEDS");
    const uint64_t seeds = env != nullptr ? std::strtoull(env, nullptr, 10) : 200;
    const char* first_env = std::getenv("RTCAT_SOAK_FIRST");
    const uint64_t first = first_env != nullptr ? std::strtoull(first_env, nullptr, 10) : 1000;
    const bool big = std::getenv("RTCAT_SOAK_BIG") != nullptr;
    std::vector<double> secs;
    int failed = 0;
    for (uint64_t seed = first; seed < first + seeds; ++seed) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const auto* result = ::testing::UnitTest::GetInstance()->current_test_info()->result();
        const int parts_before = result->total_part_count();
        base::Duration took{};
        transfer_over(0.20, seed, big ? kBigFile : kLossyFirstFile, std::chrono::seconds(3600),
                      &took);
        if (result->total_part_count() != parts_before) {
            ++failed;
            continue;
        }
        secs.push_back(base::to_ms(took) / 1000.0);
    }
    std::sort(secs.begin(), secs.end());
    if (!secs.empty()) {
        std::printf("%zu/%llu transfers at 20%% loss ok (%d failed): virtual seconds min %.1f "
                    "median %.1f p90 %.1f max %.1f\n",
                    secs.size(), static_cast<unsigned long long>(seeds), failed, secs.front(),
                    secs[secs.size() / 2], secs[secs.size() * 9 / 10], secs.back());
    }
}

TEST(PeerTransfer, PathTraversalIsRefused) {
    for (const char* bad :
         {"../x", "/etc/passwd", "a/../../b", "a//b", "./a", "a\\b", "x.part", "", "a\x1b[2Jb",
          "line\nbreak", "cr\rx", "bell\a", "del\x7f", "c1\xc2\x9b", "bad\xff\xfe"}) {
        EXPECT_FALSE(cli::transfer::safe_relative_path(bad).ok()) << bad;
    }
    EXPECT_FALSE(cli::transfer::safe_relative_path(std::string(251, 'x')).ok());
    EXPECT_TRUE(cli::transfer::safe_relative_path(std::string(250, 'x')).ok());
    for (const char* good : {"a", "a/b/c.txt", "dir/.hidden", "..a", "a..b",
                             "r\xc3\xa9sum\xc3\xa9.txt", "with space"}) {
        EXPECT_TRUE(cli::transfer::safe_relative_path(good).ok()) << good;
    }
}

} // namespace
} // namespace rtcat
