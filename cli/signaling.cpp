#include "cli/signaling.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace rtcat::cli {

namespace {

// A description is a few KiB; a megabyte of input without one complete is not signaling.
constexpr size_t kMaxSignalBytes = 1024 * 1024;

base::Result<void> write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return base::make_error("{}", std::strerror(errno));
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

} // namespace

SignalInput::~SignalInput() {
    if (owns_fd_ && fd_ >= 0) {
        ::close(fd_);
    }
}

base::Result<void> SignalInput::open() {
    if (fd_ >= 0) {
        return {};
    }
    if (path_.empty()) {
        fd_ = STDIN_FILENO;
        return {};
    }
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
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

base::Result<sdp::SignalFormat> write_signal(const std::string& path, SdpFormatChoice choice,
                                             std::optional<sdp::SignalFormat> mirror,
                                             const sdp::SignalMessage& message) {
    int fd = STDOUT_FILENO;
    bool owns = false;
    if (!path.empty()) {
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            return base::make_error("cannot open {}: {}", path, std::strerror(errno));
        }
        owns = true;
    }
    sdp::SignalFormat format = sdp::SignalFormat::Plain;
    switch (choice) {
    case SdpFormatChoice::Plain:
        format = sdp::SignalFormat::Plain;
        break;
    case SdpFormatChoice::Json:
        format = sdp::SignalFormat::Json;
        break;
    case SdpFormatChoice::Token:
        format = sdp::SignalFormat::Token;
        break;
    case SdpFormatChoice::Auto:
        // Answer in the form the peer used; a terminal gets the one-line token (terminal paste
        // buffers mangle long multi-line blobs); pipes and files get plain SDP.
        if (mirror) {
            format = *mirror;
        } else if (::isatty(fd)) {
            format = sdp::SignalFormat::Token;
        }
        break;
    }
    auto encoded = sdp::encode_signal(message, format);
    if (!encoded && format == sdp::SignalFormat::Token) {
        // Not representable as a token (e.g. media sections): JSON carries anything.
        format = sdp::SignalFormat::Json;
        encoded = sdp::encode_signal(message, format);
    }
    if (!encoded) {
        return encoded.error();
    }
    const std::string& text = *encoded;
    auto r = write_all(fd, text);
    if (owns) {
        ::close(fd);
    }
    if (!r) {
        return base::make_error("writing our session description to {}: {}",
                                path.empty() ? "standard output" : path, r.error().message);
    }
    return format;
}

} // namespace rtcat::cli
