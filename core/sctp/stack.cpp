#include "core/sctp/stack.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <unordered_map>

#include <usrsctp.h>

#include "core/base/check.hpp"
#include "core/base/log.hpp"
#include "core/sctp/crc32c.hpp"
#include "core/sctp/tuning.hpp"

namespace rtcat::sctp::stack {
namespace {

struct State {
    bool initialized = false;
    std::unordered_map<void*, OutputFn> handles;
    base::Instant last_tick{};
};

State& state() {
    static State s;
    return s;
}

// usrsctp's conn_output: runs inside usrsctp (locks held). Checksums the packet (CRC32c is
// offloaded to us, see init_stack) and copies it out, nothing more. `buffer` is usrsctp's own
// linear copy of the packet, freed after this returns: ours to write the checksum into.
int conn_output(void* addr, void* buffer, std::size_t length, std::uint8_t /*tos*/,
                std::uint8_t /*set_df*/) {
    auto& s = state();
    auto it = s.handles.find(addr);
    if (it == s.handles.end())
        return 0; // a socket closed after its owner left (usrsctp issue #405): drop silently
    auto* packet = static_cast<std::uint8_t*>(buffer);
    set_packet_checksum(packet, length);
    it->second(addr, packet, length);
    return 0;
}

// usrsctp hands us printf-style debug output; the attribute lets -Wformat check our vsnprintf.
[[gnu::format(printf, 1, 2)]] void debug_printf(const char* format, ...) {
    if (!base::log_enabled(base::LogLevel::Trace))
        return;
    char line[512];
    va_list ap;
    va_start(ap, format);
    std::vsnprintf(line, sizeof(line), format, ap);
    va_end(ap);
    RTCAT_TRACE("usrsctp", "{}", line);
}

void init_stack() {
    // Port 0: no UDP encapsulation socket; AF_CONN only.
    usrsctp_init_nothreads(0, conn_output, debug_printf);
    // ECN needs IP-header bits that DTLS/UDP does not carry to us.
    usrsctp_sysctl_set_sctp_ecn_enable(0);
    // RFC 8831 §6.2: PR-SCTP (RFC 3758) and stream reconfiguration (RFC 6525) are required.
    usrsctp_sysctl_set_sctp_pr_enable(1);
    usrsctp_sysctl_set_sctp_reconfig_enable(1);
    // We never change addresses (one AF_CONN address per association): no ASCONF, so the
    // iterator thread never has work that emits packets.
    usrsctp_sysctl_set_sctp_auto_asconf(0);
    usrsctp_sysctl_set_sctp_asconf_enable(0);
    usrsctp_sysctl_set_sctp_initial_cwnd(tuning::kInitialCwndMtus);
    usrsctp_sysctl_set_sctp_rto_min_default(tuning::kRtoMinMs);
    usrsctp_sysctl_set_sctp_rto_initial_default(tuning::kRtoInitialMs);
    usrsctp_sysctl_set_sctp_rto_max_default(tuning::kRtoMaxMs);
    usrsctp_sysctl_set_sctp_init_rto_max_default(tuning::kInitRtoMaxMs);
    usrsctp_sysctl_set_sctp_assoc_rtx_max_default(tuning::kAssocMaxRetransmits);
    usrsctp_sysctl_set_sctp_path_rtx_max_default(tuning::kPathMaxRetransmits);
    usrsctp_sysctl_set_sctp_delayed_sack_time_default(tuning::kSackDelayMs);
    usrsctp_sysctl_set_sctp_sack_freq_default(tuning::kSackFrequency);
    usrsctp_sysctl_set_sctp_max_chunks_on_queue(tuning::kMaxChunksOnQueue);
    usrsctp_sysctl_set_sctp_max_burst_default(tuning::kMaxBurst);
    usrsctp_sysctl_set_sctp_sendspace(static_cast<std::uint32_t>(tuning::kSendBuffer));
    usrsctp_sysctl_set_sctp_recvspace(static_cast<std::uint32_t>(tuning::kReceiveBuffer));
    // CRC32c offloaded: usrsctp neither computes it on output nor checks it on input. Peers
    // verify it (RFC 9653's zero checksum is not negotiated), so conn_output computes it, with
    // the CPU's crc32 instruction (crc32c.hpp): Debian's usrsctp does it in software at ~12% of
    // each side's CPU. Inbound, DTLS has already authenticated every record it decrypted for us
    // (RFC 8261 §4): the CRC adds nothing against the peer, which could send any bytes with a
    // valid CRC anyway, nor against the path.
    usrsctp_enable_crc32c_offload();
}

} // namespace

void attach(void* handle, OutputFn output, base::Instant now) {
    auto& s = state();
    RTCAT_CHECK(handle != nullptr && output != nullptr, "attach needs a handle and an output");
    RTCAT_CHECK(!s.handles.contains(handle), "handle attached twice");
    if (!s.initialized) {
        init_stack();
        s.initialized = true;
    }
    if (s.handles.empty())
        s.last_tick = now; // a fresh time base (tests run each case on its own virtual clock)
    s.handles.emplace(handle, output);
    usrsctp_register_address(handle);
}

void detach(void* handle) {
    auto& s = state();
    auto it = s.handles.find(handle);
    RTCAT_CHECK(it != s.handles.end(), "detach of an unknown handle");
    usrsctp_deregister_address(handle);
    s.handles.erase(it);
    if (!s.handles.empty())
        return;
    // usrsctp frees closed sockets from its timers; give it a few sweeps (no handle is
    // registered, so anything they emit is dropped) before finishing.
    for (int i = 0; i < 20; ++i) {
        if (usrsctp_finish() == 0) {
            s.initialized = false;
            return;
        }
        usrsctp_handle_timers(100);
    }
    RTCAT_DEBUG("sctp", "usrsctp_finish: sockets still closing; keeping the stack");
}

void tick(base::Instant now) {
    auto& s = state();
    if (!s.initialized || now <= s.last_tick)
        return;
    auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - s.last_tick);
    if (elapsed_ms.count() < 1)
        return;
    auto step = static_cast<std::uint32_t>(
        std::min<std::int64_t>(elapsed_ms.count(), tuning::kMaxTimerStepMs));
    // Advance the base by the whole elapsed milliseconds (the clamp only limits usrsctp's step).
    s.last_tick += elapsed_ms;
    usrsctp_handle_timers(step);
}

base::Instant last_tick() {
    return state().last_tick;
}

std::uint64_t discarded_packets() {
    struct sctpstat st {};
    usrsctp_get_stat(&st);
    return std::uint64_t{st.sctps_badsum} + st.sctps_hdrops + st.sctps_badvtag +
           st.sctps_outoftheblue;
}

} // namespace rtcat::sctp::stack
