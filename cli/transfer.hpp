#pragma once
// File transfer over a Peer's data channels: the rtcat-file/1 protocol (docs/file-transfer.md)
// and the plain mode that any WebRTC peer understands (one channel per file, labelled with its
// relative path, its bytes, then a clean close). A sender and a receiver; they do file I/O but
// no network I/O and read no clock: time comes in as `now`, so the in-memory peer tests run
// them on virtual time.
//
// Every resource a peer can fill is bounded (see the constants): bytes that arrive before their
// file's `start`, files in flight (each holds two descriptors), files refused.

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/out_dir.hpp"
#include "core/base/result.hpp"
#include "core/base/sha256.hpp"
#include "core/base/time.hpp"
#include "core/peer/peer.hpp"

namespace rtcat::cli::transfer {

inline constexpr std::string_view kControlLabel = "rtcat-control";
inline constexpr std::string_view kProtocol = "rtcat-file/1";
// Chunk per data channel message, lowered to the peer's a=max-message-size when that is smaller
// (65535 when the peer announces none: see sdp::kDefaultRemoteMaxMessageSize).
inline constexpr size_t kChunkSize = 64 * 1024;
// Back-pressure: keep this much queued on a file channel. Enough to keep SCTP's window full at
// loopback speed (the association itself holds several MiB), small enough that memory stays flat
// whatever the file size.
inline constexpr size_t kHighWater = 4 * 1024 * 1024;
inline constexpr size_t kLowWater = 1 * 1024 * 1024;
// A receiver that says nothing on the control channel this long after it opened does not speak
// rtcat-file/1 (a browser page, aiortc, pion): send in plain mode. An rtcat receiver says
// `hello` as soon as it sees the channel, one round trip after it opened; 5 s leaves room for
// several SCTP retransmissions of that message on a lossy path (RTO 200 ms, doubling).
inline constexpr base::Duration kPlainFallbackAfter = std::chrono::seconds(5);
// Receiver bounds. Bytes on a file channel before its `start` message: an honest sender sends
// `start` first, so only reordering across streams puts bytes here, at most what its SCTP send
// buffer holds unacknowledged (4 MiB, core/sctp/tuning.hpp). Files in flight: an rtcat sender
// has one file streaming and a few awaiting their ack; a plain sender one channel per file.
inline constexpr size_t kMaxEarlyBytes = 8 * 1024 * 1024;
inline constexpr size_t kMaxFilesInFlight = 64;
// Refused files (unsafe names, existing targets) before the session is given up: a sender that
// keeps announcing what we refuse is not going to send anything useful.
inline constexpr size_t kMaxRefused = 1000;

// A name from the peer made safe for joining under the output directory: valid UTF-8 without
// control characters, relative, no `..`, `.` or empty segments, no backslash, at most 4096
// bytes, each segment at most 250 bytes (room for ".part" within NAME_MAX), and not ending in
// ".part" (our temporary names).
base::Result<std::filesystem::path> safe_relative_path(std::string_view name);

struct Source {
    std::filesystem::path path; // empty for stdin
    std::string name;           // relative name sent to the peer
};

struct CollectOptions {
    std::string stdin_name = "stdin";
    // Inside a directory argument: follow symbolic links (directories are entered once each,
    // loops are skipped). Without it they are skipped with a warning. Arguments named on the
    // command line are always followed.
    bool follow_symlinks = false;
};

struct Collected {
    std::vector<Source> sources;
    std::vector<std::string> warnings; // what was skipped and why
};

// Expands FILE... arguments: directories recursively (names relative to the argument's parent,
// so `send-file photos/` sends `photos/...`), `-` = stdin under `stdin_name`. Only regular
// files are sent; fifos, devices and sockets inside directories are skipped with a warning.
base::Result<Collected> collect_sources(const std::vector<std::string>& args,
                                        const CollectOptions& options = {});

struct FileResult {
    std::string name;
    uint64_t size = 0;
    uint64_t offset = 0; // resumed from
    std::string sha256;
    bool ok = false;       // delivered (sender) or saved complete (receiver)
    bool verified = false; // the other side checked the SHA-256 (rtcat-file/1 only)
    std::string error;
    std::string part; // receiver: the partial file left behind, when there is one
};

struct Progress {
    uint64_t bytes_done = 0;  // this session's payload bytes (excludes resumed prefixes)
    uint64_t bytes_total = 0; // 0 when unknown
    std::string current;      // file in flight
};

enum class Mode {
    Detecting, // rtcat-file/1 offered, no reply yet
    Protocol,  // the peer speaks rtcat-file/1
    Plain,     // one channel per file, no control channel
};
std::string_view mode_name(Mode m); // "detecting", "rtcat-file/1", "plain"

struct SenderOptions {
    bool plain = false;  // --plain: never offer rtcat-file/1
    bool verify = false; // --verify: a receiver that cannot verify is a failure
    base::Duration plain_after = kPlainFallbackAfter;
};

class Sender {
public:
    Sender(std::vector<Source> sources, SenderOptions options = {});
    ~Sender();

    void on_ready(peer::Peer& peer, base::Instant now);
    void on_event(peer::Peer& peer, peer::Event& event, base::Instant now);
    // Fills channels, and switches to plain mode when the receiver stayed silent.
    void pump(peer::Peer& peer, base::Instant now);
    base::Instant poll_timeout() const;
    int wants_readable_fd() const;
    void on_fd_readable();
    // The peer hung up or vanished before we were finished: every file not settled fails.
    void on_peer_gone(const std::string& why);
    // The session ends before we were finished (interrupted, timed out): the same, for the
    // report.
    void abort(const std::string& why);

    bool finished() const { return finished_; }
    bool failed() const;
    const std::string& error() const { return error_; }
    const std::vector<FileResult>& results() const { return results_; }
    size_t total_files() const { return sources_.size(); }
    Mode mode() const { return mode_; }
    Progress progress() const;

private:
    struct Current;
    void announce_next(peer::Peer& peer, base::Instant now);
    void open_plain(peer::Peer& peer, base::Instant now);
    void go_plain(peer::Peer& peer, base::Instant now, const std::string& why);
    void on_control(peer::Peer& peer, const std::string& text, base::Instant now);
    void start_file(peer::Peer& peer, uint64_t offset, const std::string& prefix_hash,
                    base::Instant now);
    void finish_file(peer::Peer& peer, base::Instant now);
    void fail_current(peer::Peer& peer, const std::string& why, base::Instant now);
    void send_control(peer::Peer& peer, const std::string& json, base::Instant now);
    void set_error(std::string e);
    void maybe_finish();
    void fail_outstanding(const std::string& why);

    std::vector<Source> sources_;
    SenderOptions options_;
    Mode mode_ = Mode::Detecting;
    size_t next_ = 0;
    std::optional<uint16_t> control_;
    bool control_open_ = false;
    base::Instant fallback_at_ = base::kNever;
    std::unique_ptr<Current> cur_;
    std::vector<FileResult> results_;
    std::map<uint64_t, size_t> result_by_id_;    // sent whole, awaiting the receiver's ack
    std::map<uint64_t, uint16_t> channel_by_id_; // closed on the file's ack
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
    // Opens the output directory (creating it).
    static base::Result<std::unique_ptr<Receiver>> create(ReceiverOptions options);
    ~Receiver();

    void on_event(peer::Peer& peer, peer::Event& event, base::Instant now);
    // The peer hung up or vanished: files still incomplete fail (their .part stays). Returns
    // true when that is a normal end: everything the sender started was received whole, and
    // it was a plain sender (no `done` to wait for) that sent at least one file.
    bool on_peer_gone(const std::string& why);
    // Nothing arrived for the idle timeout. A plain sender gives no sign that it is done: when
    // no file is in flight and at least one arrived, that is the end (returns true).
    bool on_idle();

    // The sender said `done` and every file it announced is settled.
    bool finished() const { return finished_; }
    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    const std::vector<FileResult>& results() const { return results_; }
    Mode mode() const { return mode_; }
    Progress progress() const;
    // Interrupted: closes files; anything incomplete stays as NAME.part (listed in results()).
    void abort(const std::string& why);

    // For tests: what a peer currently holds in memory and descriptors here.
    size_t early_bytes() const { return early_total_; }
    size_t files_in_flight() const { return files_.size(); }

private:
    struct Incoming;
    explicit Receiver(ReceiverOptions options, OutDir dir);
    void on_channel_open(peer::Peer& peer, const dcep::ChannelInfo& ch, base::Instant now);
    void on_channel_closed(peer::Peer& peer, uint16_t channel, bool peer_done, base::Instant now);
    void on_control(peer::Peer& peer, const std::string& text, base::Instant now);
    void on_announce(peer::Peer& peer, const std::string& name, std::optional<uint64_t> id,
                     std::optional<uint64_t> size, base::Instant now);
    void on_file_bytes(peer::Peer& peer, Incoming& f, std::span<const uint8_t> data,
                       base::Instant now);
    base::Result<std::unique_ptr<Incoming>> prepare(const std::string& name);
    void start_plain(peer::Peer& peer, Incoming& f, base::Instant now);
    void flush_early(peer::Peer& peer, Incoming& f, base::Instant now);
    void maybe_complete(peer::Peer& peer, Incoming& f, base::Instant now);
    void complete(peer::Peer& peer, Incoming& f, bool verified, base::Instant now);
    void fail_file(peer::Peer& peer, Incoming& f, const std::string& why, base::Instant now);
    void settle(Incoming& f, FileResult fr);
    // Every file in flight fails with `why` (its .part kept).
    void settle_all(const std::string& why);
    void refuse(const std::string& name, const std::string& reason);
    void send_control(peer::Peer& peer, const std::string& json, base::Instant now);
    void check_finished(peer::Peer& peer, base::Instant now);
    void set_error(std::string e);
    Incoming* find_channel(uint16_t channel);
    Incoming* find_id(std::optional<uint64_t> id);

    ReceiverOptions options_;
    OutDir dir_;
    Mode mode_ = Mode::Plain; // until a control channel appears
    std::optional<uint16_t> control_;
    bool control_closed_ = false;
    uint64_t next_key_ = 1;
    std::map<uint64_t, std::unique_ptr<Incoming>> files_; // in flight, by our key
    std::map<uint64_t, uint64_t> key_by_id_;              // announced id → key
    std::map<std::string, uint64_t> key_by_name_;         // announced, awaiting its channel
    std::map<uint16_t, uint64_t> key_by_channel_;
    std::set<std::string> names_seen_; // announced or received in this session
    std::set<uint16_t> ignored_channels_;
    std::vector<FileResult> results_;
    size_t refused_ = 0;
    size_t early_total_ = 0;
    bool done_seen_ = false;
    bool finished_ = false;
    bool gone_ = false; // the peer is gone: nothing more is sent
    std::string error_;
    uint64_t bytes_done_ = 0;
    uint64_t bytes_total_ = 0;
};

} // namespace rtcat::cli::transfer
