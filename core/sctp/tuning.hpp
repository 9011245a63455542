#pragma once
// SCTP tunables for WebRTC data channels over DTLS (RFC 8261) driven by usrsctp 0.9.5, with the
// rationale next to each value. Stack-wide values become usrsctp sysctls when the stack is first
// initialised; per-association values are socket options set on every association.

#include <cstddef>
#include <cstdint>

#include "core/base/time.hpp"

namespace rtcat::sctp::tuning {

// usrsctp has no "next deadline" query: while an association lives we advance its timers at
// this period. 10 ms keeps timer error (delayed SACK, T3, stream-reset retransmission) below one
// delayed-SACK period without waking the loop more than 100 times a second.
inline constexpr base::Duration kTimerTick = base::ms(10);
// Upper bound of one usrsctp_handle_timers() step (a stalled loop or a virtual-time jump): all
// expired callouts fire in one sweep anyway, the clamp only keeps the uint32 in range.
inline constexpr std::uint32_t kMaxTimerStepMs = 60'000;

// RFC 8831 §6.2: "the number of streams negotiated during SCTP association setup SHOULD be
// 65535". We deviate, as Chromium does (its kMaxSctpStreams is 1024): usrsctp allocates and
// zeroes per-stream state for every negotiated stream when the association is created and again
// when the COOKIE-ECHO is processed. With 65535 that was several MiB and 2-4 ms per side on the
// critical path of connection set-up (a third of the answerer's CPU in perf); 1024 took
// offer -> channel open from ~11 ms to ~4 ms p50 on loopback (bench/peer_bench.py). 1024 streams
// still give each side 512 simultaneous channels; ids are reused once a channel is closed.
inline constexpr std::uint16_t kMaxStreams = 1024;

// Send/receive socket buffers. usrsctp's default (256 KiB, 128 KiB windows in practice) limits
// throughput to window/RTT: 4 MiB keeps 100 MB/s flowing up to ~40 ms RTT. The receive buffer is
// the advertised window (a_rwnd).
inline constexpr int kSendBuffer = 4 * 1024 * 1024;
inline constexpr int kReceiveBuffer = 4 * 1024 * 1024;

// RFC 6928-style initial window: 10 MTUs instead of RFC 4960's ~3 so a freshly opened channel
// (the DTLS handshake just proved the path) bursts its first messages without waiting RTTs.
inline constexpr std::uint32_t kInitialCwndMtus = 10;

// Retransmission timeouts (ms). RFC 4960 defaults (1 s min, 3 s initial, 60 s max) are tuned for
// unknown paths; here DTLS/ICE already measured the path.
// - min 200 ms: usrsctp derives the RTO from a real-clock RTT (≈0 on loopback), so the floor is
//   the RTO in practice; it must stay above the peer's delayed-SACK timer (200 ms in usrsctp-based
//   browsers) or a lone trailing packet is retransmitted spuriously and cwnd collapses.
// - initial 500 ms: retransmits a lost INIT/COOKIE quickly after the handshake.
// - max 10 s: after a path outage the association recovers within 10 s of the path coming back.
inline constexpr std::uint32_t kRtoMinMs = 200;
inline constexpr std::uint32_t kRtoInitialMs = 500;
inline constexpr std::uint32_t kRtoMaxMs = 10'000;
inline constexpr std::uint32_t kInitRtoMaxMs = 10'000;

// Consecutive retransmission timeouts before the association (and its one path) is declared
// dead. With RFC 4960's 10 (path: 5), about 1 transfer in 1000 at 20% loss each way died in our
// soak test of a healthy link: a T3 round fails when either the DATA or its SACK is lost (0.36),
// and 11 failed rounds in a row happen a few times in a thousand transfers. 20 makes that
// ~1e-9 per episode. Liveness is ICE consent freshness's job (RFC 7675, 30 s); SCTP's limit
// only ends an association whose ICE path lives but whose SCTP makes no progress, and with RTO
// capped at 10 s, 20 timeouts take about 2.5 minutes.
// (An earlier attempt at 32 turned a stream-reset livelock into a stall; that livelock is fixed
// in core/dcep, see kResetPressure.)
inline constexpr std::uint32_t kAssocMaxRetransmits = 20;
inline constexpr std::uint32_t kPathMaxRetransmits = 20;

// Delayed SACK (RFC 4960 §6.2): 20 ms instead of 200 ms so the sender's window is refreshed
// quickly at the tail of a burst. A SACK every 4th packet instead of every 2nd (RFC 4960's
// SHOULD): at data-channel rates each SACK costs a DTLS record, a system call on both sides and
// a usrsctp SACK pass on the sender — halving them took send-file over loopback from ~36 to
// ~108 MB/s together with the max-burst change below (bench/peer_bench.py).
inline constexpr std::uint32_t kSackDelayMs = 20;
inline constexpr std::uint32_t kSackFrequency = 4;

// Chunks queued per association (send + receive). The usrsctp default (512) caps what the 4 MiB
// buffers can hold in ~1100-byte chunks; both directions need room for a full window.
inline constexpr std::uint32_t kMaxChunksOnQueue = 16 * 1024;

// Max burst (packets sent per SACK/timer event). usrsctp's default of 4 starves the window when
// a SACK covers 4 packets (and several SACKs arrive in one receive batch): 16 lets one SACK
// refill what it acknowledged plus the cwnd growth. Measured: 4 → 36 MB/s, 8 → 108 MB/s,
// 16 → 126 MB/s on loopback (send-file, 128 MiB).
inline constexpr std::uint32_t kMaxBurst = 16;

// Path MTU (RFC 8261 §5): usrsctp has no PLPMTUD, so the SCTP packet size is fixed from the
// caller's max_packet_size (1200-byte UDP payload minus the DTLS record overhead). Measured with
// usrsctp 0.9.5 in AF_CONN mode: packets reach spp_pathmtu + 12 bytes (the SCTP common header
// is not counted), so spp_pathmtu = max_packet_size - 12 (sctp_association_test checks the
// largest packet for several sizes).
inline constexpr std::size_t kAfConnPacketOverhead = 12;
inline constexpr std::size_t kMinPacketSize = 512; // usrsctp's SCTP_SMALLEST_PMTU

// Amount handed to usrsctp_sendv per call. With SCTP_EXPLICIT_EOR large messages go in as
// several records (the last one carrying SCTP_EOR); smaller slices keep each copy cheap and let
// usrsctp start transmitting before the whole message is copied.
inline constexpr std::size_t kSendSlice = 64 * 1024;

// Size of the buffer usrsctp_recvv reads into; bigger messages arrive in several reads and are
// reassembled (partial delivery).
inline constexpr std::size_t kReceiveSlice = 256 * 1024;

} // namespace rtcat::sctp::tuning
