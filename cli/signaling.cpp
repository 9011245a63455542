#include "cli/signaling.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <fmt/format.h>

namespace rtcat::cli {

namespace {

// A description is a few KiB; a megabyte of input without one complete is not signaling.
constexpr size_t kMaxSignalBytes = 1024 * 1024;

sdp::SignalFormat pick_format(SdpFormatChoice choice, std::optional<sdp::SignalFormat> mirror,
                              bool terminal) {
    switch (choice) {
    case SdpFormatChoice::Plain:
        return sdp::SignalFormat::Plain;
    case SdpFormatChoice::Json:
        return sdp::SignalFormat::Json;
    case SdpFormatChoice::Token:
        return sdp::SignalFormat::Token;
    case SdpFormatChoice::Auto:
        break;
    }
    // Answer in the form the peer used; a terminal gets the one-line token (terminal paste
    // buffers mangle long multi-line blobs); pipes and files get plain SDP.
    if (mirror) {
        return *mirror;
    }
    return terminal ? sdp::SignalFormat::Token : sdp::SignalFormat::Plain;
}

} // namespace

SignalInput::~SignalInput() {
    close();
}

void SignalInput::close() {
    if (owns_fd_ && fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = -1;
    owns_fd_ = false;
}

bool SignalInput::is_terminal() const {
    return fd_ >= 0 ? ::isatty(fd_) != 0 : (path_.empty() && ::isatty(STDIN_FILENO) != 0);
}

base::Result<void> SignalInput::open() {
    if (fd_ >= 0) {
        return {};
    }
    if (path_.empty()) {
        fd_ = STDIN_FILENO;
        return {};
    }
    // O_NONBLOCK: see the header. Reads only happen when poll says so, so the flag changes
    // nothing else (and a regular file ignores it).
    int fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return base::make_error("cannot open {}: {}", path_, std::strerror(errno));
    }
    fd_ = fd;
    owns_fd_ = true;
    return {};
}

base::Result<std::optional<sdp::SignalMessage>> SignalInput::on_readable(sdp::SdpType plain_type) {
    char buf[16384];
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            return std::optional<sdp::SignalMessage>{};
        }
        return base::make_error("reading the peer's description from {}: {}", describe(),
                                std::strerror(errno));
    }
    const bool eof = n == 0;
    buffer_.append(buf, static_cast<size_t>(n));
    if (buffer_.size() > kMaxSignalBytes) {
        return base::make_error("no complete session description in the first {} bytes of {}",
                                kMaxSignalBytes, describe());
    }
    auto framed = sdp::frame_signal(buffer_, eof);
    if (!framed) {
        return base::make_error("{}: {}", describe(), framed.error().message);
    }
    if (!*framed) {
        if (eof) {
            done_ = true;
            return base::make_error("{} ended before the peer's session description arrived",
                                    describe());
        }
        return std::optional<sdp::SignalMessage>{};
    }
    auto msg =
        sdp::decode_signal(std::string_view(buffer_).substr(0, (*framed)->consumed), plain_type);
    if (!msg) {
        return base::make_error("the peer's session description: {}", msg.error().message);
    }
    format_ = (*framed)->format;
    done_ = true;
    return std::optional<sdp::SignalMessage>{std::move(*msg)};
}

SignalOutput::~SignalOutput() {
    if (owns_fd_ && fd_ >= 0) {
        ::close(fd_);
    }
}

void SignalOutput::start(sdp::SignalMessage message, std::optional<sdp::SignalFormat> mirror) {
    message_ = std::move(message);
    mirror_ = mirror;
}

base::Instant SignalOutput::retry_at(base::Instant now) const {
    return started() && !done_ && fd_ < 0 ? now + kOpenRetry : base::kNever;
}

base::Result<bool> SignalOutput::pump() {
    if (done_ || !message_) {
        return done_;
    }
    if (fd_ < 0) {
        if (path_.empty()) {
            fd_ = STDOUT_FILENO;
        } else {
            // O_NONBLOCK: see the header. O_CREAT and O_TRUNC only concern a regular file.
            int fd =
                ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0644);
            if (fd < 0) {
                if (errno == ENXIO || errno == EINTR) {
                    return false; // a fifo nobody reads yet: retry_at()
                }
                return base::make_error("cannot open {}: {}", path_, std::strerror(errno));
            }
            fd_ = fd;
            owns_fd_ = true;
        }
        terminal_ = ::isatty(fd_) != 0;
        format_ = pick_format(choice_, mirror_, terminal_);
        auto encoded = sdp::encode_signal(*message_, format_);
        if (!encoded && format_ == sdp::SignalFormat::Token) {
            // Not representable as a token (e.g. media sections): JSON carries anything.
            format_ = sdp::SignalFormat::Json;
            encoded = sdp::encode_signal(*message_, format_);
        }
        if (!encoded) {
            return encoded.error();
        }
        pending_ = std::move(*encoded);
    }
    while (written_ < pending_.size()) {
        // stdout may be a blocking pipe shared with other processes (we must not make it
        // non-blocking): write only when poll says it has room, and at most PIPE_BUF bytes, which
        // a pipe with room takes without blocking.
        if (!owns_fd_) {
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, 0) <= 0 || (p.revents & (POLLOUT | POLLERR | POLLHUP)) == 0) {
                return false;
            }
        }
        const size_t chunk = std::min<size_t>(pending_.size() - written_, PIPE_BUF);
        ssize_t n = ::write(fd_, pending_.data() + written_, chunk);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return false; // full, or a signal: the loop looks at its signal pipe first
            }
            return base::make_error("writing our session description to {}: {}", describe(),
                                    std::strerror(errno));
        }
        written_ += static_cast<size_t>(n);
    }
    if (owns_fd_) {
        ::close(fd_);
        owns_fd_ = false;
        fd_ = -1;
    }
    done_ = true;
    return true;
}

} // namespace rtcat::cli
