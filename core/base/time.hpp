#pragma once
// Time is an input to the core: machines take `now` and return deadlines. Nothing in core/
// reads a clock; core/io maps the monotonic clock onto Instant.

#include <chrono>
#include <cstdint>

namespace rtcat::base {

using Duration = std::chrono::microseconds;

// A clock tag with no now(): only core/io (and tests, virtually) produce Instants.
struct MonoClock {
    using duration = Duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<MonoClock, duration>;
    static constexpr bool is_steady = true;
};

using Instant = MonoClock::time_point;

constexpr Instant kNever = Instant::max();

inline constexpr Duration ms(std::int64_t v) {
    return std::chrono::milliseconds(v);
}
inline constexpr double to_ms(Duration d) {
    return static_cast<double>(d.count()) / 1000.0;
}

} // namespace rtcat::base
