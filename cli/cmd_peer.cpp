// rtcat offer / rtcat answer / rtcat send-file: the two WebRTC peer roles, and what runs on
// top of a connection (file transfer, netcat mode).

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/app.hpp"
#include "cli/exit_codes.hpp"
#include "cli/manual.hpp"
#include "cli/session.hpp"
#include "cli/transfer.hpp"
#include "core/base/log.hpp"
#include "core/base/printable.hpp"

namespace rtcat::cli {

namespace {

using nlohmann::json;

struct PeerCommandOptions {
    PeerOptions peer;
    std::string out_dir;
    bool force = false;
    bool resume = false;
    // send-file
    std::vector<std::string> files;
    bool answer_role = false;
    std::string stdin_name = "stdin";
    bool plain = false;
    bool verify = false;
    bool follow_symlinks = false;
};

// Where each stdio stream went, so an app knows whether stdin/stdout are free for data.
struct StdioUse {
    bool stdin_signaling = false;
    bool stdout_signaling = false;
};

std::string human_bytes(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{:.0f} {}", b, units[u]) : fmt::format("{:.1f} {}", b, units[u]);
}

// Progress on stderr, only when it is a terminal and not silenced.
class ProgressLine {
public:
    explicit ProgressLine(bool enabled) : enabled_(enabled) {}
    void update(const transfer::Progress& p, base::Instant start, base::Instant now) {
        if (!enabled_ || now < next_) {
            return;
        }
        next_ = now + base::ms(250);
        const double secs = std::max(1e-3, base::to_ms(now - start) / 1000.0);
        const double rate = static_cast<double>(p.bytes_done) / secs;
        std::string eta;
        if (p.bytes_total > p.bytes_done && rate > 0) {
            const double left = static_cast<double>(p.bytes_total - p.bytes_done) / rate;
            eta = fmt::format("  ETA {}:{:02}", static_cast<int>(left) / 60,
                              static_cast<int>(left) % 60);
        }
        std::string total =
            p.bytes_total ? " / " + human_bytes(static_cast<double>(p.bytes_total)) : std::string();
        std::fprintf(stderr, "\r\033[K%s  %s%s  %.1f MB/s%s", p.current.c_str(),
                     human_bytes(static_cast<double>(p.bytes_done)).c_str(), total.c_str(),
                     rate / 1e6, eta.c_str());
        drawn_ = true;
    }
    void clear() {
        if (drawn_) {
            std::fprintf(stderr, "\r\033[K");
            drawn_ = false;
        }
    }

private:
    bool enabled_;
    bool drawn_ = false;
    base::Instant next_{};
};

// Connection set-up steps in ms since the command started (absent: did not happen).
json timeline_json(const ConnectTimeline& t) {
    json j = json::object();
    auto put = [&](const char* name, double ms) {
        if (ms >= 0) {
            j[name] = std::round(ms * 100) / 100;
        }
    };
    put("peer", t.peer_ms);
    put("offer", t.offer_ms);
    put("answer", t.answer_ms);
    put("ice", t.ice_ms);
    put("dtls", t.dtls_ms);
    put("sctp", t.sctp_ms);
    put("channel_open", t.channel_open_ms);
    return j;
}

bool progress_wanted() {
    return ::isatty(STDERR_FILENO) && base::log_level() < base::LogLevel::Error;
}

json pair_json(const ice::CandidatePair& pair) {
    json pj;
    pj["local"] = {{"type", std::string(ice::candidate_type_name(pair.local.type))},
                   {"address", pair.local.address.to_string()}};
    pj["remote"] = {{"type", std::string(ice::candidate_type_name(pair.remote.type))},
                    {"address", pair.remote.address.to_string()}};
    pj["relayed"] = pair_is_relayed(pair);
    return pj;
}

// The fields every peer command's --json report has, whatever ran on the connection.
json session_json(const SessionResult& r, const char* role, std::string_view mode,
                  const std::string& error, uint64_t bytes, double secs) {
    json j;
    j["role"] = role;
    j["mode"] = mode;
    j["ok"] = r.exit_code == kExitOk;
    j["exit_code"] = r.exit_code;
    if (!error.empty()) {
        j["error"] = error;
    }
    j["files"] = json::array();
    j["bytes"] = bytes;
    j["seconds"] = secs;
    j["mb_per_s"] = secs > 0 ? static_cast<double>(bytes) / secs / 1e6 : 0.0;
    j["connect_ms"] = r.connect_ms;
    j["connect_timeline_ms"] = timeline_json(r.timeline);
    if (r.pair) {
        j["pair"] = pair_json(*r.pair);
    }
    j["kernel_drops"] = r.kernel_drops;
    return j;
}

void print_json(const json& j, std::FILE* out) {
    // Peer strings may be any bytes: replace what is not UTF-8 rather than throw.
    std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fputs(line.c_str(), out);
    std::fflush(out);
}

std::string shown(const std::string& s) {
    return base::printable(s);
}

// --- file transfer --------------------------------------------------------------------------

class TransferApp : public SessionApp {
public:
    TransferApp(std::unique_ptr<transfer::Sender> s, std::unique_ptr<transfer::Receiver> r)
        : sender_(std::move(s)), receiver_(std::move(r)), progress_(progress_wanted()) {}

    void on_ready(peer::Peer& peer, base::Instant now) override {
        start_ = now;
        last_ = now;
        started_ = true;
        if (sender_) {
            sender_->on_ready(peer, now);
        }
    }
    void on_event(peer::Peer& peer, peer::Event& event, base::Instant now) override {
        last_ = now;
        ++events_;
        if (sender_) {
            sender_->on_event(peer, event, now);
        } else {
            receiver_->on_event(peer, event, now);
        }
        check_first_byte(now);
        check_done(now);
    }
    void pump(peer::Peer& peer, base::Instant now) override {
        last_ = now;
        if (sender_) {
            sender_->pump(peer, now);
        }
        check_first_byte(now);
        progress_.update(progress(), first_byte_set_ ? first_byte_ : start_, now);
        check_done(now);
    }

private:
    // The rate runs from the first payload byte (not from the connection: a plain receiver
    // costs the 5 s of silence before the fall-back) to the end.
    void check_first_byte(base::Instant now) {
        if (!first_byte_set_ && progress().bytes_done > 0) {
            first_byte_ = now;
            first_byte_set_ = true;
        }
    }

public:
    base::Instant poll_timeout() const override {
        return sender_ ? sender_->poll_timeout() : base::kNever;
    }
    uint64_t activity() const override { return events_ + progress().bytes_done; }
    int wants_readable_fd() const override { return sender_ ? sender_->wants_readable_fd() : -1; }
    void on_fd_readable(peer::Peer& /*peer*/, base::Instant /*now*/) override {
        if (sender_) {
            sender_->on_fd_readable();
        }
    }
    bool finished() const override { return sender_ ? sender_->finished() : receiver_->finished(); }
    int exit_code() const override {
        const bool failed = sender_ ? sender_->failed() : receiver_->failed();
        return failed ? kExitTransfer : kExitOk;
    }
    int on_peer_gone(peer::Peer& /*peer*/, const std::string& why) override {
        progress_.clear();
        if (sender_) {
            sender_->on_peer_gone(why);
        } else {
            receiver_->on_peer_gone(why);
        }
        check_done(last_);
        return exit_code();
    }
    bool on_idle() override { return receiver_ && receiver_->on_idle(); }
    void on_abort(const std::string& why) override {
        progress_.clear();
        abort_reason_ = why;
        if (receiver_) {
            receiver_->abort(why);
        } else {
            sender_->abort(why);
        }
    }

    void report(const SessionResult& r, bool json_out, bool stdout_is_signaling) {
        progress_.clear();
        const auto& results = sender_ ? sender_->results() : receiver_->results();
        const auto prog = progress();
        const transfer::Mode mode = sender_ ? sender_->mode() : receiver_->mode();
        // An interrupted or failed transfer never set end_: it ran until the last loop turn.
        const base::Instant end = end_set_ ? end_ : last_;
        const base::Instant from = first_byte_set_ ? first_byte_ : start_;
        const double secs = started_ ? std::max(1e-6, base::to_ms(end - from) / 1000.0) : 0.0;
        const double mbps = secs > 0 ? static_cast<double>(prog.bytes_done) / secs / 1e6 : 0;
        // The app's own failure; a session-level one (timeout, interrupt, ...) was already
        // printed by the session when it happened.
        const std::string own = sender_ ? sender_->error() : receiver_->error();
        std::string err = own;
        if (err.empty() && r.exit_code != kExitOk) {
            err = abort_reason_;
        }
        if (json_out) {
            json j = session_json(r, sender_ ? "sender" : "receiver", transfer::mode_name(mode),
                                  err, prog.bytes_done, secs);
            for (const auto& f : results) {
                json fj{{"name", f.name},
                        {"size", f.size},
                        {"sha256", f.sha256},
                        {"ok", f.ok},
                        {"verified", f.verified}};
                if (f.offset) {
                    fj["resumed_from"] = f.offset;
                }
                if (!f.error.empty()) {
                    fj["error"] = f.error;
                }
                if (!f.part.empty()) {
                    fj["part"] = f.part;
                }
                j["files"].push_back(fj);
            }
            print_json(j, stdout_is_signaling ? stderr : stdout);
            return;
        }
        if (base::log_level() >= base::LogLevel::Error && r.exit_code == kExitOk) {
            return; // -q: silence on success
        }
        if (!started_ && results.empty()) {
            return; // never connected: the session said why
        }
        size_t ok = 0;
        for (const auto& f : results) {
            ok += f.ok ? 1 : 0;
        }
        const size_t total = sender_ ? sender_->total_files() : results.size();
        std::string how;
        if (mode == transfer::Mode::Plain && ok > 0) {
            how = sender_ ? " (plain mode: delivered, not verified by the receiver)"
                          : " (plain mode: not verified by the sender)";
        }
        std::fprintf(stderr, "rtcat: %s %zu of %zu file%s, %s in %.2f s (%.1f MB/s)%s\n",
                     sender_ ? "sent" : "received", ok, total, total == 1 ? "" : "s",
                     human_bytes(static_cast<double>(prog.bytes_done)).c_str(), secs, mbps,
                     how.c_str());
        for (const auto& f : results) {
            std::string state;
            if (!f.ok) {
                state = "FAILED: " + (f.error.empty() ? std::string("unknown") : shown(f.error));
                if (!f.part.empty()) {
                    state += " (partial file kept: " + shown(f.part) + ")";
                }
            } else if (f.verified) {
                state = "verified";
            } else {
                state = sender_ ? "delivered, not verified" : "saved, not verified by the sender";
            }
            std::fprintf(stderr, "  %s  %llu bytes  sha256 %s  %s\n", shown(f.name).c_str(),
                         static_cast<unsigned long long>(f.size),
                         f.sha256.empty() ? "-" : f.sha256.c_str(), state.c_str());
        }
        if (r.exit_code != kExitOk && !own.empty() && own != abort_reason_) {
            std::fprintf(stderr, "rtcat: FAILED: %s\n", shown(own).c_str());
        }
        if (r.pair) {
            std::fprintf(stderr, "  path: %s\n", describe_pair(*r.pair).c_str());
        }
    }

private:
    transfer::Progress progress() const {
        return sender_ ? sender_->progress() : receiver_->progress();
    }
    void check_done(base::Instant now) {
        if (finished() && !end_set_) {
            end_ = now;
            end_set_ = true;
        }
    }

    std::unique_ptr<transfer::Sender> sender_;
    std::unique_ptr<transfer::Receiver> receiver_;
    ProgressLine progress_;
    base::Instant start_{};
    base::Instant first_byte_{};
    bool first_byte_set_ = false;
    base::Instant end_{};
    base::Instant last_{};
    uint64_t events_ = 0;
    bool started_ = false;
    bool end_set_ = false;
    std::string abort_reason_;
};

// --- netcat mode ----------------------------------------------------------------------------
// Our stdin goes out on a channel we open (labelled rtcat-stdio); what arrives on the first
// channel the peer opens, whatever its label, and on ours (a peer may answer on the channel it
// received) goes to stdout. Two rtcats each open their own rtcat-stdio. The session ends once
// our stdin was delivered (our channel closed by both sides) and the peer is done sending: its
// channel closed, or, when it opened none, ours closed; or when the peer hangs up after it had
// everything we sent.

constexpr std::string_view kStdioLabel = "rtcat-stdio";

class NetcatApp : public SessionApp {
public:
    NetcatApp(bool stdin_free, bool stdout_free)
        : stdin_free_(stdin_free), stdout_free_(stdout_free) {}

    void on_ready(peer::Peer& peer, base::Instant now) override {
        start_ = now;
        last_ = now;
        started_ = true;
        buf_.resize(std::min<size_t>(64 * 1024, peer.remote_max_message_size()));
        dcep::ChannelOptions o;
        o.label = std::string(kStdioLabel);
        auto id = peer.open_channel(o, now);
        if (!id) {
            error_ = id.error().message;
            broken_ = true;
            return;
        }
        local_ = *id;
        peer.set_buffered_amount_low_threshold(*local_, kLow);
    }
    void on_event(peer::Peer& peer, peer::Event& event, base::Instant now) override {
        ++events_;
        last_ = now;
        if (std::holds_alternative<dcep::event::BufferedAmountLow>(event)) {
            buffered_ok_ = true;
        } else if (auto* open = std::get_if<dcep::event::ChannelOpen>(&event)) {
            if (open->remote) {
                if (!remote_) {
                    remote_ = open->channel.id;
                    RTCAT_INFO("netcat", "reading the peer's channel {}",
                               open->channel.options.label);
                } else {
                    RTCAT_WARN("netcat", "the peer opened another channel ({}): ignored",
                               open->channel.options.label);
                }
            } else if (local_ && open->channel.id == *local_) {
                local_open_ = true;
                if (!stdin_free_) {
                    peer.close_channel(*local_, now);
                }
            }
        } else if (auto* m = std::get_if<dcep::event::Message>(&event)) {
            if ((remote_ && m->id == *remote_) || (local_ && m->id == *local_)) {
                bytes_received_ += m->data.size();
                if (stdout_free_) {
                    write_out(m->data);
                }
            }
        } else if (auto* c = std::get_if<dcep::event::ChannelClosed>(&event)) {
            // The peer's channel is done once the peer reset it (all it sent arrived); ours once
            // the peer performed our reset (all we sent arrived). A channel that ends with the
            // association otherwise settles nothing here: on_peer_gone() follows and knows what
            // the peer had by then.
            if (remote_ && c->id == *remote_ && c->peer_done) {
                remote_closed_ = true;
            }
            if (local_ && c->id == *local_ && c->delivered) {
                if (stdin_free_ && !eof_ && !broken_ && error_.empty()) {
                    // We close our channel only at the end of stdin: the peer reset it with
                    // input left to send.
                    error_ = "the peer closed the channel before the end of standard input";
                }
                local_closed_ = true;
            }
        }
    }
    void pump(peer::Peer& peer, base::Instant now) override {
        last_ = now;
        if (close_at_ == base::kNever || now < close_at_) {
            return;
        }
        if (peer.buffered_amount(*local_) > 0) {
            close_at_ = now + base::ms(10); // still draining: look again soon, without spinning
            return;
        }
        close_at_ = base::kNever;
        peer.close_channel(*local_, now);
    }
    base::Instant poll_timeout() const override { return close_at_; }
    uint64_t activity() const override { return events_ + bytes_sent_ + bytes_received_; }
    int wants_readable_fd() const override {
        if (stdin_free_ && local_open_ && !local_closed_ && !eof_ && buffered_ok_ &&
            error_.empty()) {
            return STDIN_FILENO;
        }
        return -1;
    }
    void on_fd_readable(peer::Peer& peer, base::Instant now) override {
        ssize_t n = ::read(STDIN_FILENO, buf_.data(), buf_.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            return;
        }
        if (n <= 0) {
            eof_ = true;
            // Chromium drops a channel's last messages when the stream reset follows them
            // within milliseconds: close once everything left our queue, after a grace period.
            close_at_ = now + kCloseGrace;
            return;
        }
        auto r = peer.send(*local_, std::span<const uint8_t>(buf_.data(), static_cast<size_t>(n)),
                           true, now);
        if (!r) {
            error_ = r.error().message;
            return;
        }
        bytes_sent_ += static_cast<uint64_t>(n);
        // Over the high-water mark: stdin waits for BufferedAmountLow.
        buffered_ok_ = peer.buffered_amount(*local_) < kHigh;
    }
    bool finished() const override {
        if (broken_) {
            return true;
        }
        const bool sent = local_closed_;
        const bool received = remote_ ? remote_closed_ : local_closed_;
        return sent && received;
    }
    int exit_code() const override { return error_.empty() ? kExitOk : kExitTransfer; }
    int on_peer_gone(peer::Peer& peer, const std::string& why) override {
        // A peer that hangs up once it has everything we sent ends the session normally, the way
        // a TCP peer's FIN ends netcat.
        const bool delivered = !stdin_free_ || (eof_ && peer.all_data_acknowledged());
        if (!delivered && error_.empty()) {
            error_ = stdin_free_ && !eof_
                         ? "the peer went away before the end of standard input: " + why
                         : "the peer went away before it had everything we sent: " + why;
        }
        gone_ = true;
        return exit_code();
    }
    void on_abort(const std::string& why) override {
        if (error_.empty()) {
            abort_reason_ = why;
        }
    }
    const std::string& error() const { return error_; }

    void report(const SessionResult& r, bool json_out) {
        const double secs = started_ ? std::max(1e-6, base::to_ms(last_ - start_) / 1000.0) : 0.0;
        const std::string& err = error_.empty() ? abort_reason_ : error_;
        if (json_out) {
            json j = session_json(r, "netcat", "netcat", r.exit_code == kExitOk ? "" : err,
                                  bytes_sent_ + bytes_received_, secs);
            j["bytes_sent"] = bytes_sent_;
            j["bytes_received"] = bytes_received_;
            print_json(j, stderr); // stdout carries the data
            return;
        }
        if (!error_.empty()) {
            std::fprintf(stderr, "rtcat: %s\n", shown(error_).c_str());
        }
        if (base::log_level() <= base::LogLevel::Info) {
            std::fprintf(stderr, "rtcat: netcat: sent %s, received %s in %.2f s\n",
                         human_bytes(static_cast<double>(bytes_sent_)).c_str(),
                         human_bytes(static_cast<double>(bytes_received_)).c_str(), secs);
        }
    }

private:
    static constexpr size_t kHigh = 1 << 20;
    static constexpr size_t kLow = 256 << 10;
    static constexpr base::Duration kCloseGrace = base::ms(200);

    void write_out(const base::Bytes& data) {
        const uint8_t* p = data.data();
        size_t left = data.size();
        while (left > 0) {
            ssize_t n = ::write(STDOUT_FILENO, p, left);
            if (n < 0) {
                // EINTR: SIGINT or SIGTERM (the only signals we catch, without SA_RESTART); the
                // loop ends the session once it reads the signal.
                error_ = errno == EINTR
                             ? std::string("interrupted while writing standard output")
                             : fmt::format("writing standard output: {}", std::strerror(errno));
                stdout_free_ = false;
                // Nobody reads what the peer sends any more (a closed pipe, a full disk): end
                // the session, as cat or netcat would, instead of discarding the stream.
                broken_ = true;
                return;
            }
            p += n;
            left -= static_cast<size_t>(n);
        }
    }

    bool stdin_free_;
    bool stdout_free_;
    std::optional<uint16_t> local_;
    std::optional<uint16_t> remote_;
    std::vector<uint8_t> buf_;
    bool local_open_ = false;
    bool local_closed_ = false;
    bool remote_closed_ = false;
    bool eof_ = false;
    bool gone_ = false;
    base::Instant close_at_ = base::kNever;
    bool buffered_ok_ = true;
    bool broken_ = false;
    bool started_ = false;
    base::Instant start_{};
    base::Instant last_{};
    uint64_t events_ = 0;
    uint64_t bytes_sent_ = 0;
    uint64_t bytes_received_ = 0;
    std::string error_;
    std::string abort_reason_;
};

// Idle timeout when the user gave none: a file transfer that stops moving is stuck (a sender
// that stalls after `start`, a receiver that stopped reading); netcat may legitimately wait on
// a human typing.
constexpr double kTransferIdleTimeoutS = 60;

int run_peer_command(const PeerCommandOptions& o, bool offerer, bool sending) {
    StdioUse stdio;
    stdio.stdin_signaling = o.peer.sdp_in.empty();
    stdio.stdout_signaling = o.peer.sdp_out.empty();
    PeerOptions po = o.peer;
    const bool transfer_mode = sending || !o.out_dir.empty();
    if (po.idle_timeout < 0) {
        po.idle_timeout = transfer_mode ? kTransferIdleTimeoutS : 0;
    }

    if (sending) {
        for (const auto& f : o.files) {
            if (f == "-" && stdio.stdin_signaling) {
                std::fprintf(stderr, "rtcat: '-' sends standard input, so the peer's "
                                     "description must come from --sdp-in PATH\n");
                return kExitUsage;
            }
        }
        if (o.plain && o.verify) {
            std::fprintf(stderr, "rtcat: --plain and --verify exclude each other (a plain "
                                 "receiver cannot verify)\n");
            return kExitUsage;
        }
        transfer::CollectOptions co;
        co.stdin_name = o.stdin_name;
        co.follow_symlinks = o.follow_symlinks;
        auto collected = transfer::collect_sources(o.files, co);
        if (!collected) {
            std::fprintf(stderr, "rtcat: %s\n", shown(collected.error().message).c_str());
            return kExitUsage;
        }
        for (const auto& w : collected->warnings) {
            std::fprintf(stderr, "rtcat: warning: %s\n", w.c_str());
        }
        po.other_side = "rtcat answer --out DIR";
        transfer::SenderOptions so;
        so.plain = o.plain;
        so.verify = o.verify;
        TransferApp app(std::make_unique<transfer::Sender>(std::move(collected->sources), so),
                        nullptr);
        auto r = run_session(po, offerer, app);
        app.report(r, po.json, stdio.stdout_signaling);
        return r.exit_code;
    }
    if (!o.out_dir.empty()) {
        transfer::ReceiverOptions ro;
        ro.out_dir = o.out_dir;
        ro.force = o.force;
        ro.resume = o.resume;
        auto receiver = transfer::Receiver::create(ro);
        if (!receiver) {
            std::fprintf(stderr, "rtcat: %s\n", receiver.error().message.c_str());
            return kExitUsage;
        }
        po.other_side = "rtcat send-file FILE... --answer";
        TransferApp app(nullptr, std::move(*receiver));
        auto r = run_session(po, offerer, app);
        app.report(r, po.json, stdio.stdout_signaling);
        return r.exit_code;
    }
    po.other_side = "rtcat answer --sdp-in /dev/tty --sdp-out /dev/tty";
    NetcatApp app(!stdio.stdin_signaling, !stdio.stdout_signaling);
    auto r = run_session(po, offerer, app);
    app.report(r, po.json);
    return r.exit_code;
}

void add_receive_options(CLI::App* sub, PeerCommandOptions& o) {
    sub->add_option("--out", o.out_dir,
                    "Receive files into DIR (created if missing) instead of netcat mode");
    sub->add_flag("--force", o.force, "Overwrite existing files");
    sub->add_flag("--resume", o.resume,
                  "Continue from NAME.part files left by an interrupted transfer (their bytes "
                  "are verified against the sender's before use)");
}

const char* kExitSection =
    "0\n    Success. send-file: every file delivered, and verified by a receiver that speaks "
    "rtcat-file/1 (a plain receiver, which cannot verify, counts as success unless --verify). "
    "offer/answer --out: every file the sender started was saved whole (verified when the "
    "sender speaks rtcat-file/1). Netcat: standard input was delivered and the peer finished "
    "(closed its channel or hung up).\n"
    "2\n    Usage error, or an unusable session description from the peer.\n"
    "3\n    Connectivity: ICE found no working path before the connection was up.\n"
    "4\n    Timeout: --timeout expired before the connection was up (signaling included), or "
    "nothing moved for --idle-timeout seconds once connected.\n"
    "5\n    Security: the peer's DTLS certificate does not match the fingerprint in its "
    "description.\n"
    "7\n    Transfer: a file was refused, failed verification or was not delivered; the peer "
    "went away (hung up, or vanished: ICE consent lost) before the end; with --verify, the "
    "receiver could not verify.\n"
    "130\n    Interrupted by SIGINT or SIGTERM (partial files stay as NAME.part).";

} // namespace

void add_peer_commands(CLI::App& app, AppContext& ctx) {
    for (bool offerer : {true, false}) {
        auto& o = ctx.make<PeerCommandOptions>();
        const char* name = offerer ? "offer" : "answer";
        auto* sub = app.add_subcommand(
            name, offerer ? "Start a WebRTC session: print an offer, read the answer, then "
                            "receive files (--out) or pipe stdin/stdout over a data channel"
                          : "Answer a WebRTC session: read an offer, print the answer, then "
                            "receive files (--out) or pipe stdin/stdout over a data channel");
        add_receive_options(sub, o);
        add_peer_options(*sub, o.peer);
        ctx.commands.emplace_back(sub,
                                  [&o, offerer] { return run_peer_command(o, offerer, false); });
        register_manual(ManualPage{
            name,
            offerer ? "start a WebRTC data channel session"
                    : "answer a WebRTC data channel session",
            {
                {"DESCRIPTION",
                 std::string(offerer ? "Creates an offer and writes it to standard output (or "
                                       "--sdp-out), then reads the peer's answer from standard "
                                       "input (or --sdp-in). "
                                     : "Reads an offer from standard input (or --sdp-in), then "
                                       "writes the answer to standard output (or --sdp-out). ") +
                     "Descriptions are accepted as plain SDP (ended by a blank line or end of "
                     "input), as the JSON object browsers print ({\"type\":...,\"sdp\":...}), or "
                     "as the one-line token rtcat prints on a terminal; the form is detected.\n\n"
                     "With --out DIR the session receives files sent by rtcat send-file (or any "
                     "peer speaking the rtcat-file/1 protocol): each is written to NAME.part, "
                     "verified by SHA-256 and only then renamed to NAME. From a peer that knows "
                     "nothing of rtcat (a browser page, aiortc, pion), every data channel it "
                     "opens is a file named by the channel's label, saved when the channel "
                     "is closed cleanly (not verified: such a sender sends no hash); the "
                     "session ends when that peer hangs up, or after --idle-timeout of silence "
                     "with no file in flight.\n\n"
                     "Names are kept relative to DIR: absolute paths, '..', backslashes, control "
                     "characters and invalid UTF-8 are refused, and so is any path through a "
                     "symbolic link inside DIR (every component is opened without following "
                     "links). Names of files, labels and reasons from the peer are printed "
                     "with control characters escaped.\n\n"
                     "Without --out, once connected, the session is netcat over a data channel: "
                     "standard input goes to the peer on a channel labelled rtcat-stdio, and "
                     "what the peer sends on the first channel it opens (any label) or on ours "
                     "comes out on standard output. It ends once standard input was delivered "
                     "and the peer closed its channel or hung up. That needs signaling off "
                     "stdio (--sdp-in/--sdp-out).\n\n"
                     "--sdp-in and --sdp-out may be fifos: they are opened without blocking, so "
                     "the two sides may open their ends in any order, and --timeout and "
                     "signals work while waiting. On a terminal, rtcat says what to paste where."},
                {"EXAMPLES",
                 std::string("Receive files from a sender through two pipes:\n\n"
                             "  mkfifo back\n"
                             "  rtcat send-file big.iso <back | rtcat answer --out dl/ >back\n\n"
                             "Across machines through ssh:\n\n"
                             "  mkfifo back\n"
                             "  rtcat send-file big.iso <back | ssh host rtcat answer --out dl/ "
                             ">back\n\n"
                             "Copy-paste between two terminals: run `rtcat offer --out dl/`, "
                             "paste its one-line token into `rtcat send-file FILE --answer`, and "
                             "paste the token that prints back into the first terminal.")},
                {"EXIT STATUS", kExitSection},
                {"ENVIRONMENT", "SSLKEYLOGFILE\n    Same as --keylog FILE."},
                {"SEE ALSO", "rtcat(1), rtcat-send-file(1), rtcat-stun-probe(1)"},
            },
        });
    }

    auto& o = ctx.make<PeerCommandOptions>();
    auto* sub = app.add_subcommand(
        "send-file", "Send files over WebRTC data channels, verified end to end by SHA-256");
    sub->add_option("FILE", o.files,
                    "Files or directories to send (directories recursively); - for standard "
                    "input")
        ->required();
    sub->add_flag("--answer", o.answer_role,
                  "Take the answering role: read the receiver's offer first");
    sub->add_option("--name", o.stdin_name, "Name to send standard input (-) under")
        ->capture_default_str();
    sub->add_flag("--plain", o.plain,
                  "Plain mode: no control channel; each file on its own channel labelled with "
                  "its name, its bytes, then a clean close (for receivers that know nothing of "
                  "rtcat; chosen by itself when the receiver does not answer rtcat-file/1 within "
                  "5 s)");
    sub->add_flag("--verify", o.verify,
                  "Fail (exit 7) when the receiver cannot verify the files' SHA-256 (a plain "
                  "receiver) instead of sending in plain mode");
    sub->add_flag("--follow-symlinks", o.follow_symlinks,
                  "Send what symbolic links inside a directory point to (default: skip them "
                  "with a warning)");
    add_peer_options(*sub, o.peer);
    ctx.commands.emplace_back(sub, [&o] { return run_peer_command(o, !o.answer_role, true); });
    register_manual(ManualPage{
        "send-file",
        "send files over a WebRTC data channel",
        {
            {"DESCRIPTION",
             "Connects to a peer (by default as the offerer: the offer goes to standard output, "
             "the answer is read from standard input) and sends each FILE on its own reliable, "
             "ordered data channel, with names, sizes, SHA-256 hashes, resume offsets and "
             "acknowledgements on a JSON control channel (the rtcat-file/1 protocol, open to "
             "any WebRTC peer, browsers included). The receiver is rtcat answer --out DIR or "
             "rtcat offer --out DIR.\n\n"
             "A receiver that knows nothing of rtcat-file/1 (a browser page collecting channel "
             "bytes, aiortc, pion) says nothing on the control channel: after 5 s without a "
             "reply, or when it closes the control channel, rtcat sends in plain mode: each "
             "file on its own channel labelled with its relative path, its bytes, then a clean "
             "close. A file counts as delivered when the receiver's SCTP acknowledged every "
             "byte and the channel was closed by both sides; it is not verified by the "
             "receiver (the summary says so). --plain starts in plain mode; --verify makes a "
             "receiver that cannot verify a failure. Messages never exceed the receiver's "
             "a=max-message-size (65535 bytes when it announces none).\n\n"
             "Directories are sent recursively with their relative paths; symbolic links inside "
             "them are skipped with a warning unless --follow-symlinks, and fifos, devices and "
             "sockets are skipped with a warning. A summary (files, "
             "bytes, seconds, MB/s, SHA-256, the candidate pair and whether it is direct or "
             "relayed) is printed on standard error, or as JSON with --json (on standard output "
             "when it does not carry signaling). Progress with rate and ETA is shown when "
             "standard error is a terminal."},
            {"EXAMPLES", "Send a file to a receiver through two pipes:\n\n"
                         "  mkfifo back\n"
                         "  rtcat send-file big.iso <back | rtcat answer --out dl/ >back\n\n"
                         "Continue after an interruption (the receiver keeps NAME.part):\n\n"
                         "  rtcat send-file big.iso <back | rtcat answer --out dl/ --resume "
                         ">back\n\n"
                         "Send standard input, with signaling through files:\n\n"
                         "  tar c dir | rtcat send-file - --name dir.tar --sdp-out offer "
                         "--sdp-in answer"},
            {"JSON OUTPUT",
             "With --json, one object when the session ends (the receiver prints the same "
             "shape):\n\n"
             "role, mode, ok, exit_code, error\n    sender or receiver (netcat in netcat "
             "mode, with the same fields); rtcat-file/1 or plain; how it ended.\n"
             "files\n    One object per file: name, size, sha256, ok, verified (the other side "
             "checked the SHA-256), part (the partial file a receiver kept), resumed_from (bytes "
             "the receiver already held), error.\n"
             "bytes, seconds, mb_per_s\n    Payload moved and the rate, from the first "
             "byte to the last acknowledgement.\n"
             "connect_ms\n    Offer -> first data channel open (offer written by the offerer, "
             "read by the answerer), in ms.\n"
             "connect_timeline_ms\n    When each set-up step happened, in ms since the "
             "session began: peer, offer, answer, ice, dtls, sctp, channel_open.\n"
             "pair\n    The selected candidate pair: local and remote {type, address}, and "
             "relayed (true when either side is a TURN relay).\n"
             "kernel_drops\n    UDP datagrams the kernel dropped on our socket "
             "(SO_RXQ_OVFL)."},
            {"EXIT STATUS", kExitSection},
            {"ENVIRONMENT", "SSLKEYLOGFILE\n    Same as --keylog FILE."},
            {"SEE ALSO", "rtcat(1), rtcat-offer(1), rtcat-answer(1)"},
        } // namespace rtcat::cli
        ,
    });
}

} // namespace rtcat::cli
