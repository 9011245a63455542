#pragma once
// A test-only wall clock for libraries that read gettimeofday themselves (usrsctp: RTT samples,
// T3 retransmission eligibility in sctp_mark_all_for_resend, PR-SCTP lifetimes). The unit-test
// binary interposes gettimeofday (sctp_wallclock_test.cpp): it returns the real time plus an
// offset that virtual-time tests advance together with their `now`, so a 200 ms virtual step
// is also 200 ms for the library. Without it, T3 timers fire on virtual time but usrsctp refuses
// to retransmit chunks "sent less than one RTO ago" by its real clock, and lossy tests stall.

#include "core/base/time.hpp"

namespace rtcat::test_clock {

void advance_wall_clock(base::Duration d);
// Total offset applied so far (for the interposer's own test).
base::Duration wall_clock_offset();

} // namespace rtcat::test_clock
