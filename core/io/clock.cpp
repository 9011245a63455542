#include "core/io/clock.hpp"

#include <ctime>

namespace rtcat::io {

base::Instant now() {
    timespec ts{};
    // Cannot fail for CLOCK_MONOTONIC with a valid pointer.
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    // Truncating the nanoseconds keeps now() <= the kernel's clock, so a timeout computed
    // from it is never shorter than the true remaining time (see Poller::wait).
    return base::Instant(
        base::Duration(static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000));
}

std::int64_t wall_time_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000 + ts.tv_nsec / 1'000'000;
}

} // namespace rtcat::io
