#pragma once
// Readiness for the single-threaded event loop, over poll(2): a handful of descriptors (UDP
// sockets, stdin/stdout, the signal pipe, a worker eventfd) makes epoll's setup cost moot.

#include <cstdint>
#include <vector>

#include <poll.h>

#include "core/base/result.hpp"
#include "core/base/time.hpp"

namespace rtcat::io {

enum class Interest : std::uint8_t {
    None = 0, // errors and hang-ups are still reported
    Read = 1,
    Write = 2,
    ReadWrite = 3,
};

class Poller {
public:
    // Registers `fd`, or changes its interest if already registered. Results of the previous
    // wait() for `fd` are kept.
    void set(int fd, Interest interest);
    void remove(int fd);
    bool contains(int fd) const;

    // Blocks until a registered descriptor is ready or `deadline` (io::now() time) passes;
    // never returns before the deadline on a timeout (kNever: no timeout). A signal ends the
    // wait early with success, so the caller can read its signal pipe. A registered
    // descriptor that is not open is an error.
    base::Result<void> wait(base::Instant deadline);

    // The results of the last wait(). readable() includes hang-up for read interest, so a
    // reader gets to see EOF.
    bool readable(int fd) const;
    bool writable(int fd) const;
    // POLLERR. For a UDP socket: an ICMP error is queued (UdpSocket::read_error).
    bool has_error(int fd) const;

    // poll(2) timeout in milliseconds for `deadline` seen at `now`: rounded up, so a wait
    // never ends before the deadline; -1 for kNever; clamped to INT_MAX.
    static int timeout_ms(base::Instant deadline, base::Instant now);

private:
    const pollfd* find(int fd) const;

    // Passed to poll() as is, so a wait costs no copying.
    std::vector<pollfd> fds_;
};

} // namespace rtcat::io
