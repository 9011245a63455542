#include <malloc.h>

#include "cli/app.hpp"

namespace {

// glibc gives the free memory at the top of the heap back to the kernel (brk) once it exceeds
// M_TRIM_THRESHOLD, 128 KiB at first. A data-channel transfer allocates and frees a few hundred
// KiB per loop turn (datagram payloads, usrsctp's mbufs), so the heap shrank and grew again
// about a thousand times per 128 MiB received: each shrink is a TLB shootdown on every CPU
// (usrsctp's timer thread makes the process multi-threaded) and each regrowth page faults.
// That was ~17% of the receiver's CPU in perf with GRO on (bench/peer_bench.py); 64 MiB is
// more than a transfer's working set (4 MiB SCTP buffers each way), and the memory is reused,
// not leaked. Setting it also freezes glibc's dynamic mmap threshold at 128 KiB: larger blocks
// are mmapped, as glibc does at start.
constexpr int kMallocTrimThreshold = 64 * 1024 * 1024;

} // namespace

int main(int argc, char** argv) {
    ::mallopt(M_TRIM_THRESHOLD, kMallocTrimThreshold);
    return rtcat::cli::run(argc, argv);
}
