// The gettimeofday interposer of sctp_test_wallclock.hpp and its checks. libusrsctp (and libssl)
// are shared libraries, so their gettimeofday calls resolve to this definition in the
// executable.

#include <sys/time.h>

#include <atomic>
#include <cstdint>
#include <ctime>

#include <gtest/gtest.h>

#include "tests/unit/sctp_test_wallclock.hpp"

namespace {
std::atomic<std::int64_t> g_offset_us{0};
// ScopedVirtualWallClock: how many are alive, and the real time (µs) when the first one began.
std::atomic<int> g_virtual_depth{0};
std::atomic<std::int64_t> g_frozen_real_us{0};

std::int64_t real_now_us() {
    struct timespec ts {};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}
} // namespace

namespace rtcat::test_clock {
ScopedVirtualWallClock::ScopedVirtualWallClock() {
    if (g_virtual_depth.load(std::memory_order_relaxed) == 0)
        g_frozen_real_us.store(real_now_us(), std::memory_order_relaxed);
    g_virtual_depth.fetch_add(1, std::memory_order_relaxed);
}
ScopedVirtualWallClock::~ScopedVirtualWallClock() {
    g_virtual_depth.fetch_sub(1, std::memory_order_relaxed);
}

void advance_wall_clock(base::Duration d) {
    if (d.count() > 0)
        g_offset_us.fetch_add(d.count(), std::memory_order_relaxed);
}
base::Duration wall_clock_offset() {
    return base::Duration(g_offset_us.load(std::memory_order_relaxed));
}
} // namespace rtcat::test_clock

extern "C" __attribute__((visibility("default"))) int
gettimeofday(struct timeval* __restrict tv, void* __restrict /*tz*/) noexcept {
    const std::int64_t base = g_virtual_depth.load(std::memory_order_relaxed) > 0
                                  ? g_frozen_real_us.load(std::memory_order_relaxed)
                                  : real_now_us();
    std::int64_t us = base + g_offset_us.load(std::memory_order_relaxed);
    tv->tv_sec = static_cast<time_t>(us / 1'000'000);
    tv->tv_usec = static_cast<suseconds_t>(us % 1'000'000);
    return 0;
}

namespace {

TEST(SctpWallClock, InterposedGettimeofdayFollowsTheOffset) {
    struct timeval before {};
    gettimeofday(&before, nullptr);
    rtcat::test_clock::advance_wall_clock(std::chrono::seconds(5));
    struct timeval after {};
    gettimeofday(&after, nullptr);
    auto delta = (after.tv_sec - before.tv_sec) * 1'000'000 + (after.tv_usec - before.tv_usec);
    EXPECT_GE(delta, 5'000'000);
    EXPECT_LT(delta, 6'000'000);
}

TEST(SctpWallClock, VirtualScopeExcludesRealTime) {
    struct timeval before {};
    struct timeval during {};
    struct timeval after {};
    auto us = [](const timeval& tv) {
        return static_cast<std::int64_t>(tv.tv_sec) * 1'000'000 + tv.tv_usec;
    };
    {
        rtcat::test_clock::ScopedVirtualWallClock frozen;
        gettimeofday(&before, nullptr);
        // Real time passes (a busy test process), the virtual clock does not.
        struct timespec nap {
            0, 20'000'000
        };
        nanosleep(&nap, nullptr);
        gettimeofday(&during, nullptr);
        EXPECT_EQ(us(during), us(before));
        rtcat::test_clock::advance_wall_clock(std::chrono::milliseconds(250));
        gettimeofday(&during, nullptr);
        EXPECT_EQ(us(during) - us(before), 250'000);
    }
    gettimeofday(&after, nullptr);
    EXPECT_GE(us(after), us(during)) << "leaving the scope never moves the clock backwards";
}

} // namespace
