#include "core/io/udp_socket.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <dlfcn.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "core/io/clock.hpp"
#include "core/io/poller.hpp"

// ---- sendmmsg tap ------------------------------------------------------------------------------
// This binary defines sendmmsg, so UdpSocket's calls (rtcat_io is linked statically) land here
// and are forwarded to the C library's. For the one socket a test names, the tap records what
// each message carried and can play the kernel's part in two situations loopback cannot
// produce: a send buffer that fills partway through a batch (lo orphans each skb as it is
// transmitted, loopback_xmit, so a UDP sender on lo never sees EAGAIN), and a GSO send refused
// with EIO (a device without checksum offload).
namespace {

struct TappedMessage {
    std::size_t datagrams = 0; // iovecs: one per datagram
    std::uint16_t segment = 0; // UDP_SEGMENT, 0 when absent
};

struct SendmmsgTap {
    int fd = -1;
    int accept = -1;   // messages still accepted before EAGAIN; -1: no limit
    int gso_errno = 0; // fail the first message that carries UDP_SEGMENT with this errno
    std::vector<TappedMessage> messages; // every message offered, accepted or not
    std::vector<TappedMessage> accepted;
};
SendmmsgTap g_tap;

struct ScopedTap {
    explicit ScopedTap(int fd) {
        g_tap = SendmmsgTap{};
        g_tap.fd = fd;
    }
    ~ScopedTap() { g_tap = SendmmsgTap{}; }
    ScopedTap(const ScopedTap&) = delete;
    ScopedTap& operator=(const ScopedTap&) = delete;
};

std::uint16_t segment_of(msghdr& h) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_SEGMENT) {
            std::uint16_t v = 0;
            std::memcpy(&v, CMSG_DATA(c), sizeof v);
            return v;
        }
    }
    return 0;
}

} // namespace

extern "C" __attribute__((visibility("default"))) int sendmmsg(int fd, mmsghdr* msgs, unsigned n,
                                                               int flags) {
    using Fn = int (*)(int, mmsghdr*, unsigned, int);
    static const Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "sendmmsg"));
    if (fd != g_tap.fd || g_tap.fd < 0)
        return real(fd, msgs, n, flags);
    unsigned allowed = n;
    for (unsigned i = 0; i < n; ++i) {
        const TappedMessage m{msgs[i].msg_hdr.msg_iovlen, segment_of(msgs[i].msg_hdr)};
        g_tap.messages.push_back(m);
        if (g_tap.gso_errno != 0 && m.segment != 0 && i < allowed)
            allowed = i;
    }
    if (g_tap.accept >= 0)
        allowed = std::min(allowed, static_cast<unsigned>(g_tap.accept));
    if (allowed == 0) {
        const bool refused =
            g_tap.gso_errno != 0 && segment_of(msgs[0].msg_hdr) != 0 && g_tap.accept != 0;
        errno = refused ? g_tap.gso_errno : EAGAIN;
        return -1;
    }
    const int r = real(fd, msgs, allowed, flags);
    for (int i = 0; i < r; ++i)
        g_tap.accepted.push_back({msgs[i].msg_hdr.msg_iovlen, segment_of(msgs[i].msg_hdr)});
    if (r > 0 && g_tap.accept >= 0)
        g_tap.accept -= r;
    return r;
}

namespace rtcat::io {
namespace {

using base::Bytes;
using net::IpAddr;
using net::SocketAddr;

const SocketAddr kV4Any(IpAddr::v4(127, 0, 0, 1), 0);

SocketAddr v6_loopback(std::uint16_t port = 0) {
    return *SocketAddr::parse(fmt::format("[::1]:{}", port));
}

bool have_v6_loopback() {
    return UdpSocket::bind(v6_loopback()).ok();
}

UdpSocket must_bind(const SocketAddr& at, const UdpOptions& options = {}) {
    auto s = UdpSocket::bind(at, options);
    if (!s)
        ADD_FAILURE() << s.error().message;
    return std::move(s).value();
}

int read_sysctl(const char* path) {
    std::ifstream in(path);
    int v = 0;
    in >> v;
    return v;
}

// Receives until `count` datagrams arrived or `wait` passed.
std::vector<net::Datagram> receive(UdpSocket& s, std::size_t count,
                                   base::Duration wait = base::ms(1000)) {
    std::vector<net::Datagram> out;
    Poller poller;
    poller.set(s.fd(), Interest::Read);
    const auto deadline = now() + wait;
    while (out.size() < count && now() < deadline) {
        auto w = poller.wait(deadline);
        EXPECT_TRUE(w.ok()) << (w ? "" : w.error().message);
        auto r = s.recv_batch(out, UdpSocket::kMaxBatch);
        EXPECT_TRUE(r.ok()) << (r ? "" : r.error().message);
    }
    return out;
}

Bytes pattern(std::size_t size, std::size_t seed) {
    Bytes b(size);
    for (std::size_t i = 0; i < size; ++i)
        b[i] = static_cast<std::uint8_t>(seed * 31 + i);
    return b;
}

void exchange_batch(const SocketAddr& local, std::size_t max_payload) {
    UdpSocket a = must_bind(local);
    UdpSocket b = must_bind(local);
    EXPECT_EQ(a.local_address().ip(), local.ip());
    EXPECT_NE(a.local_address().port(), 0);
    EXPECT_NE(a.local_address().port(), b.local_address().port());

    // More than kMaxBatch, so sendmmsg runs more than once; sizes include 0 and the maximum.
    std::vector<net::Transmit> batch;
    for (std::size_t i = 0; i < 50; ++i) {
        std::size_t size = (i * 397) % 1500;
        if (i == 7)
            size = max_payload;
        batch.push_back(net::Transmit{{}, b.local_address(), pattern(size, i)});
    }
    auto sent = a.send_batch(batch);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    ASSERT_EQ(*sent, batch.size());

    auto got = receive(b, batch.size());
    ASSERT_EQ(got.size(), batch.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].payload, batch[i].payload) << "datagram " << i;
        EXPECT_EQ(got[i].source, a.local_address());
        EXPECT_EQ(got[i].destination, b.local_address());
    }
    EXPECT_EQ(b.kernel_drops(), 0u);
    EXPECT_EQ(b.local_drops(), 0u);
}

TEST(IoUdpSocket, BatchExchangeV4) {
    exchange_batch(kV4Any, 65507);
}

TEST(IoUdpSocket, BatchExchangeV6) {
    if (!have_v6_loopback())
        GTEST_SKIP() << "::1 is not configured on this host";
    exchange_batch(v6_loopback(), 65527);
}

TEST(IoUdpSocket, SendToAndRecvLimits) {
    UdpSocket a = must_bind(kV4Any);
    UdpSocket b = must_bind(kV4Any);
    std::vector<net::Datagram> out;
    auto none = b.recv_batch(out, 8);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(*none, 0u);

    for (int i = 0; i < 5; ++i) {
        auto r = a.send_to(pattern(100, static_cast<std::size_t>(i)), b.local_address());
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(*r, SendStatus::Sent);
    }
    auto zero = b.recv_batch(out, 0);
    ASSERT_TRUE(zero.ok());
    EXPECT_EQ(*zero, 0u);
    auto two = b.recv_batch(out, 2);
    ASSERT_TRUE(two.ok());
    EXPECT_EQ(*two, 2u);
    auto rest = b.recv_batch(out, 100);
    ASSERT_TRUE(rest.ok());
    EXPECT_EQ(*rest, 3u);
    ASSERT_EQ(out.size(), 5u);
    EXPECT_EQ(out[4].payload, pattern(100, 4));
}

TEST(IoUdpSocket, WildcardReportsPacketDestination) {
    UdpSocket any = must_bind(SocketAddr(IpAddr(), 0));
    UdpSocket a = must_bind(kV4Any);
    const SocketAddr target(IpAddr::v4(127, 0, 0, 1), any.local_address().port());
    ASSERT_TRUE(a.send_to(pattern(10, 1), target).ok());
    auto got = receive(any, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].destination, target);
    EXPECT_EQ(got[0].source, a.local_address());
}

TEST(IoUdpSocket, DualStackNormalisesIpv4) {
    UdpOptions dual;
    dual.v6only = false;
    auto bound = UdpSocket::bind(*SocketAddr::parse("[::]:0"), dual);
    if (!bound)
        GTEST_SKIP() << "no IPv6 socket: " << bound.error().message;
    UdpSocket d = std::move(bound).value();
    UdpSocket a = must_bind(kV4Any);

    const SocketAddr target(IpAddr::v4(127, 0, 0, 1), d.local_address().port());
    ASSERT_TRUE(a.send_to(pattern(10, 2), target).ok());
    auto got = receive(d, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].source, a.local_address()); // 127.0.0.1, not ::ffff:127.0.0.1
    EXPECT_EQ(got[0].destination, target);

    // The reply goes to a plain IPv4 address from the IPv6 socket.
    auto sent = d.send_to(pattern(10, 3), got[0].source);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    auto back = receive(a, 1);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].source, target);
}

TEST(IoUdpSocket, FamilyMismatchIsAnError) {
    UdpSocket a = must_bind(kV4Any);
    auto r = a.send_to(pattern(1, 0), v6_loopback(9));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("[::1]:9"), std::string::npos) << r.error().message;

    std::vector<net::Transmit> batch{net::Transmit{{}, v6_loopback(9), pattern(1, 0)}};
    auto b = a.send_batch(batch);
    ASSERT_FALSE(b.ok());

    if (have_v6_loopback()) {
        UdpSocket v6 = must_bind(v6_loopback()); // v6only by default
        auto m = v6.send_to(pattern(1, 0), SocketAddr(IpAddr::v4(127, 0, 0, 1), 9));
        ASSERT_FALSE(m.ok());
        EXPECT_NE(m.error().message.find("IPv6-only"), std::string::npos) << m.error().message;
    }
}

TEST(IoUdpSocket, BufferSizes) {
    const int rmem_max = read_sysctl("/proc/sys/net/core/rmem_max");
    const int wmem_max = read_sysctl("/proc/sys/net/core/wmem_max");
    ASSERT_GT(rmem_max, 0);

    UdpSocket s = must_bind(kV4Any);
    const UdpOptions defaults;
    // The kernel clamps a request to the sysctl limit, otherwise grants it.
    EXPECT_EQ(s.buffer_sizes().rcvbuf, std::min(defaults.rcvbuf, rmem_max));
    EXPECT_EQ(s.buffer_sizes().sndbuf, std::min(defaults.sndbuf, wmem_max));
    RecordProperty("rmem_max", rmem_max);
    RecordProperty("rcvbuf_granted", s.buffer_sizes().rcvbuf);

    UdpOptions huge;
    huge.rcvbuf = 64 * 1024 * 1024;
    huge.sndbuf = 64 * 1024 * 1024;
    UdpSocket h = must_bind(kV4Any, huge);
    EXPECT_EQ(h.buffer_sizes().rcvbuf, rmem_max) << "64 MiB request is clamped to rmem_max";
    EXPECT_EQ(h.buffer_sizes().sndbuf, wmem_max);

    UdpOptions tiny;
    tiny.rcvbuf = 1;
    tiny.sndbuf = 1;
    UdpSocket t = must_bind(kV4Any, tiny);
    EXPECT_GE(t.buffer_sizes().rcvbuf, 1); // raised to the kernel's minimum
    EXPECT_LT(t.buffer_sizes().rcvbuf, 64 * 1024);
}

// A port on 127.0.0.1 that nothing listens on: bound, noted, closed.
SocketAddr closed_port(const SocketAddr& local) {
    UdpSocket s = must_bind(local);
    return s.local_address();
}

// Waits up to 1 s for POLLERR and returns the first queued error.
std::optional<IcmpError> wait_for_error(UdpSocket& s) {
    Poller poller;
    poller.set(s.fd(), Interest::Read);
    const auto deadline = now() + base::ms(1000);
    while (now() < deadline) {
        auto w = poller.wait(deadline);
        EXPECT_TRUE(w.ok());
        if (poller.has_error(s.fd()))
            return s.read_error();
    }
    return std::nullopt;
}

void port_unreachable(const SocketAddr& local, std::string_view kind) {
    const SocketAddr closed = closed_port(local);
    UdpSocket a = must_bind(local);
    const auto start = now();
    auto r = a.send_to(pattern(20, 0), closed);
    ASSERT_TRUE(r.ok()) << r.error().message;

    auto e = wait_for_error(a);
    ASSERT_TRUE(e.has_value()) << "no ICMP error within 1 s";
    EXPECT_LT(now() - start, base::ms(1000));
    EXPECT_EQ(e->error, ECONNREFUSED);
    EXPECT_EQ(e->destination, closed);
    ASSERT_TRUE(e->reporter.has_value());
    EXPECT_EQ(*e->reporter, local.ip());
    EXPECT_NE(e->message.find(kind), std::string::npos) << e->message;
    EXPECT_NE(e->message.find(closed.to_string()), std::string::npos) << e->message;
    EXPECT_FALSE(a.read_error().has_value()) << "the queue held exactly one error";
}

TEST(IoUdpSocket, IcmpPortUnreachableV4) {
    port_unreachable(kV4Any, "ICMP port unreachable");
}

TEST(IoUdpSocket, IcmpPortUnreachableV6) {
    if (!have_v6_loopback())
        GTEST_SKIP() << "::1 is not configured on this host";
    port_unreachable(v6_loopback(), "ICMPv6 port unreachable");
}

// IPv4 traffic on a dual-stack socket reports ICMPv4 errors only with the IPv4 IP_RECVERR.
TEST(IoUdpSocket, IcmpPortUnreachableOnDualStack) {
    UdpOptions dual;
    dual.v6only = false;
    auto bound = UdpSocket::bind(*SocketAddr::parse("[::]:0"), dual);
    if (!bound)
        GTEST_SKIP() << "no IPv6 socket: " << bound.error().message;
    UdpSocket d = std::move(bound).value();
    const SocketAddr closed = closed_port(kV4Any);
    ASSERT_TRUE(d.send_to(pattern(20, 0), closed).ok());
    auto e = wait_for_error(d);
    ASSERT_TRUE(e.has_value()) << "no ICMP error within 1 s";
    EXPECT_EQ(e->error, ECONNREFUSED);
    EXPECT_EQ(e->destination, closed); // 127.0.0.1:port, not ::ffff:127.0.0.1
    EXPECT_NE(e->message.find("ICMP port unreachable"), std::string::npos) << e->message;
}

// The ICMP error also leaves ECONNREFUSED pending on the socket, which the next send or
// receive returns once; neither may fail or lose its datagram because of it.
TEST(IoUdpSocket, PendingIcmpErrorDoesNotFailSendOrReceive) {
    const SocketAddr closed = closed_port(kV4Any);
    UdpSocket a = must_bind(kV4Any);
    UdpSocket b = must_bind(kV4Any);

    ASSERT_TRUE(a.send_to(pattern(20, 0), closed).ok());
    ASSERT_TRUE(b.send_to(pattern(20, 1), a.local_address()).ok());
    auto got = receive(a, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, pattern(20, 1));

    ASSERT_TRUE(a.send_to(pattern(20, 0), closed).ok());
    auto sent = a.send_to(pattern(20, 2), b.local_address());
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    std::vector<net::Transmit> batch{net::Transmit{{}, closed, pattern(5, 0)},
                                     net::Transmit{{}, b.local_address(), pattern(20, 3)},
                                     net::Transmit{{}, b.local_address(), pattern(20, 4)}};
    auto n = a.send_batch(batch);
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(*n, 3u);
    auto at_b = receive(b, 3);
    ASSERT_EQ(at_b.size(), 3u);
    EXPECT_EQ(at_b[2].payload, pattern(20, 4));

    int errors = 0;
    while (auto e = a.read_error()) {
        EXPECT_EQ(e->error, ECONNREFUSED);
        EXPECT_EQ(e->destination, closed);
        ++errors;
    }
    EXPECT_EQ(errors, 3);
}

TEST(IoUdpSocket, CountsKernelDrops) {
    UdpOptions tiny;
    tiny.rcvbuf = 1;  // the kernel's minimum: a few datagrams
    tiny.gro = false; // one count per datagram (see CountsCoalescedDropsOnce)
    UdpSocket r = must_bind(kV4Any, tiny);
    UdpSocket s = must_bind(kV4Any);
    std::vector<net::Transmit> flood(200, net::Transmit{{}, r.local_address(), pattern(1000, 0)});
    auto sent = s.send_batch(flood);
    ASSERT_TRUE(sent.ok()) << sent.error().message;

    std::vector<net::Datagram> out;
    while (r.recv_batch(out, UdpSocket::kMaxBatch).value() > 0) {
    }
    const std::size_t queued = out.size();
    EXPECT_LT(queued, 200u);
    // The count rides on datagrams queued after the drops.
    ASSERT_TRUE(s.send_to(pattern(10, 9), r.local_address()).ok());
    auto last = receive(r, 1);
    ASSERT_EQ(last.size(), 1u);
    EXPECT_EQ(r.kernel_drops(), 200u - queued);
}

TEST(IoUdpSocket, MoveTransfersOwnership) {
    UdpSocket a = must_bind(kV4Any);
    const int fd = a.fd();
    const SocketAddr addr = a.local_address();
    UdpSocket b = std::move(a);
    EXPECT_EQ(b.fd(), fd);
    EXPECT_EQ(b.local_address(), addr);
    EXPECT_EQ(a.fd(), -1); // NOLINT(bugprone-use-after-move): moved-from state is specified
}

TEST(IoUdpSocket, BindErrorNamesAddress) {
    UdpSocket a = must_bind(kV4Any);
    auto again = UdpSocket::bind(a.local_address());
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().message.find(a.local_address().to_string()), std::string::npos);
    EXPECT_NE(again.error().message.find("EADDRINUSE"), std::string::npos) << again.error().message;
}

// ---- segmentation offload (GSO/GRO) --------------------------------------------------------

UdpOptions plain_receiver() {
    UdpOptions o;
    o.gro = false;
    return o;
}

// Sizes of what arrived, in order.
std::vector<std::size_t> sizes_of(const std::vector<net::Datagram>& got) {
    std::vector<std::size_t> out;
    for (const auto& d : got)
        out.push_back(d.payload.size());
    return out;
}

// Datagrams per message, in order.
std::vector<std::size_t> shape(const std::vector<TappedMessage>& messages) {
    std::vector<std::size_t> out;
    for (const auto& m : messages)
        out.push_back(m.datagrams);
    return out;
}

std::vector<net::Transmit> transmits(const SocketAddr& to, const std::vector<std::size_t>& sizes,
                                     std::size_t seed = 0) {
    std::vector<net::Transmit> out;
    for (std::size_t i = 0; i < sizes.size(); ++i)
        out.push_back(net::Transmit{{}, to, pattern(sizes[i], seed + i)});
    return out;
}

void expect_same_payloads(const std::vector<net::Datagram>& got,
                          const std::vector<net::Transmit>& sent) {
    ASSERT_EQ(got.size(), sent.size());
    for (std::size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(got[i].payload, sent[i].payload) << "datagram " << i;
}

// The machines this runs on have Linux >= 5.0; elsewhere the offload tests have nothing to test.
#define REQUIRE_OFFLOAD(sock)                                                                      \
    do {                                                                                           \
        if (!(sock).gso_active() || !(sock).gro_active())                                          \
            GTEST_SKIP() << "the kernel refuses UDP_SEGMENT or UDP_GRO";                           \
    } while (false)

TEST(IoUdpSocketOffload, ActiveByDefaultAndOffOnRequest) {
    UdpSocket a = must_bind(kV4Any);
    REQUIRE_OFFLOAD(a);
    UdpOptions off;
    off.gso = false;
    off.gro = false;
    UdpSocket b = must_bind(kV4Any, off);
    EXPECT_FALSE(b.gso_active());
    EXPECT_FALSE(b.gro_active());
}

// The kernel splits a GSO send for a receiver without GRO: separate datagrams, in order.
void gso_to_plain_receiver(const SocketAddr& local) {
    UdpSocket a = must_bind(local);
    REQUIRE_OFFLOAD(a);
    UdpSocket b = must_bind(local, plain_receiver());
    std::vector<std::size_t> sizes(40, 1200);
    sizes.push_back(700);
    const auto batch = transmits(b.local_address(), sizes);
    ScopedTap tap(a.fd());
    auto sent = a.send_batch(batch);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    EXPECT_EQ(*sent, batch.size());
    EXPECT_EQ(shape(g_tap.accepted), (std::vector<std::size_t>{41}));
    EXPECT_EQ(g_tap.accepted.at(0).segment, 1200);
    EXPECT_EQ(a.offload_stats().gso_sends, 1u);
    EXPECT_EQ(a.offload_stats().gso_datagrams, 41u);

    auto got = receive(b, batch.size());
    EXPECT_EQ(sizes_of(got), sizes);
    expect_same_payloads(got, batch);
    for (const auto& d : got) {
        EXPECT_EQ(d.source, a.local_address());
        EXPECT_EQ(d.destination, b.local_address());
    }
    EXPECT_EQ(b.offload_stats().gro_receives, 0u);
    EXPECT_EQ(b.kernel_drops(), 0u);
}

TEST(IoUdpSocketOffload, GsoSendArrivesAsDatagramsAtPlainReceiverV4) {
    gso_to_plain_receiver(kV4Any);
}

TEST(IoUdpSocketOffload, GsoSendArrivesAsDatagramsAtPlainReceiverV6) {
    if (!have_v6_loopback())
        GTEST_SKIP() << "::1 is not configured on this host";
    gso_to_plain_receiver(v6_loopback());
}

// A GRO receiver gets the send in one receive and splits it by the UDP_GRO segment size,
// including a shorter last datagram.
void gro_receiver_splits(const SocketAddr& local) {
    UdpSocket a = must_bind(local);
    REQUIRE_OFFLOAD(a);
    UdpSocket b = must_bind(local);
    std::vector<std::size_t> sizes(10, 1200);
    sizes.push_back(333);
    const auto batch = transmits(b.local_address(), sizes, 7);
    auto sent = a.send_batch(batch);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    ASSERT_EQ(*sent, batch.size());

    auto got = receive(b, batch.size());
    EXPECT_EQ(sizes_of(got), sizes);
    expect_same_payloads(got, batch);
    for (const auto& d : got) {
        EXPECT_EQ(d.source, a.local_address());
        EXPECT_EQ(d.destination, b.local_address());
    }
    EXPECT_EQ(b.offload_stats().gro_receives, 1u) << "the send was not received coalesced";
    EXPECT_EQ(b.offload_stats().gro_datagrams, 11u);
}

TEST(IoUdpSocketOffload, GroReceiverSplitsWithShortLastV4) {
    gro_receiver_splits(kV4Any);
}

TEST(IoUdpSocketOffload, GroReceiverSplitsWithShortLastV6) {
    if (!have_v6_loopback())
        GTEST_SKIP() << "::1 is not configured on this host";
    gro_receiver_splits(v6_loopback());
}

// A wildcard-bound GRO receiver reports the packet's destination on every split datagram.
TEST(IoUdpSocketOffload, GroReceiverOnWildcardKeepsDestination) {
    UdpSocket any = must_bind(SocketAddr(IpAddr(), 0));
    REQUIRE_OFFLOAD(any);
    UdpSocket a = must_bind(kV4Any);
    const SocketAddr target(IpAddr::v4(127, 0, 0, 1), any.local_address().port());
    const auto batch = transmits(target, {900, 900, 900, 10});
    ASSERT_EQ(a.send_batch(batch).value(), 4u);
    auto got = receive(any, 4);
    expect_same_payloads(got, batch);
    for (const auto& d : got)
        EXPECT_EQ(d.destination, target);
    EXPECT_EQ(any.offload_stats().gro_receives, 1u);
}

// Runs end at a size change (a bigger datagram, or after a shorter one), an empty datagram and
// a change of destination; each destination still gets its datagrams in order.
TEST(IoUdpSocketOffload, RunsBreakAtSizeAndDestinationChanges) {
    UdpSocket a = must_bind(kV4Any);
    REQUIRE_OFFLOAD(a);
    UdpSocket b = must_bind(kV4Any);
    UdpSocket c = must_bind(kV4Any);
    const SocketAddr B = b.local_address();
    const SocketAddr C = c.local_address();
    struct Step {
        SocketAddr to;
        std::size_t size;
    };
    const std::vector<Step> steps = {
        {B, 1200}, {B, 1200}, {B, 1200}, {B, 700}, // 4: the shorter one ends the run
        {B, 1200}, {B, 1200},                      // 2: then a new destination
        {C, 1200}, {C, 1200},                      // 2
        {B, 1200},                                 // 1: the next is bigger
        {B, 1300}, {B, 1300},                      // 2: the next is empty
        {B, 0},                                    // 1: never coalesced
        {B, 500},                                  // 1: the next goes elsewhere
        {C, 500},                                  // 1
    };
    std::vector<net::Transmit> batch;
    std::vector<net::Transmit> to_b;
    std::vector<net::Transmit> to_c;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        batch.push_back(net::Transmit{{}, steps[i].to, pattern(steps[i].size, i)});
        (steps[i].to == B ? to_b : to_c).push_back(batch.back());
    }
    ScopedTap tap(a.fd());
    auto sent = a.send_batch(batch);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    EXPECT_EQ(*sent, batch.size());
    EXPECT_EQ(shape(g_tap.accepted), (std::vector<std::size_t>{4, 2, 2, 1, 2, 1, 1, 1}));
    std::vector<std::uint16_t> segments;
    for (const auto& m : g_tap.accepted)
        segments.push_back(m.segment);
    EXPECT_EQ(segments, (std::vector<std::uint16_t>{1200, 1200, 1200, 0, 1300, 0, 0, 0}));
    EXPECT_EQ(a.offload_stats().gso_sends, 4u);

    auto at_b = receive(b, to_b.size());
    auto at_c = receive(c, to_c.size());
    expect_same_payloads(at_b, to_b);
    expect_same_payloads(at_c, to_c);
    EXPECT_EQ(b.offload_stats().gro_receives, 3u);
    EXPECT_EQ(c.offload_stats().gro_receives, 1u);
}

// A run is cut at kMaxGsoSegments datagrams and at kMaxGsoBytes, and a coalesced receive of
// that size still arrives whole.
TEST(IoUdpSocketOffload, RunsRespectSegmentAndByteLimits) {
    UdpSocket a = must_bind(kV4Any);
    REQUIRE_OFFLOAD(a);
    UdpSocket b = must_bind(kV4Any);
    ScopedTap tap(a.fd());

    const auto small = transmits(b.local_address(), std::vector<std::size_t>(150, 100));
    ASSERT_EQ(a.send_batch(small).value(), small.size());
    EXPECT_EQ(shape(g_tap.accepted), (std::vector<std::size_t>{64, 64, 22}));
    expect_same_payloads(receive(b, small.size()), small);

    g_tap.accepted.clear();
    const std::size_t per_send = UdpSocket::kMaxGsoBytes / 1200;
    ASSERT_EQ(per_send, 54u);
    const auto full = transmits(b.local_address(), std::vector<std::size_t>(60, 1200), 3);
    ASSERT_EQ(a.send_batch(full).value(), full.size());
    EXPECT_EQ(shape(g_tap.accepted), (std::vector<std::size_t>{54, 6}));
    const auto before = b.offload_stats().gro_receives;
    expect_same_payloads(receive(b, full.size()), full);
    EXPECT_EQ(b.offload_stats().gro_receives - before, 2u) << "a 54 x 1200 send was split";
}

// recv_batch counts datagrams, but never splits one coalesced receive across calls.
TEST(IoUdpSocketOffload, RecvBatchKeepsCoalescedReceivesWhole) {
    UdpSocket a = must_bind(kV4Any);
    REQUIRE_OFFLOAD(a);
    UdpSocket b = must_bind(kV4Any);
    std::vector<net::Transmit> batch;
    for (std::size_t run = 0; run < 3; ++run) {
        auto part = transmits(b.local_address(), std::vector<std::size_t>(40, 1000 + run), run);
        batch.insert(batch.end(), part.begin(), part.end());
    }
    ASSERT_EQ(a.send_batch(batch).value(), batch.size());
    Poller poller;
    poller.set(b.fd(), Interest::Read);
    ASSERT_TRUE(poller.wait(now() + base::ms(1000)).ok());

    std::vector<net::Datagram> out;
    for (int call = 0; call < 4 && out.size() < batch.size(); ++call) {
        const std::size_t n = b.recv_batch(out, 10).value();
        EXPECT_GT(n, 0u);
        EXPECT_EQ(n % 40, 0u) << "a coalesced receive was split across calls";
    }
    EXPECT_EQ(b.recv_batch(out, 10).value(), 0u);
    expect_same_payloads(out, batch);

    // Once it has seen 40 per receive, it asks the kernel for one receive per 40 wanted.
    ASSERT_EQ(a.send_batch(batch).value(), batch.size());
    ASSERT_TRUE(poller.wait(now() + base::ms(1000)).ok());
    out.clear();
    EXPECT_EQ(b.recv_batch(out, 10).value(), 40u);
    EXPECT_EQ(b.recv_batch(out, 41).value(), 80u);
    EXPECT_EQ(b.recv_batch(out, 10).value(), 0u);
    expect_same_payloads(out, batch);
}

// With GRO the kernel drops a coalesced receive whole and counts it once.
TEST(IoUdpSocketOffload, CountsCoalescedDropsOnce) {
    UdpOptions tiny;
    tiny.rcvbuf = 1;
    UdpSocket r = must_bind(kV4Any, tiny);
    UdpSocket s = must_bind(kV4Any);
    REQUIRE_OFFLOAD(s);
    REQUIRE_OFFLOAD(r);
    // Four sends: 64, 64, 64 and 8 datagrams; the first fills the tiny buffer.
    std::vector<net::Transmit> flood(200, net::Transmit{{}, r.local_address(), pattern(1000, 0)});
    ASSERT_EQ(s.send_batch(flood).value(), flood.size());
    std::vector<net::Datagram> out;
    while (r.recv_batch(out, UdpSocket::kMaxBatch).value() > 0) {
    }
    EXPECT_EQ(out.size(), 64u);
    ASSERT_TRUE(s.send_to(pattern(10, 9), r.local_address()).ok());
    ASSERT_EQ(receive(r, 1).size(), 1u);
    EXPECT_EQ(r.kernel_drops(), 3u);
}

// Forced fallback: a sender without GSO and a receiver without GRO still exchange everything,
// in every combination with offloading peers.
TEST(IoUdpSocketOffload, ForcedPlainPathsInteroperate) {
    UdpOptions no_gso;
    no_gso.gso = false;
    UdpOptions no_gro = plain_receiver();
    UdpOptions both_off = no_gso;
    both_off.gro = false;
    const UdpOptions combos[][2] = {
        {no_gso, {}}, {{}, no_gro}, {both_off, both_off}, {both_off, {}}, {{}, both_off}};
    std::size_t seed = 0;
    for (const auto& combo : combos) {
        UdpSocket a = must_bind(kV4Any, combo[0]);
        UdpSocket b = must_bind(kV4Any, combo[1]);
        EXPECT_EQ(a.gso_active(), combo[0].gso && must_bind(kV4Any).gso_active());
        std::vector<std::size_t> sizes(30, 1100);
        sizes.push_back(20);
        const auto batch = transmits(b.local_address(), sizes, seed++);
        ScopedTap tap(a.fd());
        ASSERT_EQ(a.send_batch(batch).value(), batch.size());
        if (!combo[0].gso) {
            EXPECT_EQ(shape(g_tap.accepted), std::vector<std::size_t>(31, 1));
            EXPECT_EQ(a.offload_stats().gso_sends, 0u);
        }
        expect_same_payloads(receive(b, batch.size()), batch);
        if (!combo[1].gro) {
            EXPECT_EQ(b.offload_stats().gro_receives, 0u);
        }
    }
}

// A GSO send the kernel refuses (here for real: UDP GSO needs a checksum, and SO_NO_CHECK
// turns it off, so udp_send_skb answers EINVAL) turns GSO off for the socket and resends the
// same datagrams one by one: none is lost, none duplicated, the count stays exact.
TEST(IoUdpSocketOffload, KernelRefusalFallsBackWithoutLoss) {
    UdpSocket a = must_bind(kV4Any);
    REQUIRE_OFFLOAD(a);
    UdpSocket b = must_bind(kV4Any, plain_receiver());
    const int one = 1;
    ASSERT_EQ(::setsockopt(a.fd(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0);

    std::vector<std::size_t> sizes = {300, 1200, 1200, 1200, 800, 1000, 1000};
    const auto batch = transmits(b.local_address(), sizes);
    ScopedTap tap(a.fd());
    auto sent = a.send_batch(batch);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    EXPECT_EQ(*sent, batch.size());
    EXPECT_FALSE(a.gso_active());
    EXPECT_EQ(a.offload_stats().gso_fallbacks, 1u);
    EXPECT_EQ(a.offload_stats().gso_sends, 0u);
    // Offered: [1] [4 refused] [2], then one by one from the refused run on.
    EXPECT_EQ(shape(g_tap.accepted), std::vector<std::size_t>(7, 1));
    auto got = receive(b, batch.size() + 1, base::ms(300));
    expect_same_payloads(got, batch);

    // Later batches go the plain way from the start.
    g_tap.messages.clear();
    ASSERT_EQ(a.send_batch(batch).value(), batch.size());
    EXPECT_EQ(shape(g_tap.messages), std::vector<std::size_t>(7, 1));
    expect_same_payloads(receive(b, batch.size()), batch);
}

// EIO, as from a device without checksum offload (simulated), in the middle of a call.
TEST(IoUdpSocketOffload, EioFromGsoSendFallsBack) {
    UdpSocket a = must_bind(kV4Any);
    REQUIRE_OFFLOAD(a);
    UdpSocket b = must_bind(kV4Any);
    const auto batch = transmits(b.local_address(), {50, 1200, 1200, 1200, 1200, 70});
    ScopedTap tap(a.fd());
    g_tap.gso_errno = EIO;
    auto sent = a.send_batch(batch);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    EXPECT_EQ(*sent, batch.size());
    EXPECT_FALSE(a.gso_active());
    EXPECT_EQ(shape(g_tap.accepted), std::vector<std::size_t>(6, 1));
    expect_same_payloads(receive(b, batch.size() + 1, base::ms(300)), batch);
}

// The send buffer fills after some messages (simulated, see the tap): the count is exactly the
// datagrams of the messages that went, and sending the rest later completes the sequence.
TEST(IoUdpSocketOffload, PartialSendReportsExactCount) {
    UdpSocket a = must_bind(kV4Any);
    REQUIRE_OFFLOAD(a);
    UdpSocket b = must_bind(kV4Any);
    std::vector<std::size_t> sizes(10, 1200); // [10] [5] [1] [20]: an empty one goes alone
    sizes.insert(sizes.end(), 5, 1000);
    sizes.push_back(0);
    sizes.insert(sizes.end(), 20, 1200);
    const auto batch = transmits(b.local_address(), sizes);
    const std::span<const net::Transmit> all(batch);

    ScopedTap tap(a.fd());
    g_tap.accept = 0; // full from the start
    EXPECT_EQ(a.send_batch(all).value(), 0u);
    g_tap.accept = 2;
    EXPECT_EQ(a.send_batch(all).value(), 15u);
    g_tap.accept = 1;
    EXPECT_EQ(a.send_batch(all.subspan(15)).value(), 1u);
    auto early = receive(b, 17, base::ms(300));
    EXPECT_EQ(early.size(), 16u) << "only what was reported sent may arrive";

    g_tap.accept = -1;
    EXPECT_EQ(a.send_batch(all.subspan(16)).value(), 20u);
    auto rest = receive(b, 20);
    early.insert(early.end(), rest.begin(), rest.end());
    expect_same_payloads(early, batch);
    EXPECT_EQ(a.offload_stats().gso_datagrams, 35u);
}

// The same exactness on the plain path.
TEST(IoUdpSocketOffload, PartialSendReportsExactCountWithoutGso) {
    UdpOptions no_gso;
    no_gso.gso = false;
    UdpSocket a = must_bind(kV4Any, no_gso);
    UdpSocket b = must_bind(kV4Any);
    const auto batch = transmits(b.local_address(), std::vector<std::size_t>(12, 1200));
    ScopedTap tap(a.fd());
    g_tap.accept = 5;
    EXPECT_EQ(a.send_batch(batch).value(), 5u);
    expect_same_payloads(receive(b, 6, base::ms(300)),
                         std::vector<net::Transmit>(batch.begin(), batch.begin() + 5));
}

} // namespace
} // namespace rtcat::io
