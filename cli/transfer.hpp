#pragma once
// The rtcat-file/1 protocol (docs/file-transfer.md) on top of a Peer's data channels: a sender
// and a receiver. They do file I/O, but no network I/O and read no clock: time comes in as
// `now`, so the in-memory peer tests run them on virtual time.

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/base/result.hpp"
#include "core/base/sha256.hpp"
#include "core/base/time.hpp"
#include "core/peer/peer.hpp"

namespace rtcat::cli::transfer {

inline constexpr std::string_view kControlLabel = "rtcat-control";
inline constexpr std::string_view kProtocol = "rtcat-file/1";
// Chunk per data channel message: the usual interoperable size (pion-style peers cap messages
// at 64 KiB), lowered to the peer's a=max-message-size when that is smaller.
inline constexpr size_t kChunkSize = 64 * 1024;
// Back-pressure: keep this much queued on a file channel. Enough to keep SCTP's window full at
// loopback speed (the association itself holds several MiB), small enough that memory stays flat
// whatever the file size.
inline constexpr size_t kHighWater = 4 * 1024 * 1024;
inline constexpr size_t kLowWater = 1 * 1024 * 1024;

// A name from the peer made safe for joining under the output directory: relative, no `..`,
// `.` or empty segments, no NUL or backslash, at most 4096 bytes.
base::Result<std::filesystem::path> safe_relative_path(std::string_view name);

struct Source {
    std::filesystem::path path; // empty for stdin
    std::string name;           // relative name sent to the peer
};

// Expands FILE... arguments: directories recursively (names relative to the argument's parent,
// so `send-file photos/` sends `photos/...`), `-` = stdin under `stdin_name`.
base::Result<std::vector<Source>> collect_sources(const std::vector<std::string>& args,
                                                  const std::string& stdin_name);

struct FileResult {
    std::string name;
    uint64_t size = 0;
    uint64_t offset = 0; // resumed from
    std::string sha256;
    bool ok = false;
    std::string error;
};

struct Progress {
    uint64_t bytes_done = 0;  // this session's payload bytes (excludes resumed prefixes)
    uint64_t bytes_total = 0; // 0 when unknown
    std::string current;      // file in flight
};

class Sender {
public:
    explicit Sender(std::vector<Source> sources);
    ~Sender();

    void on_ready(peer::Peer& peer, base::Instant now);
    void on_event(peer::Peer& peer, peer::Event& event, base::Instant now);
    void pump(peer::Peer& peer, base::Instant now);
    int wants_readable_fd() const;
    void on_fd_readable();

    bool finished() const { return finished_; }
    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    const std::vector<FileResult>& results() const { return results_; }
    Progress progress() const;

private:
    struct Current;
    void announce_next(peer::Peer& peer, base::Instant now);
    void on_control(peer::Peer& peer, const std::string& text, base::Instant now);
    void start_file(peer::Peer& peer, uint64_t offset, const std::string& prefix_hash,
                    base::Instant now);
    void finish_file(peer::Peer& peer, base::Instant now);
    void send_control(peer::Peer& peer, const std::string& json, base::Instant now);
    void set_error(std::string e);
    void maybe_finish();

    std::vector<Source> sources_;
    size_t next_ = 0;
    std::optional<uint16_t> control_;
    bool control_open_ = false;
    std::unique_ptr<Current> cur_;
    std::vector<FileResult> results_;
    std::map<uint64_t, size_t> result_by_id_;
    std::map<uint64_t, uint16_t> channel_by_id_; // closed on the file's ack
    size_t acks_pending_ = 0;
    bool done_sent_ = false;
    bool finished_ = false;
    std::string error_;
    uint64_t bytes_done_ = 0;
    uint64_t bytes_total_ = 0;
    size_t chunk_ = kChunkSize;
    std::vector<uint8_t> buf_;
};

struct ReceiverOptions {
    std::filesystem::path out_dir;
    bool force = false;
    bool resume = false;
};

class Receiver {
public:
    explicit Receiver(ReceiverOptions options);
    ~Receiver();

    void on_event(peer::Peer& peer, peer::Event& event, base::Instant now);

    // The sender said `done` and every file it announced is settled.
    bool finished() const { return finished_; }
    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    const std::vector<FileResult>& results() const { return results_; }
    Progress progress() const;
    // Closes files; anything incomplete stays as NAME.part.
    void abort();

private:
    struct Incoming;
    void on_control(peer::Peer& peer, const std::string& text, base::Instant now);
    void on_file_bytes(peer::Peer& peer, Incoming& f, std::span<const uint8_t> data,
                       base::Instant now);
    void maybe_complete(peer::Peer& peer, Incoming& f, base::Instant now);
    void send_control(peer::Peer& peer, const std::string& json, base::Instant now);
    void check_finished(peer::Peer& peer, base::Instant now);
    void set_error(std::string e);

    ReceiverOptions options_;
    std::optional<uint16_t> control_;
    std::map<uint64_t, std::unique_ptr<Incoming>> files_; // by id
    std::map<std::string, uint64_t> id_by_name_;          // label → id
    std::map<uint16_t, uint64_t> id_by_channel_;          // file channel → id
    std::map<uint16_t, std::deque<base::Bytes>> early_;   // channel bytes before its file
    std::vector<FileResult> results_;
    bool done_seen_ = false;
    bool finished_ = false;
    std::string error_;
    uint64_t bytes_done_ = 0;
    uint64_t bytes_total_ = 0;
};

} // namespace rtcat::cli::transfer
