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

// --- file transfer --------------------------------------------------------------------------

class TransferApp : public SessionApp {
public:
    TransferApp(std::unique_ptr<transfer::Sender> s, std::unique_ptr<transfer::Receiver> r)
        : sender_(std::move(s)), receiver_(std::move(r)), progress_(progress_wanted()) {}

    void on_ready(peer::Peer& peer, base::Instant now) override {
        start_ = now;
        started_ = true;
        if (sender_) {
            sender_->on_ready(peer, now);
        }
    }
    void on_event(peer::Peer& peer, peer::Event& event, base::Instant now) override {
        last_ = now;
        if (sender_) {
            sender_->on_event(peer, event, now);
        } else {
            receiver_->on_event(peer, event, now);
        }
        check_done(now);
    }
    void pump(peer::Peer& peer, base::Instant now) override {
        last_ = now;
        if (sender_) {
            sender_->pump(peer, now);
        }
        progress_.update(sender_ ? sender_->progress() : receiver_->progress(), start_, now);
        check_done(now);
    }
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
    void on_abort(const std::string& why) override {
        progress_.clear();
        abort_reason_ = why;
        if (receiver_) {
            receiver_->abort();
        }
    }

    void report(const SessionResult& r, bool json_out, bool stdout_is_signaling) {
        progress_.clear();
        const auto& results = sender_ ? sender_->results() : receiver_->results();
        const auto progress = sender_ ? sender_->progress() : receiver_->progress();
        // An interrupted or failed transfer never set end_: it ran until the last loop turn.
        const base::Instant end = end_set_ ? end_ : last_;
        const double secs = started_ ? std::max(1e-6, base::to_ms(end - start_) / 1000.0) : 0.0;
        const double mbps = secs > 0 ? static_cast<double>(progress.bytes_done) / secs / 1e6 : 0;
        std::string err = sender_ ? sender_->error() : receiver_->error();
        if (err.empty()) {
            err = abort_reason_;
        }
        if (json_out) {
            json j;
            j["role"] = sender_ ? "sender" : "receiver";
            j["ok"] = r.exit_code == kExitOk;
            j["exit_code"] = r.exit_code;
            if (!err.empty()) {
                j["error"] = err;
            }
            j["files"] = json::array();
            for (const auto& f : results) {
                json fj{{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}, {"ok", f.ok}};
                if (f.offset) {
                    fj["resumed_from"] = f.offset;
                }
                if (!f.error.empty()) {
                    fj["error"] = f.error;
                }
                j["files"].push_back(fj);
            }
            j["bytes"] = progress.bytes_done;
            j["seconds"] = secs;
            j["mb_per_s"] = mbps;
            j["connect_ms"] = r.connect_ms;
            j["connect_timeline_ms"] = timeline_json(r.timeline);
            if (r.pair) {
                json pj;
                pj["local"] = {{"type", std::string(ice::candidate_type_name(r.pair->local.type))},
                               {"address", r.pair->local.address.to_string()}};
                pj["remote"] = {
                    {"type", std::string(ice::candidate_type_name(r.pair->remote.type))},
                    {"address", r.pair->remote.address.to_string()}};
                pj["relayed"] = pair_is_relayed(*r.pair);
                j["pair"] = pj;
            }
            j["kernel_drops"] = r.kernel_drops;
            std::string line = j.dump() + "\n";
            std::FILE* out = stdout_is_signaling ? stderr : stdout;
            std::fputs(line.c_str(), out);
            std::fflush(out);
            return;
        }
        if (base::log_level() >= base::LogLevel::Error && r.exit_code == kExitOk) {
            return; // -q: silence on success
        }
        size_t ok = 0;
        for (const auto& f : results) {
            ok += f.ok ? 1 : 0;
        }
        std::fprintf(stderr, "rtcat: %s %zu of %zu file%s, %s in %.2f s (%.1f MB/s)\n",
                     sender_ ? "sent" : "received", ok, results.size(),
                     results.size() == 1 ? "" : "s",
                     human_bytes(static_cast<double>(progress.bytes_done)).c_str(), secs, mbps);
        for (const auto& f : results) {
            std::fprintf(stderr, "  %s  %llu bytes  sha256 %s  %s%s\n", f.name.c_str(),
                         static_cast<unsigned long long>(f.size),
                         f.sha256.empty() ? "-" : f.sha256.c_str(),
                         f.ok ? "verified" : "FAILED: ", f.ok ? "" : f.error.c_str());
        }
        if (r.pair) {
            std::fprintf(stderr, "  path: %s\n", describe_pair(*r.pair).c_str());
        }
    }

private:
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
    base::Instant end_{};
    base::Instant last_{};
    bool started_ = false;
    bool end_set_ = false;
    std::string abort_reason_;
};

// --- netcat mode ----------------------------------------------------------------------------
// Each side opens one channel labelled rtcat-stdio and sends its stdin on it (closing it at
// EOF, or at once when stdin carries signaling); what arrives on the peer's rtcat-stdio
// channel goes to stdout. The session ends when both channels are closed.

constexpr std::string_view kStdioLabel = "rtcat-stdio";

class NetcatApp : public SessionApp {
public:
    NetcatApp(bool stdin_free, bool stdout_free)
        : stdin_free_(stdin_free), stdout_free_(stdout_free) {}

    void on_ready(peer::Peer& peer, base::Instant now) override {
        dcep::ChannelOptions o;
        o.label = std::string(kStdioLabel);
        auto id = peer.open_channel(o, now);
        if (!id) {
            error_ = id.error().message;
            local_closed_ = remote_closed_ = true;
            return;
        }
        local_ = *id;
        peer.set_buffered_amount_low_threshold(*local_, kLow);
    }
    void on_event(peer::Peer& peer, peer::Event& event, base::Instant now) override {
        if (std::holds_alternative<dcep::event::BufferedAmountLow>(event)) {
            buffered_ok_ = true;
        } else if (auto* open = std::get_if<dcep::event::ChannelOpen>(&event)) {
            if (open->remote && open->channel.options.label == kStdioLabel) {
                remote_ = open->channel.id;
            } else if (!open->remote && local_ && open->channel.id == *local_) {
                local_open_ = true;
                if (!stdin_free_) {
                    peer.close_channel(*local_, now);
                }
            }
        } else if (auto* m = std::get_if<dcep::event::Message>(&event)) {
            if (remote_ && m->id == *remote_) {
                if (stdout_free_) {
                    write_out(m->data);
                }
            }
        } else if (auto* c = std::get_if<dcep::event::ChannelClosed>(&event)) {
            if (remote_ && c->id == *remote_) {
                remote_closed_ = true;
            }
            if (local_ && c->id == *local_) {
                if (stdin_free_ && !eof_ && !broken_ && error_.empty()) {
                    // We close our channel only at the end of stdin: the peer reset it, or the
                    // association went away, with input left to send.
                    error_ = "the peer closed the channel before the end of standard input";
                }
                local_closed_ = true;
            }
        }
    }
    void pump(peer::Peer& peer, base::Instant now) override {
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
    int wants_readable_fd() const override {
        if (stdin_free_ && local_open_ && !local_closed_ && !eof_ && buffered_ok_ &&
            error_.empty()) {
            return STDIN_FILENO;
        }
        return -1;
    }
    void on_fd_readable(peer::Peer& peer, base::Instant now) override {
        uint8_t buf[65536];
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            return;
        }
        if (n <= 0) {
            eof_ = true;
            // Chromium drops a channel's last messages when the stream reset follows them
            // within milliseconds: close once everything left our queue, after a grace period.
            close_at_ = now + kCloseGrace;
            return;
        }
        auto r =
            peer.send(*local_, std::span<const uint8_t>(buf, static_cast<size_t>(n)), true, now);
        if (!r) {
            error_ = r.error().message;
        }
        // Over the high-water mark: stdin waits for BufferedAmountLow.
        buffered_ok_ = peer.buffered_amount(*local_) < kHigh;
    }
    bool finished() const override { return broken_ || (local_closed_ && remote_closed_); }
    int exit_code() const override { return error_.empty() ? kExitOk : kExitTransfer; }
    const std::string& error() const { return error_; }

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
                if (errno == EINTR) {
                    continue;
                }
                error_ = fmt::format("writing standard output: {}", std::strerror(errno));
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
    bool local_open_ = false;
    bool local_closed_ = false;
    bool remote_closed_ = false;
    bool eof_ = false;
    base::Instant close_at_ = base::kNever;
    bool buffered_ok_ = true;
    bool broken_ = false;
    std::string error_;
};

int run_peer_command(const PeerCommandOptions& o, bool offerer, bool sending) {
    StdioUse stdio;
    stdio.stdin_signaling = o.peer.sdp_in.empty();
    stdio.stdout_signaling = o.peer.sdp_out.empty();

    if (sending) {
        for (const auto& f : o.files) {
            if (f == "-" && stdio.stdin_signaling) {
                std::fprintf(stderr, "rtcat: '-' sends standard input, so the peer's "
                                     "description must come from --sdp-in PATH\n");
                return kExitUsage;
            }
        }
        auto sources = transfer::collect_sources(o.files, o.stdin_name);
        if (!sources) {
            std::fprintf(stderr, "rtcat: %s\n", sources.error().message.c_str());
            return kExitUsage;
        }
        TransferApp app(std::make_unique<transfer::Sender>(std::move(*sources)), nullptr);
        auto r = run_session(o.peer, offerer, app);
        app.report(r, o.peer.json, stdio.stdout_signaling);
        return r.exit_code;
    }
    if (!o.out_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(o.out_dir, ec);
        if (ec || !std::filesystem::is_directory(o.out_dir)) {
            std::fprintf(stderr, "rtcat: --out %s: %s\n", o.out_dir.c_str(),
                         ec ? ec.message().c_str() : "not a directory");
            return kExitUsage;
        }
        transfer::ReceiverOptions ro;
        ro.out_dir = o.out_dir;
        ro.force = o.force;
        ro.resume = o.resume;
        TransferApp app(nullptr, std::make_unique<transfer::Receiver>(ro));
        auto r = run_session(o.peer, offerer, app);
        app.report(r, o.peer.json, stdio.stdout_signaling);
        return r.exit_code;
    }
    NetcatApp app(!stdio.stdin_signaling, !stdio.stdout_signaling);
    auto r = run_session(o.peer, offerer, app);
    if (!app.error().empty()) {
        std::fprintf(stderr, "rtcat: %s\n", app.error().c_str());
    }
    if (o.peer.json) {
        json j{{"ok", r.exit_code == kExitOk},
               {"exit_code", r.exit_code},
               {"connect_ms", r.connect_ms},
               {"connect_timeline_ms", timeline_json(r.timeline)}};
        if (r.pair) {
            j["pair"] = describe_pair(*r.pair);
        }
        std::fprintf(stderr, "%s\n", j.dump().c_str());
    }
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
    "0\n    Success: the connection was made and every file verified.\n"
    "2\n    Usage error, or an unusable session description from the "
    "peer.\n"
    "3\n    Connectivity: ICE found no working path, or consent was "
    "lost.\n"
    "4\n    Timeout: --timeout expired before the connection was up.\n"
    "5\n    Security: the peer's DTLS certificate does not match the "
    "fingerprint in its description.\n"
    "7\n    Transfer: a file was refused, failed verification, or the "
    "peer went away before the end.\n"
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
                     "verified by SHA-256 and only then renamed to NAME. Paths are kept relative "
                     "to DIR; absolute paths and '..' are refused.\n\n"
                     "Without --out, once connected, the session is netcat over a data channel: "
                     "standard input goes to the peer and what the peer sends comes out on "
                     "standard output. That needs signaling off stdio (--sdp-in/--sdp-out)."},
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
             "Directories are sent recursively with their relative paths. A summary (files, "
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
             "role, ok, exit_code, error\n    sender or receiver; how it ended.\n"
             "files\n    One object per file: name, size, sha256, ok, resumed_from (bytes "
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
