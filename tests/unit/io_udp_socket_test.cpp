#include "core/io/udp_socket.hpp"

#include <cerrno>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "core/io/clock.hpp"
#include "core/io/poller.hpp"

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

// Receives until `count` datagrams arrived or a second passed.
std::vector<net::Datagram> receive(UdpSocket& s, std::size_t count) {
    std::vector<net::Datagram> out;
    Poller poller;
    poller.set(s.fd(), Interest::Read);
    const auto deadline = now() + base::ms(1000);
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
    tiny.rcvbuf = 1; // the kernel's minimum: a few datagrams
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

} // namespace
} // namespace rtcat::io
