#pragma once
// Signaling endpoints for offer/answer: where our description goes (stdout or --sdp-out) and
// where the peer's comes from (stdin or --sdp-in), in one of three auto-detected forms (plain
// SDP, browser JSON, compact token). Reads are poll-driven so the event loop keeps running ICE
// while a human is still pasting.

#include <optional>
#include <string>

#include "core/base/result.hpp"
#include "core/sdp/signal.hpp"

namespace rtcat::cli {

enum class SdpFormatChoice { Auto, Plain, Json, Token };

class SignalInput {
public:
    // path empty = stdin. A fifo or file is opened lazily (opening a fifo blocks until a writer
    // appears, so only when the description is actually needed).
    explicit SignalInput(std::string path) : path_(std::move(path)) {}
    ~SignalInput();
    SignalInput(const SignalInput&) = delete;
    SignalInput& operator=(const SignalInput&) = delete;

    base::Result<void> open();
    int fd() const { return fd_; }
    bool is_stdin() const { return path_.empty(); }
    std::string describe() const { return path_.empty() ? "standard input" : path_; }

    // Call when poll says fd() is readable. Returns a message once one is complete; an error for
    // malformed input or EOF before a complete message.
    base::Result<std::optional<sdp::SignalMessage>> on_readable(sdp::SdpType plain_type);
    std::optional<sdp::SignalFormat> format_seen() const { return format_; }
    bool done() const { return done_; }

private:
    std::string path_;
    int fd_ = -1;
    bool owns_fd_ = false;
    bool done_ = false;
    std::string buffer_;
    std::optional<sdp::SignalFormat> format_;
};

// Writes one description. Returns the format used.
base::Result<sdp::SignalFormat> write_signal(const std::string& path, SdpFormatChoice choice,
                                             std::optional<sdp::SignalFormat> mirror,
                                             const sdp::SignalMessage& message);

} // namespace rtcat::cli
