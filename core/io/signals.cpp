#include "core/io/signals.hpp"

#include <atomic>
#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

#include "core/base/check.hpp"
#include "core/io/sys_error.hpp"

namespace rtcat::io {

namespace {

// Read by the handler: a lock-free atomic is async-signal-safe, a member is not reachable.
std::atomic<int> g_write_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_signal(int signo) {
    const int saved = errno; // the interrupted code may be about to read errno
    const int fd = g_write_fd.load(std::memory_order_relaxed);
    if (fd >= 0) {
        const auto byte = static_cast<unsigned char>(signo);
        // A full pipe (EAGAIN) already holds enough to wake the loop; nothing else to do.
        [[maybe_unused]] const auto n = ::write(fd, &byte, 1);
    }
    errno = saved;
}

} // namespace

base::Result<std::unique_ptr<SignalPipe>> SignalPipe::install() {
    RTCAT_CHECK(g_write_fd.load() < 0, "only one SignalPipe may be installed at a time");
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return sys_error("signal pipe", errno);
    std::unique_ptr<SignalPipe> p(new SignalPipe());
    p->read_.reset(fds[0]);
    p->write_.reset(fds[1]);
    g_write_fd.store(fds[1]);

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    // No SA_RESTART: a call that can block (a write to a stdout pipe nobody drains) must
    // return EINTR so the loop gets to read the signal; with SA_RESTART it resumed, and only
    // SIGKILL ended the process. Every caller retries or gives up on EINTR on its own.
    sa.sa_flags = 0;
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    if (::sigaction(SIGINT, &sa, &p->old_int_) != 0 ||
        ::sigaction(SIGTERM, &sa, &p->old_term_) != 0 ||
        ::sigaction(SIGPIPE, &ignore, &p->old_pipe_) != 0) {
        const int err = errno;
        // Only invalid arguments make sigaction fail; p's destructor undoes any partial install.
        return sys_error("install signal handlers", err);
    }
    return p;
}

SignalPipe::~SignalPipe() {
    // Handlers first, so none can run against a closed (or reused) descriptor.
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGPIPE, &old_pipe_, nullptr);
    g_write_fd.store(-1);
}

std::optional<int> SignalPipe::take() {
    unsigned char byte = 0;
    for (;;) {
        const auto n = ::read(read_.get(), &byte, 1);
        if (n == 1)
            return static_cast<int>(byte);
        if (n < 0 && errno == EINTR)
            continue;
        return std::nullopt;
    }
}

} // namespace rtcat::io
