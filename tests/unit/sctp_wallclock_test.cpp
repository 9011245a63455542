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
}

namespace rtcat::test_clock {
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
    struct timespec ts {};
    clock_gettime(CLOCK_REALTIME, &ts);
    std::int64_t us = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000 +
                      g_offset_us.load(std::memory_order_relaxed);
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

} // namespace
