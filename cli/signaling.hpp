#pragma once
// Signaling endpoints for offer/answer: where our description goes (stdout or --sdp-out) and
// where the peer's comes from (stdin or --sdp-in), in one of three auto-detected forms (plain
// SDP, browser JSON, compact token).
//
// Nothing here blocks: the event loop keeps running ICE, timers and signals while a human is
// still pasting or the other program has not opened its end of a fifo yet. Opening a fifo
// normally blocks until the other end is opened too, which deadlocked two programs that open
// their fifos in opposite orders and made --timeout and SIGINT powerless; both ends are opened
// with O_NONBLOCK instead:
// - a reader's open succeeds at once; Linux reports no POLLIN/POLLHUP on a fifo that never had
//   a writer, so the loop just waits, and EOF is seen only after a writer came and went;
// - a writer's open fails with ENXIO while nobody reads: the loop retries every
//   kOpenRetry until a reader appears.

#include <optional>
#include <string>

#include "core/base/result.hpp"
#include "core/base/time.hpp"
#include "core/sdp/signal.hpp"

namespace rtcat::cli {

enum class SdpFormatChoice { Auto, Plain, Json, Token };

class SignalInput {
public:
    // path empty = stdin.
    explicit SignalInput(std::string path) : path_(std::move(path)) {}
    ~SignalInput();
    SignalInput(const SignalInput&) = delete;
    SignalInput& operator=(const SignalInput&) = delete;

    base::Result<void> open();
    int fd() const { return fd_; }
    bool is_stdin() const { return path_.empty(); }
    bool is_terminal() const;
    std::string describe() const { return path_.empty() ? "standard input" : path_; }

    // Call when poll says fd() is readable. Returns a message once one is complete; an error for
    // malformed input or EOF before a complete message.
    base::Result<std::optional<sdp::SignalMessage>> on_readable(sdp::SdpType plain_type);
    std::optional<sdp::SignalFormat> format_seen() const { return format_; }
    bool done() const { return done_; }
    // Stops reading: closes a file or fifo we opened.
    void close();

private:
    std::string path_;
    int fd_ = -1;
    bool owns_fd_ = false;
    bool done_ = false;
    std::string buffer_;
    std::optional<sdp::SignalFormat> format_;
};

// Our description, written without blocking: call pump() every loop turn until done().
class SignalOutput {
public:
    static constexpr base::Duration kOpenRetry = base::ms(20);

    // path empty = stdout.
    SignalOutput(std::string path, SdpFormatChoice choice)
        : path_(std::move(path)), choice_(choice) {}
    ~SignalOutput();
    SignalOutput(const SignalOutput&) = delete;
    SignalOutput& operator=(const SignalOutput&) = delete;

    // Queues the description; `mirror` is the form the peer used, if it spoke first.
    void start(sdp::SignalMessage message, std::optional<sdp::SignalFormat> mirror);
    // Opens (once a fifo has a reader) and writes what the destination takes now. Returns true
    // once everything is written (a file or fifo we opened is then closed, so its reader sees
    // the end).
    base::Result<bool> pump();

    bool started() const { return message_.has_value(); }
    bool done() const { return done_; }
    // While writing: the descriptor to poll for POLLOUT, or -1 (not open yet: retry at
    // retry_at()).
    int fd() const { return done_ ? -1 : fd_; }
    base::Instant retry_at(base::Instant now) const;
    // The form written (valid once the destination is open).
    sdp::SignalFormat format() const { return format_; }
    bool to_terminal() const { return terminal_; }
    std::string describe() const { return path_.empty() ? "standard output" : path_; }

private:
    std::string path_;
    SdpFormatChoice choice_;
    std::optional<sdp::SignalMessage> message_;
    std::optional<sdp::SignalFormat> mirror_;
    int fd_ = -1;
    bool owns_fd_ = false;
    bool terminal_ = false;
    bool done_ = false;
    std::string pending_;
    size_t written_ = 0;
    sdp::SignalFormat format_ = sdp::SignalFormat::Plain;
};

} // namespace rtcat::cli
