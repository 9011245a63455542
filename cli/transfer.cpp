#include "cli/transfer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/base/log.hpp"
#include "core/base/printable.hpp"

namespace rtcat::cli::transfer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string errno_text() {
    return std::strerror(errno);
}

// Peer strings may be any bytes: never let dump() throw on invalid UTF-8.
std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool write_all(int fd, std::span<const uint8_t> data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data = data.subspan(static_cast<size_t>(n));
    }
    return true;
}

// Hashes the first `len` bytes of fd from offset 0 into h; false if the file is shorter.
bool hash_prefix(int fd, uint64_t len, base::Sha256& h) {
    std::vector<uint8_t> buf(1 << 20);
    uint64_t done = 0;
    while (done < len) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), len - done));
        ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        h.update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
        done += static_cast<uint64_t>(n);
    }
    return true;
}

std::span<const uint8_t> as_bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::optional<json> parse_control(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string()) {
        return std::nullopt;
    }
    return j;
}

template <typename T> std::optional<T> get_number(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) {
        if (it != j.end() && it->is_number_integer() && it->template get<int64_t>() >= 0) {
            return static_cast<T>(it->template get<int64_t>());
        }
        return std::nullopt;
    }
    return it->template get<T>();
}

std::string get_string(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) {
        return {};
    }
    return it->get<std::string>();
}

// NAME_MAX (255) minus ".part".
constexpr size_t kMaxSegment = 250;

} // namespace

std::string_view mode_name(Mode m) {
    switch (m) {
    case Mode::Detecting:
        return "detecting";
    case Mode::Protocol:
        return kProtocol;
    case Mode::Plain:
        return "plain";
    }
    return "?";
}

base::Result<fs::path> safe_relative_path(std::string_view name) {
    if (name.empty()) {
        return base::make_error("empty file name");
    }
    if (name.size() > 4096) {
        return base::make_error("file name longer than 4096 bytes");
    }
    // Names are shown on terminals and written to disk: control characters (which could drive
    // the terminal or hide parts of the name) and bytes that are not UTF-8 are refused.
    if (!base::is_clean_utf8(name)) {
        return base::make_error("file name with control characters or invalid UTF-8 refused: {}",
                                base::printable(name));
    }
    if (name.find('\\') != std::string_view::npos) {
        return base::make_error("file name contains a backslash: {}", name);
    }
    if (name.front() == '/') {
        return base::make_error("absolute path refused: {}", name);
    }
    fs::path out;
    size_t pos = 0;
    while (pos <= name.size()) {
        size_t slash = name.find('/', pos);
        if (slash == std::string_view::npos) {
            slash = name.size();
        }
        std::string_view seg = name.substr(pos, slash - pos);
        if (seg.empty() || seg == "." || seg == "..") {
            return base::make_error("unsafe path refused (empty, '.' or '..' segment): {}", name);
        }
        if (seg.size() > kMaxSegment) {
            return base::make_error("a path segment is longer than {} bytes: {}", kMaxSegment,
                                    name);
        }
        out /= std::string(seg);
        pos = slash + 1;
    }
    // A name ending in .part would collide with another file's temporary name.
    if (out.filename().string().ends_with(".part")) {
        return base::make_error("names ending in .part are reserved: {}", name);
    }
    return out;
}

namespace {

// Depth-first walk of a directory argument; `rel` is the name the directory is sent under.
struct Walker {
    const CollectOptions& options;
    Collected& out;
    std::set<std::pair<dev_t, ino_t>> entered; // directories, against symlink loops

    void walk(const fs::path& dir, const std::string& rel) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0 && !entered.insert({st.st_dev, st.st_ino}).second) {
            out.warnings.push_back(
                fmt::format("{}: a symbolic link loop, skipped", base::printable(dir.string())));
            return;
        }
        std::error_code ec;
        std::vector<fs::directory_entry> entries;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            entries.push_back(*it);
        }
        if (ec) {
            out.warnings.push_back(
                fmt::format("{}: {}, skipped", base::printable(dir.string()), ec.message()));
            return;
        }
        for (const auto& e : entries) {
            const fs::path p = e.path();
            const std::string name = rel + "/" + p.filename().string();
            auto lst = e.symlink_status(ec);
            if (ec) {
                continue;
            }
            fs::file_status st2 = lst;
            if (fs::is_symlink(lst)) {
                if (!options.follow_symlinks) {
                    out.warnings.push_back(
                        fmt::format("{}: a symbolic link, skipped (--follow-symlinks sends "
                                    "what it points to)",
                                    base::printable(p.string())));
                    continue;
                }
                st2 = fs::status(p, ec);
                if (ec) {
                    out.warnings.push_back(fmt::format("{}: a dangling symbolic link, skipped",
                                                       base::printable(p.string())));
                    continue;
                }
            }
            if (fs::is_directory(st2)) {
                walk(p, name);
            } else if (fs::is_regular_file(st2)) {
                out.sources.push_back(Source{p, name});
            } else {
                out.warnings.push_back(
                    fmt::format("{}: not a regular file (fifo, device or socket), skipped",
                                base::printable(p.string())));
            }
        }
    }
};

} // namespace

base::Result<Collected> collect_sources(const std::vector<std::string>& args,
                                        const CollectOptions& options) {
    Collected out;
    bool stdin_used = false;
    for (const auto& a : args) {
        if (a == "-") {
            if (stdin_used) {
                return base::make_error("- (standard input) given twice");
            }
            stdin_used = true;
            auto safe = safe_relative_path(options.stdin_name);
            if (!safe) {
                return base::make_error("--name: {}", safe.error().message);
            }
            out.sources.push_back(Source{{}, options.stdin_name});
            continue;
        }
        std::error_code ec;
        fs::path p(a);
        auto st = fs::status(p, ec);
        if (ec || !fs::exists(st)) {
            return base::make_error("{}: no such file or directory", a);
        }
        // Names are relative to the argument's parent: "dir/" → "dir/...", "/x/y.txt" → "y.txt".
        fs::path norm = p.lexically_normal();
        if (norm.has_filename() == false) {
            norm = norm.parent_path();
        }
        const std::string base_name = norm.filename().string();
        if (base_name.empty() || base_name == "." || base_name == "..") {
            return base::make_error("{}: name the directory itself (not . or ..)", a);
        }
        if (fs::is_regular_file(st)) {
            out.sources.push_back(Source{p, base_name});
        } else if (fs::is_directory(st)) {
            Collected sub;
            Walker w{options, sub, {}};
            w.walk(p, base_name);
            std::sort(sub.sources.begin(), sub.sources.end(),
                      [](const Source& x, const Source& y) { return x.name < y.name; });
            for (auto& s : sub.sources) {
                out.sources.push_back(std::move(s));
            }
            for (auto& w2 : sub.warnings) {
                out.warnings.push_back(std::move(w2));
            }
        } else {
            return base::make_error("{}: not a regular file or directory", a);
        }
    }
    std::set<std::string> names;
    for (const auto& s : out.sources) {
        if (!names.insert(s.name).second) {
            return base::make_error("two files would be sent as {}", base::printable(s.name));
        }
    }
    if (out.sources.empty()) {
        return base::make_error("nothing to send");
    }
    return out;
}

// --------------------------------------------------------------------------------------------
// Sender

struct Sender::Current {
    uint64_t id = 0;
    Source source;
    int fd = -1;
    bool owns_fd = false;
    std::optional<uint64_t> size;
    enum class State {
        WaitAccept, // announced, waiting for accept/reject (rtcat-file/1)
        WaitOpen,   // channel opened, waiting for the peer's DATA_CHANNEL_ACK
        Sending,
        Draining, // plain: every byte read, waiting until all are handed to SCTP
        Closing,  // plain: channel reset sent, waiting for the peer's
    } state = State::WaitAccept;
    bool plain = false;
    std::optional<uint16_t> channel;
    uint64_t offset = 0;
    uint64_t position = 0; // bytes of the file handed to the channel, from 0
    base::Sha256 hash;
    std::string sha256;    // when every byte is read
    bool readable = false; // stdin: poll said so
    ~Current() {
        if (owns_fd && fd >= 0) {
            ::close(fd);
        }
    }
};

Sender::Sender(std::vector<Source> sources, SenderOptions options)
    : sources_(std::move(sources)), options_(options) {
    for (const auto& s : sources_) {
        if (!s.path.empty()) {
            std::error_code ec;
            bytes_total_ += fs::file_size(s.path, ec);
        }
    }
}

Sender::~Sender() = default;

void Sender::set_error(std::string e) {
    if (error_.empty()) {
        error_ = std::move(e);
    }
}

bool Sender::failed() const {
    if (!error_.empty()) {
        return true;
    }
    return std::any_of(results_.begin(), results_.end(), [](const auto& r) { return !r.ok; });
}

void Sender::send_control(peer::Peer& peer, const std::string& text, base::Instant now) {
    if (!control_ || mode_ == Mode::Plain) {
        return;
    }
    auto r = peer.send(*control_, as_bytes(text), false, now);
    if (!r) {
        set_error("control channel: " + r.error().message);
    }
}

void Sender::on_ready(peer::Peer& peer, base::Instant now) {
    chunk_ = std::min<size_t>(kChunkSize, peer.remote_max_message_size());
    buf_.resize(chunk_);
    if (options_.plain) {
        mode_ = Mode::Plain;
        announce_next(peer, now);
        return;
    }
    dcep::ChannelOptions o;
    o.label = std::string(kControlLabel);
    o.protocol = std::string(kProtocol);
    auto id = peer.open_channel(o, now);
    if (!id) {
        set_error("cannot open the control channel: " + id.error().message);
        finished_ = true;
        return;
    }
    control_ = *id;
}

void Sender::announce_next(peer::Peer& peer, base::Instant now) {
    while (!cur_ && !finished_) {
        if (next_ >= sources_.size()) {
            if (mode_ != Mode::Plain && !done_sent_) {
                done_sent_ = true;
                send_control(peer, dump(json{{"type", "done"}}), now);
            }
            maybe_finish();
            return;
        }
        auto c = std::make_unique<Current>();
        c->id = next_ + 1;
        c->source = sources_[next_++];
        if (c->source.path.empty()) {
            c->fd = STDIN_FILENO;
        } else {
            c->fd = ::open(c->source.path.c_str(), O_RDONLY | O_CLOEXEC);
            if (c->fd < 0) {
                FileResult fr;
                fr.name = c->source.name;
                fr.error = fmt::format("cannot open {}: {}", c->source.path.string(), errno_text());
                results_.push_back(fr);
                set_error(fr.error);
                continue;
            }
            c->owns_fd = true;
            struct stat st {};
            if (::fstat(c->fd, &st) == 0 && S_ISREG(st.st_mode)) {
                c->size = static_cast<uint64_t>(st.st_size);
            }
        }
        cur_ = std::move(c);
        if (mode_ == Mode::Plain) {
            open_plain(peer, now);
        } else {
            json msg{{"type", "file"}, {"id", cur_->id}, {"name", cur_->source.name}};
            msg["size"] = cur_->size ? json(*cur_->size) : json(nullptr);
            send_control(peer, dump(msg), now);
        }
    }
}

void Sender::open_plain(peer::Peer& peer, base::Instant now) {
    auto& c = *cur_;
    c.plain = true;
    c.offset = 0;
    c.position = 0;
    dcep::ChannelOptions o;
    o.label = c.source.name;
    auto ch = peer.open_channel(o, now);
    if (!ch) {
        fail_current(peer, "cannot open its channel: " + ch.error().message, now);
        return;
    }
    c.channel = *ch;
    c.state = Current::State::WaitOpen;
    peer.set_buffered_amount_low_threshold(*ch, kLowWater);
}

void Sender::go_plain(peer::Peer& peer, base::Instant now, const std::string& why) {
    fallback_at_ = base::kNever;
    if (options_.verify) {
        fail_outstanding(fmt::format("the receiver does not speak {} ({}), so it cannot verify "
                                     "the files (--verify)",
                                     kProtocol, why));
        finished_ = true;
        return;
    }
    RTCAT_WARN("transfer",
               "{}: sending in plain mode (one channel per file, labelled with its name); the "
               "receiver cannot verify the files",
               why);
    mode_ = Mode::Plain;
    if (control_) {
        peer.close_channel(*control_, now);
    }
    if (cur_ && cur_->state == Current::State::WaitAccept) {
        open_plain(peer, now);
    }
    announce_next(peer, now);
}

void Sender::on_event(peer::Peer& peer, peer::Event& event, base::Instant now) {
    if (auto* open = std::get_if<dcep::event::ChannelOpen>(&event)) {
        if (open->remote) {
            return; // the receiver has no business opening channels: ignored
        }
        if (control_ && open->channel.id == *control_ && mode_ == Mode::Detecting) {
            control_open_ = true;
            fallback_at_ = now + options_.plain_after;
            json hello{{"type", "hello"}, {"version", 1}, {"files", sources_.size()}};
            hello["bytes"] = bytes_total_ ? json(bytes_total_) : json(nullptr);
            send_control(peer, dump(hello), now);
            announce_next(peer, now);
        } else if (cur_ && cur_->state == Current::State::WaitOpen && cur_->channel &&
                   open->channel.id == *cur_->channel) {
            cur_->state = Current::State::Sending;
        }
    } else if (auto* m = std::get_if<dcep::event::Message>(&event)) {
        if (control_ && m->id == *control_ && !m->binary && mode_ != Mode::Plain) {
            on_control(peer, std::string(m->data.begin(), m->data.end()), now);
        }
    } else if (auto* c = std::get_if<dcep::event::ChannelClosed>(&event)) {
        if (!c->delivered) {
            // The association went down under every channel: on_peer_gone() follows and says
            // what that means for each file.
            return;
        }
        if (control_ && c->id == *control_) {
            control_.reset();
            if (mode_ == Mode::Detecting) {
                go_plain(peer, now, "the receiver closed the control channel without a word");
            } else if (mode_ == Mode::Protocol && !finished_) {
                fail_outstanding("the receiver closed the control channel");
                finished_ = true;
            }
            return;
        }
        if (cur_ && cur_->channel && c->id == *cur_->channel) {
            if (cur_->state == Current::State::Closing) {
                FileResult fr;
                fr.name = cur_->source.name;
                fr.size = cur_->position;
                fr.sha256 = cur_->sha256;
                fr.ok = true; // both directions reset after our last byte was acknowledged
                results_.push_back(fr);
                cur_.reset();
                announce_next(peer, now);
            } else {
                cur_->channel.reset();
                fail_current(peer, "the receiver closed the file's channel before the end", now);
            }
        }
    }
}

void Sender::maybe_finish() {
    if (cur_ || next_ < sources_.size()) {
        return;
    }
    // Every file is acknowledged (or refused): the receiver's `bye` is a courtesy, not needed.
    // Plain mode: every channel was closed by both sides.
    if (mode_ == Mode::Plain || (done_sent_ && result_by_id_.empty())) {
        finished_ = true;
    }
}

void Sender::fail_current(peer::Peer& peer, const std::string& why, base::Instant now) {
    auto& c = *cur_;
    FileResult fr;
    fr.name = c.source.name;
    fr.size = c.position;
    fr.offset = c.offset;
    fr.error = why;
    results_.push_back(fr);
    set_error(fmt::format("{}: {}", c.source.name, why));
    if (c.channel) {
        peer.close_channel(*c.channel, now);
    }
    cur_.reset();
    announce_next(peer, now);
}

void Sender::fail_outstanding(const std::string& why) {
    set_error(why);
    if (cur_) {
        FileResult fr;
        fr.name = cur_->source.name;
        fr.size = cur_->position;
        fr.offset = cur_->offset;
        fr.error = why;
        results_.push_back(fr);
        cur_.reset();
    }
    for (auto& [id, index] : result_by_id_) {
        auto& r = results_[index];
        r.ok = false;
        if (r.error.empty()) {
            r.error = "not acknowledged: " + why;
        }
    }
    result_by_id_.clear();
    for (; next_ < sources_.size(); ++next_) {
        FileResult fr;
        fr.name = sources_[next_].name;
        fr.error = "not sent: " + why;
        results_.push_back(fr);
    }
}

void Sender::on_peer_gone(const std::string& why) {
    if (finished_) {
        return;
    }
    // A plain file whose close never completed (Closing) was sent whole but is not known to
    // be delivered: it fails like the rest.
    fail_outstanding("the receiver went away before the end: " + why);
    finished_ = true;
}

void Sender::abort(const std::string& why) {
    if (!finished_) {
        fail_outstanding(why);
    }
}

void Sender::on_control(peer::Peer& peer, const std::string& text, base::Instant now) {
    auto j = parse_control(text);
    if (!j) {
        RTCAT_WARN("transfer", "ignoring a malformed control message from the receiver");
        return;
    }
    if (mode_ == Mode::Detecting) {
        mode_ = Mode::Protocol; // any well-formed message: the receiver speaks rtcat-file/1
        fallback_at_ = base::kNever;
    }
    const std::string type = (*j)["type"];
    const auto id = get_number<uint64_t>(*j, "id");
    if (type == "accept" || type == "reject") {
        if (!cur_ || !id || *id != cur_->id || cur_->state != Current::State::WaitAccept) {
            RTCAT_WARN("transfer", "receiver answered a file we did not ask about");
            return;
        }
        if (type == "reject") {
            const std::string reason = "refused by the receiver: " + get_string(*j, "reason");
            RTCAT_WARN("transfer", "{}: {}", cur_->source.name, reason);
            fail_current(peer, reason, now);
            return;
        }
        start_file(peer, get_number<uint64_t>(*j, "offset").value_or(0),
                   get_string(*j, "prefix_sha256"), now);
    } else if (type == "ack") {
        if (!id) {
            return;
        }
        const bool ok = j->value("ok", false);
        if (cur_ && *id == cur_->id && cur_->state != Current::State::WaitAccept) {
            // Mid-file: the receiver gave up on it (a full disk, say). Stop sending at once.
            fail_current(peer,
                         ok ? "the receiver acknowledged the file before it was sent whole"
                            : "receiver: " + get_string(*j, "error"),
                         now);
            return;
        }
        auto it = result_by_id_.find(*id);
        if (it == result_by_id_.end()) {
            return;
        }
        auto& r = results_[it->second];
        result_by_id_.erase(it);
        if (auto ch = channel_by_id_.find(*id); ch != channel_by_id_.end()) {
            peer.close_channel(ch->second, now);
            channel_by_id_.erase(ch);
        }
        if (r.error.empty()) {
            r.ok = ok && get_string(*j, "sha256") == r.sha256;
            r.verified = r.ok;
            if (!r.ok) {
                r.error = ok ? "receiver reported a different SHA-256"
                             : "receiver: " + get_string(*j, "error");
                set_error(r.name + ": " + r.error);
            }
        }
        maybe_finish();
    } else if (type == "bye") {
        if (cur_ || !result_by_id_.empty() || next_ < sources_.size()) {
            fail_outstanding("the receiver ended the session (bye) before acknowledging every "
                             "file");
        }
        finished_ = true;
    }
}

void Sender::start_file(peer::Peer& peer, uint64_t offset, const std::string& prefix_hash,
                        base::Instant now) {
    auto& c = *cur_;
    if (offset > 0) {
        // Resume only what we can prove is ours: the receiver's prefix must hash like ours.
        base::Sha256 h;
        bool same = !c.source.path.empty() && c.size && offset <= *c.size &&
                    hash_prefix(c.fd, offset, h) && base::Sha256::hex(h.peek()) == prefix_hash;
        if (same) {
            c.hash = std::move(h);
            RTCAT_INFO("transfer", "{}: resuming at byte {}", c.source.name, offset);
        } else {
            RTCAT_WARN("transfer",
                       "{}: the receiver's partial file differs from ours; sending it whole",
                       c.source.name);
            offset = 0;
        }
    }
    if (offset > 0 && ::lseek(c.fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
        offset = 0;
        c.hash = base::Sha256();
    }
    c.offset = offset;
    c.position = offset;
    send_control(peer, dump(json{{"type", "start"}, {"id", c.id}, {"offset", offset}}), now);
    dcep::ChannelOptions o;
    o.label = c.source.name;
    o.protocol = std::string(kProtocol);
    auto ch = peer.open_channel(o, now);
    if (!ch) {
        fail_current(peer, "cannot open its channel: " + ch.error().message, now);
        return;
    }
    c.channel = *ch;
    c.state = Current::State::WaitOpen;
    peer.set_buffered_amount_low_threshold(c.channel.value(), kLowWater);
}

int Sender::wants_readable_fd() const {
    if (cur_ && cur_->source.path.empty() && cur_->state == Current::State::Sending &&
        !cur_->readable) {
        return cur_->fd;
    }
    return -1;
}

void Sender::on_fd_readable() {
    if (cur_) {
        cur_->readable = true;
    }
}

base::Instant Sender::poll_timeout() const {
    return mode_ == Mode::Detecting && !finished_ ? fallback_at_ : base::kNever;
}

void Sender::finish_file(peer::Peer& peer, base::Instant now) {
    auto& c = *cur_;
    c.sha256 = base::Sha256::hex(c.hash.finish());
    if (c.size && *c.size != c.position) {
        fail_current(peer,
                     fmt::format("{} changed while being sent ({} bytes, now {})",
                                 c.source.path.string(), *c.size, c.position),
                     now);
        return;
    }
    if (c.plain) {
        // Delivered means acknowledged by the receiver's SCTP and the channel closed by both
        // sides: the close (stream reset) goes out once the queue is empty (pump()).
        c.state = Current::State::Draining;
        return;
    }
    FileResult fr;
    fr.name = c.source.name;
    fr.size = c.position;
    fr.offset = c.offset;
    fr.sha256 = c.sha256;
    send_control(
        peer,
        dump(json{{"type", "end"}, {"id", c.id}, {"size", c.position}, {"sha256", fr.sha256}}),
        now);
    // The channel stays open until the receiver's ack: Chromium drops the last messages of a
    // channel whose stream reset follows them within a few milliseconds.
    channel_by_id_[c.id] = c.channel.value();
    result_by_id_[c.id] = results_.size();
    results_.push_back(fr);
    cur_.reset();
    announce_next(peer, now);
}

void Sender::pump(peer::Peer& peer, base::Instant now) {
    if (finished_) {
        return;
    }
    if (mode_ == Mode::Detecting && now >= fallback_at_) {
        go_plain(
            peer, now,
            fmt::format(
                "no reply on the control channel in {} s",
                std::chrono::duration_cast<std::chrono::seconds>(options_.plain_after).count()));
    }
    // Several small files can finish in one turn; the loop ends when a channel is full, a
    // file awaits its accept/open, or stdin has nothing ready.
    for (int files = 0; files < 64 && cur_ && !finished_; ++files) {
        auto& c = *cur_;
        if (c.state == Current::State::Draining) {
            if (peer.buffered_amount(c.channel.value()) > 0) {
                return;
            }
            c.state = Current::State::Closing;
            peer.close_channel(c.channel.value(), now);
            return;
        }
        if (c.state != Current::State::Sending) {
            return;
        }
        const bool is_stdin = c.source.path.empty();
        while (peer.buffered_amount(c.channel.value()) < kHighWater) {
            if (is_stdin && !c.readable) {
                return;
            }
            ssize_t n = ::read(c.fd, buf_.data(), buf_.size());
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                fail_current(peer,
                             fmt::format("reading {}: {}",
                                         is_stdin ? "standard input" : c.source.path.string(),
                                         errno_text()),
                             now);
                break;
            }
            if (is_stdin) {
                c.readable = false; // one read per readiness: never block the loop on a pipe
            }
            if (n == 0) {
                finish_file(peer, now);
                break;
            }
            std::span<const uint8_t> data(buf_.data(), static_cast<size_t>(n));
            c.hash.update(data);
            auto r = peer.send(c.channel.value(), data, true, now);
            if (!r) {
                fail_current(peer, r.error().message, now);
                break;
            }
            c.position += static_cast<uint64_t>(n);
            bytes_done_ += static_cast<uint64_t>(n);
        }
        if (cur_ && &*cur_ == &c && c.state == Current::State::Sending) {
            return; // still the same file: its channel is full
        }
    }
}

Progress Sender::progress() const {
    Progress p;
    p.bytes_done = bytes_done_;
    p.bytes_total = bytes_total_;
    if (cur_) {
        p.current = cur_->source.name;
    }
    return p;
}

// --------------------------------------------------------------------------------------------
// Receiver

struct Receiver::Incoming {
    uint64_t key = 0;
    std::optional<uint64_t> id; // announced on the control channel
    bool plain = false;         // the channel's bytes are the whole file; its close ends it
    std::string name;
    OutTarget target;
    io::UniqueFd fd;
    std::optional<uint64_t> announced;
    uint64_t offered_offset = 0;
    std::optional<base::Sha256> prefix_hash; // of the first offered_offset bytes
    bool started = false;
    uint64_t received = 0; // bytes in .part (prefix included)
    std::optional<uint64_t> end_size;
    std::string end_sha;
    base::Sha256 hash;
    std::optional<uint16_t> channel;
    std::deque<base::Bytes> early; // channel bytes before `start`
    size_t early_bytes = 0;
};

base::Result<std::unique_ptr<Receiver>> Receiver::create(ReceiverOptions options) {
    auto dir = OutDir::open(options.out_dir);
    if (!dir) {
        return dir.error();
    }
    return std::unique_ptr<Receiver>(new Receiver(std::move(options), std::move(*dir)));
}

Receiver::Receiver(ReceiverOptions options, OutDir dir)
    : options_(std::move(options)), dir_(std::move(dir)) {}
Receiver::~Receiver() = default;

void Receiver::set_error(std::string e) {
    if (error_.empty()) {
        error_ = std::move(e);
    }
}

void Receiver::abort(const std::string& why) {
    settle_all(why);
}

void Receiver::settle_all(const std::string& why) {
    std::vector<uint64_t> keys;
    for (auto& [key, f] : files_) {
        keys.push_back(key);
    }
    for (auto key : keys) {
        auto& f = *files_.at(key);
        FileResult fr;
        fr.name = f.name;
        fr.size = f.received;
        fr.offset = f.offered_offset;
        fr.error = why;
        fr.part = f.target.shown_part();
        set_error(fmt::format("{}: {}", f.name, why));
        settle(f, fr);
    }
}

Receiver::Incoming* Receiver::find_channel(uint16_t channel) {
    auto it = key_by_channel_.find(channel);
    if (it == key_by_channel_.end()) {
        return nullptr;
    }
    auto f = files_.find(it->second);
    return f == files_.end() ? nullptr : f->second.get();
}

Receiver::Incoming* Receiver::find_id(std::optional<uint64_t> id) {
    if (!id) {
        return nullptr;
    }
    auto it = key_by_id_.find(*id);
    if (it == key_by_id_.end()) {
        return nullptr;
    }
    auto f = files_.find(it->second);
    return f == files_.end() ? nullptr : f->second.get();
}

void Receiver::send_control(peer::Peer& peer, const std::string& text, base::Instant now) {
    if (!control_ || gone_) {
        return;
    }
    // A sender that gave up on rtcat-file/1 closes the control channel, maybe before we saw
    // its messages: what we say then has nobody to hear it, and the files still arrive (plain).
    if (auto r = peer.send(*control_, as_bytes(text), false, now); !r) {
        RTCAT_DEBUG("transfer", "control message not sent: {}", r.error().message);
    }
}

void Receiver::refuse(const std::string& name, const std::string& reason) {
    RTCAT_WARN("transfer", "refusing {}: {}", name, reason);
    FileResult fr;
    fr.name = name;
    fr.error = reason;
    results_.push_back(fr);
    set_error(fmt::format("{}: {}", name, reason));
    if (++refused_ == kMaxRefused) {
        set_error(
            fmt::format("the sender kept sending files we refuse ({}): giving up", kMaxRefused));
        finished_ = true;
    }
}

base::Result<std::unique_ptr<Receiver::Incoming>> Receiver::prepare(const std::string& name) {
    auto rel = safe_relative_path(name);
    if (!rel) {
        return rel.error();
    }
    if (names_seen_.count(name)) {
        return base::make_error("sent twice in this session");
    }
    if (files_.size() >= kMaxFilesInFlight) {
        return base::make_error("more than {} files in flight at once", kMaxFilesInFlight);
    }
    auto target = dir_.place(*rel);
    if (!target) {
        return target.error();
    }
    switch (target->existing()) {
    case OutTarget::Existing::Nothing:
        break;
    case OutTarget::Existing::Directory:
        return base::make_error("{} is a directory", base::printable(target->shown()));
    case OutTarget::Existing::RegularFile:
    case OutTarget::Existing::Other:
        if (!options_.force) {
            return base::make_error("{} exists (use --force to overwrite)",
                                    base::printable(target->shown()));
        }
        break;
    }
    auto f = std::make_unique<Incoming>();
    f->key = next_key_++;
    f->name = name;
    f->target = std::move(*target);
    return f;
}

void Receiver::on_event(peer::Peer& peer, peer::Event& event, base::Instant now) {
    if (finished_) {
        return;
    }
    if (auto* open = std::get_if<dcep::event::ChannelOpen>(&event)) {
        if (open->remote) {
            on_channel_open(peer, open->channel, now);
        }
    } else if (auto* m = std::get_if<dcep::event::Message>(&event)) {
        if (control_ && m->id == *control_) {
            if (!m->binary) {
                on_control(peer, std::string(m->data.begin(), m->data.end()), now);
            }
            return;
        }
        Incoming* f = find_channel(m->id);
        if (f == nullptr) {
            return; // a refused or settled file's channel
        }
        if (!f->started) {
            // The file channel overtook the `start` message (independent streams).
            if (early_total_ + m->data.size() > kMaxEarlyBytes) {
                fail_file(peer, *f,
                          fmt::format("over {} bytes arrived before the file's start message",
                                      kMaxEarlyBytes),
                          now);
                return;
            }
            early_total_ += m->data.size();
            f->early_bytes += m->data.size();
            f->early.push_back(std::move(m->data));
            return;
        }
        on_file_bytes(peer, *f, m->data, now);
    } else if (auto* c = std::get_if<dcep::event::ChannelClosed>(&event)) {
        on_channel_closed(peer, c->id, c->peer_done, now);
    }
}

void Receiver::on_channel_open(peer::Peer& peer, const dcep::ChannelInfo& ch, base::Instant now) {
    const std::string& label = ch.options.label;
    if (label == kControlLabel) {
        if (control_ || control_closed_) {
            RTCAT_WARN("transfer", "a second control channel: ignored");
            ignored_channels_.insert(ch.id);
            return;
        }
        control_ = ch.id;
        mode_ = Mode::Protocol;
        // Our first word: it tells the sender at once that we speak rtcat-file/1.
        send_control(peer, dump(json{{"type", "hello"}, {"version", 1}}), now);
        return;
    }
    if (auto it = key_by_name_.find(label); it != key_by_name_.end()) {
        const uint64_t key = it->second;
        key_by_name_.erase(it);
        auto& f = *files_.at(key);
        f.channel = ch.id;
        key_by_channel_[ch.id] = key;
        return;
    }
    // A channel nobody announced: a plain sender's file, named by its label.
    auto f = prepare(label);
    if (!f) {
        refuse(label, f.error().message);
        ignored_channels_.insert(ch.id);
        peer.close_channel(ch.id, now);
        return;
    }
    auto part = (*f)->target.open_part(true);
    if (!part) {
        refuse(label, part.error().message);
        ignored_channels_.insert(ch.id);
        peer.close_channel(ch.id, now);
        return;
    }
    auto& nf = **f;
    nf.fd = std::move(*part);
    nf.plain = true;
    nf.started = true;
    nf.channel = ch.id;
    names_seen_.insert(label);
    key_by_channel_[ch.id] = nf.key;
    RTCAT_INFO("transfer", "{}: a channel nobody announced: saved as a file (plain mode)", label);
    files_[nf.key] = std::move(*f);
}

void Receiver::on_channel_closed(peer::Peer& peer, uint16_t channel, bool peer_done,
                                 base::Instant now) {
    if (control_ && channel == *control_) {
        if (!peer_done) {
            return; // the association went down: on_peer_gone() follows
        }
        control_.reset();
        control_closed_ = true;
        if (done_seen_) {
            return;
        }
        // The sender gave up on rtcat-file/1 (it heard nothing from us in time) and sends what
        // it announced in plain mode: the bytes on each channel are the whole file.
        mode_ = Mode::Plain;
        std::vector<uint64_t> keys;
        for (auto& [key, f] : files_) {
            if (!f->started) {
                keys.push_back(key);
            }
        }
        for (auto key : keys) {
            start_plain(peer, *files_.at(key), now);
        }
        return;
    }
    if (ignored_channels_.erase(channel) > 0) {
        return;
    }
    Incoming* f = find_channel(channel);
    if (f == nullptr) {
        return;
    }
    key_by_channel_.erase(channel);
    f->channel.reset();
    if (!f->plain) {
        // rtcat-file/1: the file ends with `end` and its bytes; the sender closes the channel
        // after our ack. A close before that is the sender giving up or going away: `end` may
        // still be on its way, and a sender that went away is handled by on_peer_gone().
        return;
    }
    if (!peer_done) {
        fail_file(peer, *f, "the connection ended before the sender closed the file's channel",
                  now);
        return;
    }
    // The sender reset its stream after the last byte: the file is whole, whether or not our
    // reset back was answered before it hung up.
    complete(peer, *f, false, now);
}

void Receiver::start_plain(peer::Peer& peer, Incoming& f, base::Instant now) {
    f.plain = true;
    f.offered_offset = 0;
    if (::ftruncate(f.fd.get(), 0) != 0 || ::lseek(f.fd.get(), 0, SEEK_SET) < 0) {
        fail_file(peer, f, fmt::format("{}: {}", f.target.shown_part(), errno_text()), now);
        return;
    }
    f.hash = base::Sha256();
    f.received = 0;
    f.started = true;
    flush_early(peer, f, now);
}

void Receiver::flush_early(peer::Peer& peer, Incoming& f, base::Instant now) {
    const uint64_t key = f.key;
    auto queued = std::move(f.early);
    f.early.clear();
    early_total_ -= f.early_bytes;
    f.early_bytes = 0;
    for (auto& b : queued) {
        if (!files_.count(key)) {
            return; // settled (failed) meanwhile
        }
        on_file_bytes(peer, f, b, now);
    }
}

void Receiver::on_announce(peer::Peer& peer, const std::string& name, std::optional<uint64_t> id,
                           std::optional<uint64_t> size, base::Instant now) {
    auto reject = [&](const std::string& reason) {
        refuse(name, reason);
        send_control(
            peer, dump(json{{"type", "reject"}, {"id", id.value_or(0)}, {"reason", reason}}), now);
    };
    if (!id || key_by_id_.count(*id)) {
        reject("missing or duplicate id");
        return;
    }
    auto f = prepare(name);
    if (!f) {
        reject(f.error().message);
        return;
    }
    auto part = (*f)->target.open_part(false);
    if (!part) {
        reject(part.error().message);
        return;
    }
    auto& nf = **f;
    nf.fd = std::move(*part);
    nf.id = *id;
    nf.announced = size;
    json accept{{"type", "accept"}, {"id", *id}, {"offset", 0}};
    if (options_.resume) {
        struct stat st {};
        if (::fstat(nf.fd.get(), &st) == 0 && st.st_size > 0) {
            uint64_t have = static_cast<uint64_t>(st.st_size);
            if (!size || have <= *size) {
                base::Sha256 h;
                if (hash_prefix(nf.fd.get(), have, h)) {
                    nf.offered_offset = have;
                    accept["offset"] = have;
                    accept["prefix_sha256"] = base::Sha256::hex(h.peek());
                    nf.prefix_hash = std::move(h);
                }
            }
        }
    }
    names_seen_.insert(name);
    key_by_id_[*id] = nf.key;
    key_by_name_[name] = nf.key;
    files_[nf.key] = std::move(*f);
    send_control(peer, dump(accept), now);
}

void Receiver::on_control(peer::Peer& peer, const std::string& text, base::Instant now) {
    auto j = parse_control(text);
    if (!j) {
        RTCAT_WARN("transfer", "ignoring a malformed control message from the sender");
        return;
    }
    const std::string type = (*j)["type"];
    const auto id = get_number<uint64_t>(*j, "id");
    if (type == "hello") {
        bytes_total_ = get_number<uint64_t>(*j, "bytes").value_or(0);
        return;
    }
    if (type == "file") {
        on_announce(peer, get_string(*j, "name"), id, get_number<uint64_t>(*j, "size"), now);
        return;
    }
    if (type == "start") {
        Incoming* f = find_id(id);
        if (f == nullptr || f->started || f->plain) {
            return;
        }
        const uint64_t offset = get_number<uint64_t>(*j, "offset").value_or(0);
        if (offset == f->offered_offset && offset > 0 && f->prefix_hash) {
            f->hash = std::move(*f->prefix_hash);
        } else {
            f->hash = base::Sha256();
            if (offset != 0) {
                // We only ever offered offered_offset; anything else is a confused sender.
                fail_file(peer, *f, "the sender started at an offset we did not offer", now);
                return;
            }
        }
        if (::ftruncate(f->fd.get(), static_cast<off_t>(offset)) != 0 ||
            ::lseek(f->fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) {
            fail_file(peer, *f, fmt::format("{}: {}", f->target.shown_part(), errno_text()), now);
            return;
        }
        f->received = offset;
        f->started = true;
        const uint64_t key = f->key;
        flush_early(peer, *f, now);
        if (files_.count(key)) {
            maybe_complete(peer, *f, now);
        }
        return;
    }
    if (type == "end") {
        Incoming* f = find_id(id);
        if (f == nullptr || f->plain) {
            return;
        }
        f->end_size = get_number<uint64_t>(*j, "size");
        f->end_sha = get_string(*j, "sha256");
        if (!f->end_size) {
            fail_file(peer, *f, "the sender's end message has no size", now);
            return;
        }
        maybe_complete(peer, *f, now);
        return;
    }
    if (type == "done") {
        done_seen_ = true;
        check_finished(peer, now);
        return;
    }
}

void Receiver::on_file_bytes(peer::Peer& peer, Incoming& f, std::span<const uint8_t> data,
                             base::Instant now) {
    if (!write_all(f.fd.get(), data)) {
        fail_file(peer, f, fmt::format("writing {}: {}", f.target.shown_part(), errno_text()), now);
        return;
    }
    f.hash.update(data);
    f.received += data.size();
    bytes_done_ += data.size();
    if (!f.plain) {
        maybe_complete(peer, f, now);
    }
}

void Receiver::maybe_complete(peer::Peer& peer, Incoming& f, base::Instant now) {
    if (!f.started || !f.end_size) {
        return;
    }
    if (f.received > *f.end_size) {
        fail_file(peer, f, "more bytes than announced", now);
        return;
    }
    if (f.received < *f.end_size) {
        return;
    }
    complete(peer, f, true, now);
}

void Receiver::complete(peer::Peer& peer, Incoming& f, bool verified, base::Instant now) {
    FileResult fr;
    fr.name = f.name;
    fr.size = f.received;
    fr.offset = f.offered_offset;
    fr.sha256 = base::Sha256::hex(f.hash.finish());
    if (verified && fr.sha256 != f.end_sha) {
        fail_file(peer, f,
                  fmt::format("SHA-256 mismatch: received {}, sender says {}", fr.sha256,
                              base::printable(f.end_sha)),
                  now);
        return;
    }
    if (::fdatasync(f.fd.get()) != 0) {
        fail_file(peer, f, fmt::format("{}: {}", f.target.shown_part(), errno_text()), now);
        return;
    }
    f.fd.reset();
    if (auto r = f.target.commit(options_.force); !r) {
        fail_file(peer, f, r.error().message, now);
        return;
    }
    fr.ok = true;
    fr.verified = verified;
    if (f.id) {
        send_control(
            peer, dump(json{{"type", "ack"}, {"id", *f.id}, {"ok", true}, {"sha256", fr.sha256}}),
            now);
    }
    settle(f, fr);
    check_finished(peer, now);
}

void Receiver::fail_file(peer::Peer& peer, Incoming& f, const std::string& why, base::Instant now) {
    FileResult fr;
    fr.name = f.name;
    fr.size = f.received;
    fr.offset = f.offered_offset;
    fr.error = why;
    fr.part = f.target.shown_part();
    set_error(fmt::format("{}: {}", f.name, why));
    if (f.id) {
        send_control(
            peer, dump(json{{"type", "ack"}, {"id", *f.id}, {"ok", false}, {"error", why}}), now);
    }
    if (f.channel && !gone_) {
        // Tell the sender at once; for a plain sender this is the only signal we have.
        ignored_channels_.insert(*f.channel);
        peer.close_channel(*f.channel, now);
    }
    settle(f, fr);
    check_finished(peer, now);
}

void Receiver::settle(Incoming& f, FileResult fr) {
    results_.push_back(std::move(fr));
    if (f.channel) {
        key_by_channel_.erase(*f.channel);
    }
    if (f.id) {
        key_by_id_.erase(*f.id);
    }
    std::erase_if(key_by_name_, [&](const auto& kv) { return kv.second == f.key; });
    early_total_ -= f.early_bytes;
    files_.erase(f.key); // f is gone from here on
}

void Receiver::check_finished(peer::Peer& peer, base::Instant now) {
    if (!done_seen_ || finished_ || !files_.empty()) {
        return;
    }
    send_control(peer, dump(json{{"type", "bye"}}), now);
    finished_ = true;
}

bool Receiver::on_peer_gone(const std::string& why) {
    if (finished_) {
        return error_.empty();
    }
    gone_ = true;
    settle_all("the sender went away before the file was complete: " + why);
    if (mode_ == Mode::Protocol && !done_seen_) {
        set_error("the sender went away before it was done: " + why);
    }
    if (results_.empty()) {
        set_error("the peer went away without sending any file: " + why);
    }
    finished_ = true;
    return error_.empty();
}

bool Receiver::on_idle() {
    if (mode_ == Mode::Plain && files_.empty() && !results_.empty() && !finished_) {
        finished_ = true;
        return true;
    }
    return false;
}

Progress Receiver::progress() const {
    Progress p;
    p.bytes_done = bytes_done_;
    p.bytes_total = bytes_total_;
    for (const auto& [key, f] : files_) {
        if (f->started) {
            p.current = f->name;
        }
    }
    return p;
}

} // namespace rtcat::cli::transfer
