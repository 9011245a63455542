#pragma once
// The process-wide usrsctp stack. usrsctp is one global stack per process: it is initialised
// (usrsctp_init_nothreads) when the first association is created and finished when the last one
// goes away. Every association registers an AF_CONN address handle here; the stack routes the
// packets usrsctp emits (conn_output) to the association that owns the handle and drops packets
// for handles that are gone (usrsctp may call conn_output for an already closed socket).
//
// Timers: usrsctp_handle_timers(elapsed) advances the whole stack. Associations are driven by
// their own callers with their own `now`; the stack keeps one process-wide "last tick" instant
// and only ever moves it forward (the monotonic max of the nows it has seen), so elapsed time is
// counted once for the stack however many associations tick it. The tick base is reset when the
// first association is created (tests start each run on a fresh virtual clock).
//
// usrsctp also reads the real clock (gettimeofday) for RTT samples and PR-SCTP lifetimes. On
// virtual time (tests) RTTs therefore measure as ~0 (RTO = RTO.min), and a MaxLifetime channel's
// lifetime runs on wall-clock time, not on `now`.
//
// Threads: usrsctp_init_nothreads still starts usrsctp's iterator thread. It runs only
// address-change work (no AF_CONN traffic, auto-ASCONF is off), so conn_output and all socket
// calls happen on the thread that drives the associations.
//
// Not part of the public API: only core/sctp/association.cpp uses it.

#include <cstddef>
#include <cstdint>

#include "core/base/time.hpp"

namespace rtcat::sctp::stack {

// Receives one SCTP packet emitted by usrsctp for `handle`. Must not call back into usrsctp.
using OutputFn = void (*)(void* handle, const std::uint8_t* data, std::size_t size);

// Initialises usrsctp when no association is registered yet, then registers `handle` (also
// usrsctp_register_address). `now` seeds the tick base on first use.
void attach(void* handle, OutputFn output, base::Instant now);
// Deregisters `handle`; finishes usrsctp when it was the last one (if usrsctp still holds
// closing sockets the stack stays initialised and is reused by the next attach).
void detach(void* handle);

// Advances usrsctp's timers to `now` (no-op if `now` is not ahead of the last tick by >= 1 ms).
void tick(base::Instant now);
// The process-wide instant usrsctp's timers have been advanced to.
base::Instant last_tick();

// Counters of usrsctp's global statistics that mean "an inbound packet was discarded" (bad
// checksum, too short, bad verification tag, out of the blue). Sampled around one conninput to
// attribute drops to that packet.
std::uint64_t discarded_packets();

} // namespace rtcat::sctp::stack
