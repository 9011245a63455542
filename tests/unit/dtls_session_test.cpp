// DTLS sessions (core/dtls/session) in pairs on virtual time: handshake, fingerprints, loss,
// reordering, garbage, keylog, exporter, close. A zero-delay in-memory link carries every
// datagram; a filter can drop, duplicate or reorder them.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/bytes.hpp"
#include "core/base/time.hpp"
#include "core/dtls/certificate.hpp"
#include "core/dtls/session.hpp"

namespace rtcat::dtls {
namespace {

using base::Bytes;
using base::Instant;
using base::ms;

const Certificate& cert_a() {
    static const Certificate c = Certificate::generate().value();
    return c;
}
const Certificate& cert_b() {
    static const Certificate c = Certificate::generate().value();
    return c;
}
const Certificate& cert_c() {
    static const Certificate c = Certificate::generate().value();
    return c;
}

Instant at(std::int64_t millis) {
    return Instant{} + ms(millis);
}

std::uint8_t content_type(const Bytes& d) {
    return d.empty() ? 0 : d[0];
}
// The handshake message type of the first record when it is a plaintext handshake record.
int first_handshake_type(const Bytes& d) {
    if (d.size() < 14 || d[0] != 22 || d[3] != 0 || d[4] != 0)
        return -1;
    return d[13];
}
constexpr int kClientHello = 1;
constexpr int kServerHello = 2;
constexpr int kCertificateMsg = 11;

struct Side {
    std::unique_ptr<Session> session;
    std::vector<Event> events;
    std::vector<Bytes> sent;
    std::vector<std::string> keylog;

    template <typename T> int count() const {
        return static_cast<int>(std::count_if(events.begin(), events.end(), [](const Event& e) {
            return std::holds_alternative<T>(e);
        }));
    }
    template <typename T> const T* first() const {
        for (const auto& e : events)
            if (auto* p = std::get_if<T>(&e))
                return p;
        return nullptr;
    }
    std::vector<Bytes> data() const {
        std::vector<Bytes> out;
        for (const auto& e : events)
            if (auto* p = std::get_if<event::Data>(&e))
                out.push_back(p->payload);
        return out;
    }
};

// Two sessions joined by a lossless, zero-delay link. `filter` sees every datagram (with the
// sender and its per-sender index) and returns how many copies to deliver (0 = drop).
class Link {
public:
    struct Options {
        std::vector<Fingerprint> client_expects; // default: the server's real fingerprint
        std::vector<Fingerprint> server_expects; // default: the client's real fingerprint
        bool client_srtp = true;
        bool server_srtp = true;
        std::size_t mtu = 1200;
        bool keylog = false;
        bool start_server = true;
    };

    Link() : Link(Options()) {}
    explicit Link(Options o) : opts_(std::move(o)) {
        if (opts_.client_expects.empty())
            opts_.client_expects = {cert_b().fingerprint()};
        if (opts_.server_expects.empty())
            opts_.server_expects = {cert_a().fingerprint()};
        client.session = std::make_unique<Session>(config(Role::Client), now);
        if (opts_.start_server)
            start_server();
    }

    void start_server() {
        server.session = std::make_unique<Session>(config(Role::Server), now);
        // Datagrams that arrived before the server existed (as the Peer buffers them).
        auto early = std::move(early_);
        for (auto& d : early)
            server.session->handle_receive(d, now);
    }

    SessionConfig config(Role role) {
        SessionConfig c;
        c.role = role;
        c.certificate = role == Role::Client ? cert_a() : cert_b();
        c.remote_fingerprints = role == Role::Client ? opts_.client_expects : opts_.server_expects;
        c.offer_srtp = role == Role::Client ? opts_.client_srtp : opts_.server_srtp;
        c.mtu = opts_.mtu;
        if (opts_.keylog) {
            auto* side = role == Role::Client ? &client : &server;
            c.keylog = [side](std::string_view line) { side->keylog.emplace_back(line); };
        }
        return c;
    }

    // Drains both sides and delivers until nothing moves.
    void pump() {
        for (int guard = 0; guard < 10000; ++guard) {
            drain(client, true);
            drain(server, false);
            if (wire_.empty())
                return;
            if (reorder) {
                std::shuffle(wire_.begin(), wire_.end(), rng_);
            }
            auto [to_server, d] = std::move(wire_.front());
            wire_.pop_front();
            deliver(to_server, d);
        }
        FAIL() << "link never settled";
    }

    void deliver(bool to_server, const Bytes& d) {
        if (to_server) {
            if (server.session)
                server.session->handle_receive(d, now);
            else
                early_.push_back(d);
        } else {
            client.session->handle_receive(d, now);
        }
    }

    Instant next_timeout() const {
        Instant t = client.session->poll_timeout();
        if (server.session)
            t = std::min(t, server.session->poll_timeout());
        return t;
    }

    // Runs timers and traffic until `until` (virtual).
    void run_until(Instant until) {
        pump();
        for (int guard = 0; guard < 10000; ++guard) {
            const Instant t = next_timeout();
            if (t == base::kNever || t > until)
                break;
            now = std::max(now, t);
            client.session->handle_timeout(now);
            if (server.session)
                server.session->handle_timeout(now);
            pump();
        }
        now = std::max(now, until);
    }

    bool both_connected() const {
        return client.session->connected() && server.session && server.session->connected();
    }

    std::function<int(bool from_client, const Bytes& d, int index)> filter;
    bool reorder = false;
    Side client;
    Side server;
    Instant now = at(1000);

private:
    void drain(Side& s, bool is_client) {
        if (!s.session)
            return;
        while (auto d = s.session->poll_transmit()) {
            const int index = static_cast<int>(s.sent.size());
            s.sent.push_back(*d);
            const int copies = filter ? filter(is_client, *d, index) : 1;
            for (int i = 0; i < copies; ++i)
                wire_.emplace_back(is_client, *d);
        }
        while (auto e = s.session->poll_event())
            s.events.push_back(std::move(*e));
    }

    Options opts_;
    std::deque<std::pair<bool, Bytes>> wire_;
    std::vector<Bytes> early_;
    std::mt19937 rng_{12345};
};

Bytes pattern(std::size_t n, std::uint8_t seed) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = static_cast<std::uint8_t>(seed + i * 7);
    return b;
}

TEST(DtlsSession, HandshakeVerifiesBothFingerprints) {
    Link link;
    link.run_until(link.now + ms(10));
    ASSERT_TRUE(link.both_connected());
    for (Side* s : {&link.client, &link.server}) {
        const auto* c = s->first<event::Connected>();
        ASSERT_NE(c, nullptr);
        EXPECT_EQ(c->version, "DTLSv1.2");
        EXPECT_EQ(c->cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
        EXPECT_EQ(c->srtp_profile, "SRTP_AEAD_AES_128_GCM");
        EXPECT_EQ(s->count<event::Failed>(), 0);
        EXPECT_EQ(s->session->max_app_payload(), 1163u);
        EXPECT_EQ(s->session->record_overhead(), Session::kRecordOverhead);
        EXPECT_EQ(s->session->poll_timeout(), base::kNever);
        for (const auto& d : s->sent)
            EXPECT_LE(d.size(), 1200u);
        EXPECT_EQ(s->session->stats().retransmits, 0u);
        EXPECT_EQ(s->session->stats().bad_records, 0u);
    }
    EXPECT_EQ(link.client.session->peer_fingerprint(), cert_b().fingerprint());
    EXPECT_EQ(link.server.session->peer_fingerprint(), cert_a().fingerprint());
    // Handshake records are packed: a full handshake is a handful of datagrams.
    EXPECT_LE(link.client.sent.size() + link.server.sent.size(), 6u);
}

TEST(DtlsSession, ClientHelloIsReadyAtOnce) {
    Session c(Link().config(Role::Client), at(5));
    auto d = c.poll_transmit();
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(first_handshake_type(*d), kClientHello);
    EXPECT_EQ(c.poll_timeout(), at(5) + ms(100));
    EXPECT_FALSE(c.connected());
    EXPECT_FALSE(c.send(pattern(10, 1)).ok());
    EXPECT_FALSE(c.export_keying_material("EXTRACTOR-dtls_srtp", 60).ok());
    Session s(Link().config(Role::Server), at(5));
    EXPECT_FALSE(s.poll_transmit().has_value());
    EXPECT_EQ(s.poll_timeout(), base::kNever);
}

TEST(DtlsSession, DataFlowsBothWaysIncludingMaxSizeRecords) {
    Link link;
    link.pump();
    ASSERT_TRUE(link.both_connected());
    auto& c = *link.client.session;
    auto& s = *link.server.session;
    const std::size_t max = c.max_app_payload();
    const Bytes big = pattern(max, 3);
    const Bytes small = pattern(1, 9);
    ASSERT_TRUE(c.send(big).ok());
    ASSERT_TRUE(c.send(small).ok());
    ASSERT_TRUE(s.send(big).ok());
    EXPECT_FALSE(c.send(pattern(max + 1, 1)).ok());
    EXPECT_FALSE(c.send(Bytes()).ok());
    link.pump();
    for (const auto& d : link.client.sent)
        EXPECT_LE(d.size(), 1200u);
    EXPECT_EQ(link.client.sent.back().size(), 1u + Session::kRecordOverhead);
    const auto at_server = link.server.data();
    ASSERT_EQ(at_server.size(), 2u);
    EXPECT_EQ(at_server[0], big);
    EXPECT_EQ(at_server[1], small);
    ASSERT_EQ(link.client.data().size(), 1u);
    EXPECT_EQ(link.client.data()[0], big);
    // Each send is one datagram of one record.
    const Bytes& wire = link.server.sent.back();
    EXPECT_EQ(wire.size(), 1200u);
    EXPECT_EQ(content_type(wire), 23);
}

TEST(DtlsSession, SeveralRecordsInOneDatagramAllArrive) {
    Link link;
    link.pump();
    ASSERT_TRUE(link.both_connected());
    ASSERT_TRUE(link.client.session->send(pattern(100, 1)).ok());
    ASSERT_TRUE(link.client.session->send(pattern(200, 2)).ok());
    ASSERT_TRUE(link.client.session->send(pattern(300, 3)).ok());
    Bytes joined;
    while (auto d = link.client.session->poll_transmit())
        joined.insert(joined.end(), d->begin(), d->end());
    link.server.session->handle_receive(joined, link.now);
    link.pump();
    const auto got = link.server.data();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[2], pattern(300, 3));
    EXPECT_EQ(link.server.session->stats().bad_records, 0u);
}

void expect_failed_closed(const Side& s, bool expect_security, bool rejected_peer = true) {
    EXPECT_EQ(s.count<event::Connected>(), 0);
    EXPECT_EQ(s.count<event::Data>(), 0);
    ASSERT_EQ(s.count<event::Failed>(), 1);
    EXPECT_EQ(s.first<event::Failed>()->security, expect_security)
        << s.first<event::Failed>()->reason;
    EXPECT_TRUE(s.session->failed());
    EXPECT_TRUE(s.session->closed());
    EXPECT_EQ(s.session->poll_timeout(), base::kNever);
    if (rejected_peer) {
        EXPECT_FALSE(s.session->peer_fingerprint().has_value());
    }
}

TEST(DtlsSession, ClientRejectsAServerWithTheWrongFingerprint) {
    Link::Options o;
    o.client_expects = {cert_c().fingerprint()};
    Link link(o);
    link.run_until(link.now + ms(30000));
    expect_failed_closed(link.client, true);
    EXPECT_NE(link.client.first<event::Failed>()->reason.find("fingerprint"), std::string::npos);
    // The server hears a bad_certificate alert and fails too.
    expect_failed_closed(link.server, true, false);
    // Nothing more is sent or accepted.
    EXPECT_FALSE(link.client.session->send(pattern(5, 5)).ok());
}

TEST(DtlsSession, ServerRejectsAClientWithTheWrongFingerprint) {
    Link::Options o;
    o.server_expects = {cert_c().fingerprint(), cert_c().fingerprint("sha-1")};
    Link link(o);
    link.run_until(link.now + ms(30000));
    expect_failed_closed(link.server, true);
    expect_failed_closed(link.client, true, false); // it did accept the server
}

TEST(DtlsSession, MatchesAnyListedFingerprintWithItsOwnHash) {
    Link::Options o;
    o.client_expects = {cert_c().fingerprint(), cert_b().fingerprint("sha-512")};
    o.server_expects = {cert_a().fingerprint("sha-1")};
    Link link(o);
    link.pump();
    ASSERT_TRUE(link.both_connected());
    EXPECT_EQ(link.client.session->peer_fingerprint(), cert_b().fingerprint("sha-512"));
}

TEST(DtlsSession, EmptyRemoteFingerprintsAreRejected) {
    SessionConfig c = Link().config(Role::Client);
    c.remote_fingerprints.clear();
    Session s(std::move(c), at(0));
    auto e = s.poll_event();
    ASSERT_TRUE(e.has_value());
    auto* f = std::get_if<event::Failed>(&*e);
    ASSERT_NE(f, nullptr);
    EXPECT_TRUE(f->security);
    EXPECT_FALSE(s.poll_transmit().has_value());
    EXPECT_TRUE(s.failed());

    SessionConfig bad = Link().config(Role::Server);
    bad.remote_fingerprints = {Fingerprint{"sha-256", {1, 2, 3}}};
    Session s2(std::move(bad), at(0));
    EXPECT_TRUE(s2.failed());
    Session s3(SessionConfig{}, at(0)); // no certificate
    EXPECT_TRUE(s3.failed());
}

TEST(DtlsSession, LostClientHelloIsRetransmittedAfter100msOfVirtualTime) {
    Link link;
    link.filter = [](bool from_client, const Bytes&, int index) {
        return from_client && index == 0 ? 0 : 1;
    };
    const Instant start = link.now;
    link.pump();
    EXPECT_FALSE(link.both_connected());
    EXPECT_EQ(link.client.session->poll_timeout(), start + ms(100));
    link.run_until(start + ms(99));
    EXPECT_EQ(link.client.sent.size(), 1u);
    link.run_until(start + ms(100));
    ASSERT_GE(link.client.sent.size(), 2u);
    EXPECT_EQ(first_handshake_type(link.client.sent[1]), kClientHello);
    // The same message in a record with the next sequence number (RFC 6347 §4.2.4).
    const Bytes& first = link.client.sent[0];
    const Bytes& again = link.client.sent[1];
    EXPECT_TRUE(first.size() == again.size() &&
                std::equal(first.begin() + 13, first.end(), again.begin() + 13));
    EXPECT_NE(first[10], again[10]);
    EXPECT_TRUE(link.both_connected());
    EXPECT_EQ(link.client.session->stats().retransmits, 1u);
}

TEST(DtlsSession, RetransmitTimerDoubles) {
    Link link;
    link.filter = [](bool from_client, const Bytes&, int) { return from_client ? 0 : 1; };
    const Instant start = link.now;
    std::vector<std::int64_t> sent_at;
    link.pump();
    for (int i = 0; i < 5; ++i) {
        const Instant t = link.client.session->poll_timeout();
        sent_at.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(t - start).count());
        link.run_until(t);
    }
    EXPECT_EQ(sent_at, (std::vector<std::int64_t>{100, 300, 700, 1500, 3100}));
    EXPECT_EQ(link.client.session->stats().retransmits, 5u);
}

TEST(DtlsSession, HandshakeGivesUpWhenNothingComesBack) {
    Link link;
    link.filter = [](bool, const Bytes&, int) { return 0; };
    link.run_until(link.now + std::chrono::seconds(120));
    ASSERT_EQ(link.client.count<event::Failed>(), 1);
    EXPECT_FALSE(link.client.first<event::Failed>()->security);
    EXPECT_EQ(link.client.session->poll_timeout(), base::kNever);
    EXPECT_GE(link.client.session->stats().retransmits, 10u);
}

TEST(DtlsSession, LostServerFlightIsRecovered) {
    Link link;
    link.filter = [](bool from_client, const Bytes&, int index) {
        return !from_client && index == 0 ? 0 : 1;
    };
    link.run_until(link.now + ms(1000));
    EXPECT_TRUE(link.both_connected());
}

TEST(DtlsSession, LostServerFinishedIsRecovered) {
    Link link;
    // The server's last flight (ChangeCipherSpec + Finished): its first datagram that is not
    // a plaintext handshake record.
    link.filter = [dropped = false](bool from_client, const Bytes& d, int) mutable {
        if (!from_client && !dropped && first_handshake_type(d) < 0) {
            dropped = true;
            return 0;
        }
        return 1;
    };
    link.pump();
    EXPECT_TRUE(link.server.session->connected());
    EXPECT_FALSE(link.client.session->connected());
    link.run_until(link.now + ms(1000));
    EXPECT_TRUE(link.both_connected());
    EXPECT_GE(link.client.session->stats().retransmits, 1u);
}

TEST(DtlsSession, LostClientFinishedIsRecovered) {
    Link link;
    // The client's second flight (Certificate ... Finished), every datagram of it.
    link.filter = [dropped = 0](bool from_client, const Bytes& d, int) mutable {
        if (from_client && first_handshake_type(d) != kClientHello && dropped < 3) {
            ++dropped;
            return 0;
        }
        return 1;
    };
    link.run_until(link.now + ms(2000));
    EXPECT_TRUE(link.both_connected());
}

TEST(DtlsSession, ReorderedAndDuplicatedHandshakeStillConnects) {
    for (std::size_t mtu : {1200u, 300u}) {
        Link::Options o;
        o.mtu = mtu;
        Link link(o);
        link.reorder = true;
        link.filter = [](bool, const Bytes&, int) { return 2; };
        link.run_until(link.now + ms(3000));
        EXPECT_TRUE(link.both_connected()) << "mtu " << mtu;
        for (const Side* s : {&link.client, &link.server})
            for (const auto& d : s->sent)
                EXPECT_LE(d.size(), mtu);
        // Duplicates of every handshake datagram are not bad records.
        ASSERT_TRUE(link.client.session->send(pattern(50, 1)).ok());
        link.pump();
        EXPECT_EQ(link.server.data().size(), 1u) << "a duplicated record is delivered once";
        EXPECT_EQ(link.server.session->stats().bad_records, 1u) << "the replayed copy";
    }
}

TEST(DtlsSession, SmallMtuFragmentsTheHandshake) {
    Link::Options o;
    o.mtu = 300;
    Link link(o);
    link.pump();
    ASSERT_TRUE(link.both_connected());
    std::size_t largest = 0;
    for (const Side* s : {&link.client, &link.server})
        for (const auto& d : s->sent)
            largest = std::max(largest, d.size());
    EXPECT_LE(largest, 300u);
    EXPECT_GT(largest, 200u);
    EXPECT_EQ(link.client.session->max_app_payload(), 300u - Session::kRecordOverhead);
}

TEST(DtlsSession, GarbageAtEveryStageIsCountedNotFatal) {
    Link::Options o;
    o.start_server = false;
    Link link(o);
    const std::vector<Bytes> garbage = {
        Bytes{},
        Bytes{0x16},
        Bytes{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x01},       // truncated header
        Bytes{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00}, // length past the end
        Bytes{0x17, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 7},    // TLS, not DTLS version
        Bytes(100, 0xff),
        pattern(1200, 0x42),
    };
    auto inject = [&](Session& s) {
        for (const auto& g : garbage)
            s.handle_receive(g, link.now);
    };
    link.start_server();
    inject(*link.server.session);
    inject(*link.client.session);
    link.pump();
    EXPECT_TRUE(link.both_connected());
    inject(*link.server.session);
    inject(*link.client.session);
    ASSERT_TRUE(link.client.session->send(pattern(20, 1)).ok());
    link.pump();
    EXPECT_EQ(link.server.data().size(), 1u);
    // Every garbage datagram but the empty one is counted, twice per side.
    EXPECT_EQ(link.server.session->stats().bad_records, 2 * (garbage.size() - 1));
    EXPECT_EQ(link.client.session->stats().bad_records, 2 * (garbage.size() - 1));
}

TEST(DtlsSession, TamperedAndReplayedRecordsAreDroppedAndCounted) {
    Link link;
    link.pump();
    ASSERT_TRUE(link.both_connected());
    ASSERT_TRUE(link.client.session->send(pattern(64, 1)).ok());
    auto record = link.client.session->poll_transmit();
    ASSERT_TRUE(record.has_value());
    Bytes tampered = *record;
    tampered[30] ^= 0x01;
    auto& s = *link.server.session;
    s.handle_receive(tampered, link.now);
    s.handle_receive(*record, link.now);
    s.handle_receive(*record, link.now); // replay
    Bytes two = *record;                 // a datagram of a replay and a forgery
    two.insert(two.end(), tampered.begin(), tampered.end());
    s.handle_receive(two, link.now);
    link.pump();
    ASSERT_EQ(link.server.data().size(), 1u);
    EXPECT_EQ(s.stats().bad_records, 4u);
    EXPECT_TRUE(s.connected());
}

TEST(DtlsSession, KeylogLinesAreNssClientRandom) {
    Link::Options o;
    o.keylog = true;
    Link link(o);
    link.pump();
    ASSERT_TRUE(link.both_connected());
    ASSERT_EQ(link.client.keylog.size(), 1u);
    EXPECT_EQ(link.client.keylog, link.server.keylog);
    const std::string& line = link.client.keylog[0];
    ASSERT_EQ(line.size(), 14u + 64 + 1 + 96);
    EXPECT_EQ(line.substr(0, 14), "CLIENT_RANDOM ");
    EXPECT_EQ(line[14 + 64], ' ');
    for (std::size_t i = 14; i < line.size(); ++i) {
        if (i != 14 + 64) {
            EXPECT_NE(std::string("0123456789abcdefABCDEF").find(line[i]), std::string::npos)
                << line;
        }
    }
}

TEST(DtlsSession, ExporterAgreesAndSrtpProfileIsNegotiated) {
    Link link;
    link.pump();
    ASSERT_TRUE(link.both_connected());
    auto a = link.client.session->export_keying_material("EXTRACTOR-dtls_srtp", 60);
    auto b = link.server.session->export_keying_material("EXTRACTOR-dtls_srtp", 60);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->size(), 60u);
    EXPECT_EQ(*a, *b);
    auto other = link.client.session->export_keying_material("EXTRACTOR-other", 60);
    ASSERT_TRUE(other.ok());
    EXPECT_NE(*other, *a);
}

TEST(DtlsSession, NoSrtpProfileWhenOneSideDoesNotOffer) {
    Link::Options o;
    o.server_srtp = false;
    Link link(o);
    link.pump();
    ASSERT_TRUE(link.both_connected());
    EXPECT_EQ(link.client.first<event::Connected>()->srtp_profile, "");
    EXPECT_EQ(link.server.first<event::Connected>()->srtp_profile, "");
}

TEST(DtlsSession, CloseNotifyClosesThePeer) {
    Link link;
    link.pump();
    ASSERT_TRUE(link.both_connected());
    ASSERT_TRUE(link.server.session->send(pattern(10, 1)).ok());
    auto late = link.server.session->poll_transmit(); // held back: arrives after the close
    ASSERT_TRUE(late.has_value());
    link.client.session->close();
    EXPECT_TRUE(link.client.session->closed());
    EXPECT_FALSE(link.client.session->connected());
    auto alert = link.client.session->poll_transmit();
    ASSERT_TRUE(alert.has_value());
    EXPECT_EQ(content_type(*alert), 21);
    link.server.session->handle_receive(*alert, link.now);
    link.pump();
    EXPECT_EQ(link.server.count<event::Closed>(), 1);
    EXPECT_TRUE(link.server.session->closed());
    EXPECT_FALSE(link.server.session->failed());
    EXPECT_FALSE(link.server.session->send(pattern(3, 3)).ok());
    // Data that arrives after the close is ignored.
    link.client.session->handle_receive(*late, link.now);
    link.pump();
    EXPECT_EQ(link.client.count<event::Data>(), 0);
    EXPECT_EQ(link.client.count<event::Closed>(), 0);
    EXPECT_GE(link.client.session->stats().ignored, 1u);
}

TEST(DtlsSession, LateServerProcessesBufferedClientHello) {
    Link::Options o;
    o.start_server = false;
    Link link(o);
    link.pump(); // ClientHello goes to the early buffer
    link.now += ms(50);
    link.start_server();
    link.pump();
    EXPECT_TRUE(link.both_connected());
    EXPECT_EQ(link.client.session->stats().retransmits, 0u);
}

TEST(DtlsSession, MovedSessionKeepsWorking) {
    Link link;
    link.pump();
    ASSERT_TRUE(link.both_connected());
    Session moved = std::move(*link.client.session);
    *link.client.session = std::move(moved);
    ASSERT_TRUE(link.client.session->send(pattern(10, 1)).ok());
    link.pump();
    EXPECT_EQ(link.server.data().size(), 1u);
}

// Not a test: prints the cost of protecting and unprotecting one full record. Run with
// --gtest_also_run_disabled_tests --gtest_filter='*ThroughputReport*'.
TEST(DtlsSession, DISABLED_ThroughputReport) {
    Link link;
    link.pump();
    ASSERT_TRUE(link.both_connected());
    auto& c = *link.client.session;
    auto& s = *link.server.session;
    const Bytes payload = pattern(c.max_app_payload(), 1);
    // Batches small enough to stay in cache, as a driver moving datagrams would.
    constexpr int kBatch = 64;
    constexpr int kBatches = 4000;
    std::vector<Bytes> wire;
    wire.reserve(kBatch);
    using Clock = std::chrono::steady_clock;
    Clock::duration enc_time{};
    Clock::duration dec_time{};
    std::size_t bytes = 0;
    for (int b = 0; b < kBatches; ++b) {
        wire.clear();
        const auto t0 = Clock::now();
        for (int i = 0; i < kBatch; ++i) {
            (void)c.send(payload);
            wire.push_back(*c.poll_transmit());
        }
        const auto t1 = Clock::now();
        for (const auto& d : wire) {
            s.handle_receive(d, link.now);
            while (auto e = s.poll_event())
                bytes += std::get<event::Data>(*e).payload.size();
        }
        const auto t2 = Clock::now();
        enc_time += t1 - t0;
        dec_time += t2 - t1;
    }
    constexpr double kRecords = double(kBatch) * kBatches;
    ASSERT_EQ(bytes, payload.size() * kBatch * kBatches);
    const double enc = std::chrono::duration<double, std::nano>(enc_time).count() / kRecords;
    const double dec = std::chrono::duration<double, std::nano>(dec_time).count() / kRecords;
    std::printf("%zu-byte records: send %.0f ns (%.0f MB/s), receive %.0f ns (%.0f MB/s)\n",
                payload.size(), enc, 1200 / enc * 1e3, dec, 1200 / dec * 1e3);
}

} // namespace
} // namespace rtcat::dtls
