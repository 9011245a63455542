#pragma once
// A test-only wall clock for libraries that read gettimeofday themselves (usrsctp: RTT samples,
// T3 retransmission eligibility in sctp_mark_all_for_resend, PR-SCTP lifetimes; libssl: DTLS
// retransmission timers). The unit-test binary interposes gettimeofday (sctp_wallclock_test.cpp):
// it returns the real time plus an offset that virtual-time tests advance together with their
// `now`, so a 200 ms virtual step is also 200 ms for the library. Without it, T3 timers fire on
// virtual time but usrsctp refuses to retransmit chunks "sent less than one RTO ago" by its real
// clock, and lossy tests stall.
//
// Real time still leaks into that clock: whatever CPU time the test process spends between two
// virtual instants (key generation, hashing, or just a loaded machine) shows up in usrsctp's RTT
// samples. One inflated sample (hundreds of ms on a loaded 2-core box) sets RTO to seconds, and
// a lossy transfer then crawls on backed-off T3 timeouts — nondeterministically. Virtual-time
// tests therefore hold a ScopedVirtualWallClock: while one lives, gettimeofday stops following
// the real clock and moves only by advance_wall_clock().

#include "core/base/time.hpp"

namespace rtcat::test_clock {

void advance_wall_clock(base::Duration d);
// Total offset applied so far (for the interposer's own test).
base::Duration wall_clock_offset();

// While at least one is alive, gettimeofday = (real time when the first was created) + offset
// added since: purely virtual, deterministic. On destruction of the last one the clock follows
// the real time again (it never goes backwards: real time only advanced meanwhile).
class ScopedVirtualWallClock {
public:
    ScopedVirtualWallClock();
    ~ScopedVirtualWallClock();
    ScopedVirtualWallClock(const ScopedVirtualWallClock&) = delete;
    ScopedVirtualWallClock& operator=(const ScopedVirtualWallClock&) = delete;
};

} // namespace rtcat::test_clock
