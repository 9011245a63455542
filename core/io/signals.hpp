#pragma once
// SIGINT/SIGTERM as readable events for the poll loop (the self-pipe trick): the handler only
// writes the signal number to a non-blocking pipe, the loop reads it and shuts down cleanly.

#include <memory>
#include <optional>

#include <signal.h>

#include "core/base/result.hpp"
#include "core/io/fd.hpp"

namespace rtcat::io {

class SignalPipe {
public:
    // Installs handlers for SIGINT and SIGTERM and ignores SIGPIPE, so a closed stdout shows up
    // as EPIPE from write() instead of killing the process. One instance at a time.
    static base::Result<std::unique_ptr<SignalPipe>> install();

    SignalPipe(const SignalPipe&) = delete;
    SignalPipe& operator=(const SignalPipe&) = delete;
    // Restores the dispositions found at install().
    ~SignalPipe();

    // Readable while a caught signal is waiting in take().
    int fd() const { return read_.get(); }
    // The next caught signal number, oldest first; nullopt when none is pending.
    std::optional<int> take();

private:
    SignalPipe() = default;

    UniqueFd read_;
    UniqueFd write_;
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
    struct sigaction old_pipe_ {};
};

} // namespace rtcat::io
