#include "core/io/poller.hpp"

#include <climits>

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/io/clock.hpp"
#include "core/io/fd.hpp"
#include "core/io/udp_socket.hpp"

namespace rtcat::io {
namespace {

using base::Duration;
using base::ms;

struct Pipe {
    UniqueFd read;
    UniqueFd write;
};

Pipe make_pipe() {
    int fds[2] = {-1, -1};
    EXPECT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

TEST(IoPoller, TimeoutRoundsUp) {
    const base::Instant t0(Duration(1'000'000));
    EXPECT_EQ(Poller::timeout_ms(base::kNever, t0), -1);
    EXPECT_EQ(Poller::timeout_ms(t0, t0), 0);
    EXPECT_EQ(Poller::timeout_ms(t0 - ms(5), t0), 0);
    EXPECT_EQ(Poller::timeout_ms(base::Instant::min(), t0), 0);
    EXPECT_EQ(Poller::timeout_ms(t0 + Duration(1), t0), 1);
    EXPECT_EQ(Poller::timeout_ms(t0 + Duration(1000), t0), 1);
    EXPECT_EQ(Poller::timeout_ms(t0 + Duration(1001), t0), 2);
    EXPECT_EQ(Poller::timeout_ms(base::Instant::max() - Duration(1), t0), INT_MAX);
}

TEST(IoPoller, TimeoutIsNeverEarly) {
    Poller poller;
    Pipe p = make_pipe();
    poller.set(p.read.get(), Interest::Read);
    // Sub-millisecond remainders are where truncating instead of rounding up would wake early.
    for (Duration wait : {Duration(300), Duration(1500), Duration(7300), Duration(25'000)}) {
        const auto deadline = now() + wait;
        auto r = poller.wait(deadline);
        ASSERT_TRUE(r.ok()) << r.error().message;
        const auto woke = now();
        EXPECT_GE(woke, deadline) << "woke " << (deadline - woke).count() << " us early";
        EXPECT_LT(woke - deadline, ms(200));
        EXPECT_FALSE(poller.readable(p.read.get()));
    }
}

TEST(IoPoller, PastDeadlineReturnsAtOnce) {
    Poller poller;
    const auto start = now();
    ASSERT_TRUE(poller.wait(start - ms(1000)).ok());
    EXPECT_LT(now() - start, ms(50));
}

TEST(IoPoller, ReportsReadableAndWritable) {
    auto a = UdpSocket::bind(*net::SocketAddr::parse("127.0.0.1:0"));
    auto b = UdpSocket::bind(*net::SocketAddr::parse("127.0.0.1:0"));
    ASSERT_TRUE(a && b);
    Poller poller;
    poller.set(b->fd(), Interest::Read);
    poller.set(a->fd(), Interest::Write);
    EXPECT_TRUE(poller.contains(a->fd()));

    ASSERT_TRUE(poller.wait(now() + ms(1000)).ok());
    EXPECT_TRUE(poller.writable(a->fd()));
    EXPECT_FALSE(poller.readable(b->fd()));

    const base::Bytes hello{'h', 'i'};
    ASSERT_TRUE(a->send_to(hello, b->local_address()).ok());
    poller.set(a->fd(), Interest::None);
    ASSERT_TRUE(poller.wait(now() + ms(1000)).ok());
    EXPECT_TRUE(poller.readable(b->fd()));
    EXPECT_FALSE(poller.writable(b->fd())); // no write interest
    EXPECT_FALSE(poller.writable(a->fd()));
    EXPECT_FALSE(poller.has_error(b->fd()));

    poller.remove(b->fd());
    EXPECT_FALSE(poller.contains(b->fd()));
    EXPECT_FALSE(poller.readable(b->fd()));
}

TEST(IoPoller, HangUpCountsAsReadable) {
    Pipe p = make_pipe();
    Poller poller;
    poller.set(p.read.get(), Interest::Read);
    p.write.reset();
    ASSERT_TRUE(poller.wait(now() + ms(1000)).ok());
    EXPECT_TRUE(poller.readable(p.read.get()));
}

TEST(IoPoller, ClosedDescriptorIsAnError) {
    int closed = -1;
    {
        Pipe p = make_pipe();
        closed = p.read.get();
    }
    Poller poller;
    poller.set(closed, Interest::Read);
    auto r = poller.wait(now() + ms(100));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(std::to_string(closed)), std::string::npos);
}

} // namespace
} // namespace rtcat::io
