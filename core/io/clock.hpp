#pragma once
// The process's only clock reads. Protocol code receives `now` from the loop instead.

#include <cstdint>

#include "core/base/time.hpp"

namespace rtcat::io {

// CLOCK_MONOTONIC: unaffected by wall-clock steps, so deadlines never jump. Microseconds.
base::Instant now();

// Milliseconds since the Unix epoch (CLOCK_REALTIME), for log lines and JSON timestamps only:
// it can step backwards, so never use it for timeouts.
std::int64_t wall_time_ms();

} // namespace rtcat::io
