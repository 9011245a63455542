#include "core/io/signals.hpp"

#include <pthread.h>

#include <thread>

#include <gtest/gtest.h>

#include "core/io/clock.hpp"
#include "core/io/poller.hpp"

namespace rtcat::io {
namespace {

void (*disposition(int signo))(int) {
    struct sigaction current {};
    EXPECT_EQ(::sigaction(signo, nullptr, &current), 0);
    return current.sa_handler;
}

TEST(IoSignalPipe, CatchesRaisedSigint) {
    const auto before_int = disposition(SIGINT);
    const auto before_pipe = disposition(SIGPIPE);
    {
        auto pipe = SignalPipe::install();
        ASSERT_TRUE(pipe.ok()) << pipe.error().message;
        SignalPipe& s = **pipe;
        EXPECT_EQ(disposition(SIGPIPE), SIG_IGN);
        EXPECT_FALSE(s.take().has_value());

        ASSERT_EQ(::raise(SIGINT), 0);
        ASSERT_EQ(::raise(SIGTERM), 0);
        Poller poller;
        poller.set(s.fd(), Interest::Read);
        ASSERT_TRUE(poller.wait(now() + base::ms(1000)).ok());
        EXPECT_TRUE(poller.readable(s.fd()));
        EXPECT_EQ(s.take(), SIGINT);
        EXPECT_EQ(s.take(), SIGTERM);
        EXPECT_FALSE(s.take().has_value());
    }
    EXPECT_EQ(disposition(SIGINT), before_int);
    EXPECT_EQ(disposition(SIGPIPE), before_pipe);
}

TEST(IoSignalPipe, WakesABlockedPoller) {
    auto pipe = SignalPipe::install();
    ASSERT_TRUE(pipe.ok()) << pipe.error().message;
    SignalPipe& s = **pipe;
    Poller poller;
    poller.set(s.fd(), Interest::Read);

    const pthread_t waiter = ::pthread_self();
    std::thread killer([waiter] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ::pthread_kill(waiter, SIGINT);
    });
    const auto start = now();
    auto r = poller.wait(base::kNever);
    killer.join();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_LT(now() - start, base::ms(1000));
    // EINTR and readiness both end the wait; either way the signal is in the pipe.
    EXPECT_EQ(s.take(), SIGINT);
}

} // namespace
} // namespace rtcat::io
