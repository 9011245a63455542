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

namespace rtcat::cli::transfer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string errno_text() {
    return std::strerror(errno);
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

} // namespace

base::Result<fs::path> safe_relative_path(std::string_view name) {
    if (name.empty()) {
        return base::make_error("empty file name");
    }
    if (name.size() > 4096) {
        return base::make_error("file name longer than 4096 bytes");
    }
    if (name.find('\0') != std::string_view::npos) {
        return base::make_error("file name contains a NUL byte");
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
        out /= std::string(seg);
        pos = slash + 1;
    }
    // A name ending in .part would collide with another file's temporary name.
    if (out.filename().string().ends_with(".part")) {
        return base::make_error("names ending in .part are reserved: {}", name);
    }
    return out;
}

base::Result<std::vector<Source>> collect_sources(const std::vector<std::string>& args,
                                                  const std::string& stdin_name) {
    std::vector<Source> out;
    std::set<std::string> names;
    auto add = [&](Source s) -> base::Result<void> {
        if (!names.insert(s.name).second) {
            return base::make_error("two files would be sent as {}", s.name);
        }
        out.push_back(std::move(s));
        return {};
    };
    bool stdin_used = false;
    for (const auto& a : args) {
        if (a == "-") {
            if (stdin_used) {
                return base::make_error("- (standard input) given twice");
            }
            stdin_used = true;
            auto safe = safe_relative_path(stdin_name);
            if (!safe) {
                return base::make_error("--name: {}", safe.error().message);
            }
            if (auto r = add(Source{{}, stdin_name}); !r) {
                return r.error();
            }
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
            if (auto r = add(Source{p, base_name}); !r) {
                return r.error();
            }
        } else if (fs::is_directory(st)) {
            std::vector<fs::path> files;
            for (auto it = fs::recursive_directory_iterator(p, ec);
                 !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
                if (it->is_regular_file()) {
                    files.push_back(it->path());
                }
            }
            if (ec) {
                return base::make_error("{}: {}", a, ec.message());
            }
            std::sort(files.begin(), files.end());
            for (const auto& f : files) {
                std::string rel = (fs::path(base_name) / f.lexically_relative(p)).generic_string();
                if (auto r = add(Source{f, rel}); !r) {
                    return r.error();
                }
            }
        } else {
            return base::make_error("{}: not a regular file or directory", a);
        }
    }
    if (out.empty()) {
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
    enum class State { WaitAccept, WaitOpen, Sending } state = State::WaitAccept;
    uint16_t channel = 0;
    uint64_t offset = 0;
    uint64_t position = 0; // bytes of the file handed to the channel, from 0
    base::Sha256 hash;
    bool readable = false; // stdin: poll said so
    ~Current() {
        if (owns_fd && fd >= 0) {
            ::close(fd);
        }
    }
};

Sender::Sender(std::vector<Source> sources) : sources_(std::move(sources)) {
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

void Sender::send_control(peer::Peer& peer, const std::string& text, base::Instant now) {
    if (!control_) {
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
    dcep::ChannelOptions o;
    o.label = std::string(kControlLabel);
    o.protocol = std::string(kProtocol);
    auto id = peer.open_channel(o, now);
    if (!id) {
        set_error("cannot open the control channel: " + id.error().message);
        return;
    }
    control_ = *id;
}

void Sender::announce_next(peer::Peer& peer, base::Instant now) {
    if (cur_) {
        return;
    }
    if (next_ >= sources_.size()) {
        if (!done_sent_) {
            done_sent_ = true;
            send_control(peer, json{{"type", "done"}}.dump(), now);
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
            announce_next(peer, now);
            return;
        }
        c->owns_fd = true;
        struct stat st {};
        if (::fstat(c->fd, &st) == 0 && S_ISREG(st.st_mode)) {
            c->size = static_cast<uint64_t>(st.st_size);
        }
    }
    json msg{{"type", "file"}, {"id", c->id}, {"name", c->source.name}};
    msg["size"] = c->size ? json(*c->size) : json(nullptr);
    cur_ = std::move(c);
    send_control(peer, msg.dump(), now);
}

void Sender::on_event(peer::Peer& peer, peer::Event& event, base::Instant now) {
    if (auto* open = std::get_if<dcep::event::ChannelOpen>(&event)) {
        if (control_ && open->channel.id == *control_) {
            control_open_ = true;
            json hello{{"type", "hello"}, {"version", 1}, {"files", sources_.size()}};
            hello["bytes"] = bytes_total_ ? json(bytes_total_) : json(nullptr);
            send_control(peer, hello.dump(), now);
            announce_next(peer, now);
        } else if (cur_ && cur_->state == Current::State::WaitOpen &&
                   open->channel.id == cur_->channel) {
            cur_->state = Current::State::Sending;
        }
    } else if (auto* m = std::get_if<dcep::event::Message>(&event)) {
        if (control_ && m->id == *control_ && !m->binary) {
            on_control(peer, std::string(m->data.begin(), m->data.end()), now);
        }
    } else if (auto* c = std::get_if<dcep::event::ChannelClosed>(&event)) {
        if (control_ && c->id == *control_ && !finished_) {
            set_error("the receiver closed the control channel");
            finished_ = true;
        }
    }
}

void Sender::maybe_finish() {
    // Every file is acknowledged (or refused): the receiver's `bye` is a courtesy, not needed.
    if (done_sent_ && !cur_ && acks_pending_ == 0) {
        finished_ = true;
    }
}

void Sender::on_control(peer::Peer& peer, const std::string& text, base::Instant now) {
    auto j = parse_control(text);
    if (!j) {
        RTCAT_WARN("transfer", "ignoring a malformed control message from the receiver");
        return;
    }
    const std::string type = (*j)["type"];
    const auto id = get_number<uint64_t>(*j, "id");
    if (type == "accept" || type == "reject") {
        if (!cur_ || !id || *id != cur_->id || cur_->state != Current::State::WaitAccept) {
            RTCAT_WARN("transfer", "receiver answered a file we did not ask about");
            return;
        }
        if (type == "reject") {
            FileResult fr;
            fr.name = cur_->source.name;
            fr.size = cur_->size.value_or(0);
            fr.error = "refused by the receiver: " + get_string(*j, "reason");
            RTCAT_WARN("transfer", "{}: {}", fr.name, fr.error);
            results_.push_back(fr);
            set_error(fr.error);
            cur_.reset();
            announce_next(peer, now);
            return;
        }
        start_file(peer, get_number<uint64_t>(*j, "offset").value_or(0),
                   get_string(*j, "prefix_sha256"), now);
    } else if (type == "ack") {
        if (!id) {
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
        const bool ok = j->value("ok", false);
        if (r.error.empty()) {
            r.ok = ok && get_string(*j, "sha256") == r.sha256;
            if (!r.ok) {
                r.error = ok ? "receiver reported a different SHA-256"
                             : "receiver: " + get_string(*j, "error");
                set_error(r.name + ": " + r.error);
            }
        }
        if (acks_pending_ > 0) {
            --acks_pending_;
        }
        maybe_finish();
    } else if (type == "bye") {
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
    send_control(peer, json{{"type", "start"}, {"id", c.id}, {"offset", offset}}.dump(), now);
    dcep::ChannelOptions o;
    o.label = c.source.name;
    o.protocol = std::string(kProtocol);
    auto ch = peer.open_channel(o, now);
    if (!ch) {
        set_error(
            fmt::format("{}: cannot open its channel: {}", c.source.name, ch.error().message));
        finished_ = true;
        return;
    }
    c.channel = *ch;
    c.state = Current::State::WaitOpen;
    peer.set_buffered_amount_low_threshold(c.channel, kLowWater);
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

void Sender::finish_file(peer::Peer& peer, base::Instant now) {
    auto& c = *cur_;
    FileResult fr;
    fr.name = c.source.name;
    fr.size = c.position;
    fr.offset = c.offset;
    fr.sha256 = base::Sha256::hex(c.hash.finish());
    if (c.size && *c.size != c.position) {
        fr.error = fmt::format("{} changed while being sent ({} bytes, now {})",
                               c.source.path.string(), *c.size, c.position);
        set_error(fr.error);
    }
    send_control(
        peer,
        json{{"type", "end"}, {"id", c.id}, {"size", c.position}, {"sha256", fr.sha256}}.dump(),
        now);
    // The channel stays open until the receiver's ack: Chromium drops the last messages of a
    // channel whose stream reset follows them within a few milliseconds.
    channel_by_id_[c.id] = c.channel;
    result_by_id_[c.id] = results_.size();
    results_.push_back(fr);
    ++acks_pending_;
    cur_.reset();
    announce_next(peer, now);
}

void Sender::pump(peer::Peer& peer, base::Instant now) {
    // Several small files can finish in one turn; the loop ends when a channel is full, a
    // file awaits its accept/open, or stdin has nothing ready.
    for (int files = 0; files < 64 && cur_ && cur_->state == Current::State::Sending; ++files) {
        auto& c = *cur_;
        const bool is_stdin = c.source.path.empty();
        while (peer.buffered_amount(c.channel) < kHighWater) {
            if (is_stdin && !c.readable) {
                return;
            }
            ssize_t n = ::read(c.fd, buf_.data(), buf_.size());
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                set_error(fmt::format("reading {}: {}",
                                      is_stdin ? "standard input" : c.source.path.string(),
                                      errno_text()));
                finished_ = true;
                return;
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
            auto r = peer.send(c.channel, data, true, now);
            if (!r) {
                set_error(fmt::format("{}: {}", c.source.name, r.error().message));
                finished_ = true;
                return;
            }
            c.position += static_cast<uint64_t>(n);
            bytes_done_ += static_cast<uint64_t>(n);
        }
        if (cur_ && &*cur_ == &c) {
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
    uint64_t id = 0;
    std::string name;
    fs::path dest;
    fs::path part;
    std::optional<uint64_t> announced;
    uint64_t offered_offset = 0;
    std::optional<base::Sha256> prefix_hash; // of the first offered_offset bytes
    int fd = -1;
    bool started = false;
    uint64_t received = 0; // bytes in .part (prefix included)
    std::optional<uint64_t> end_size;
    std::string end_sha;
    base::Sha256 hash;
    bool settled = false;
    std::optional<uint16_t> channel;
    ~Incoming() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

Receiver::Receiver(ReceiverOptions options) : options_(std::move(options)) {}
Receiver::~Receiver() = default;

void Receiver::set_error(std::string e) {
    if (error_.empty()) {
        error_ = std::move(e);
    }
}

void Receiver::abort() {
    for (auto& [id, f] : files_) {
        if (f->fd >= 0) {
            ::close(f->fd);
            f->fd = -1;
        }
    }
}

void Receiver::send_control(peer::Peer& peer, const std::string& text, base::Instant now) {
    if (!control_) {
        return;
    }
    auto r = peer.send(*control_, as_bytes(text), false, now);
    if (!r) {
        set_error("control channel: " + r.error().message);
    }
}

void Receiver::on_event(peer::Peer& peer, peer::Event& event, base::Instant now) {
    if (auto* open = std::get_if<dcep::event::ChannelOpen>(&event)) {
        if (!open->remote) {
            return;
        }
        if (open->channel.options.label == kControlLabel) {
            control_ = open->channel.id;
            return;
        }
        auto it = id_by_name_.find(open->channel.options.label);
        if (it == id_by_name_.end()) {
            RTCAT_WARN("transfer", "closing a channel for a file that was not announced: {}",
                       open->channel.options.label);
            peer.close_channel(open->channel.id, now);
            return;
        }
        id_by_channel_[open->channel.id] = it->second;
        files_[it->second]->channel = open->channel.id;
    } else if (auto* m = std::get_if<dcep::event::Message>(&event)) {
        if (control_ && m->id == *control_) {
            if (!m->binary) {
                on_control(peer, std::string(m->data.begin(), m->data.end()), now);
            }
            return;
        }
        auto it = id_by_channel_.find(m->id);
        if (it == id_by_channel_.end()) {
            return;
        }
        auto& f = *files_[it->second];
        if (!f.started) {
            // The file channel overtook the `start` message (independent streams).
            early_[m->id].push_back(std::move(m->data));
            return;
        }
        on_file_bytes(peer, f, m->data, now);
    } else if (auto* c = std::get_if<dcep::event::ChannelClosed>(&event)) {
        if (control_ && c->id == *control_ && !finished_) {
            set_error("the sender closed the control channel before it was done");
        }
    }
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
        const std::string name = get_string(*j, "name");
        auto reject = [&](const std::string& reason) {
            RTCAT_WARN("transfer", "refusing {}: {}", name, reason);
            FileResult fr;
            fr.name = name;
            fr.error = reason;
            results_.push_back(fr);
            set_error(fmt::format("{}: {}", name, reason));
            send_control(
                peer, json{{"type", "reject"}, {"id", id.value_or(0)}, {"reason", reason}}.dump(),
                now);
        };
        if (!id || files_.count(*id) || id_by_name_.count(name)) {
            reject("missing or duplicate id/name");
            return;
        }
        auto rel = safe_relative_path(name);
        if (!rel) {
            reject(rel.error().message);
            return;
        }
        auto f = std::make_unique<Incoming>();
        f->id = *id;
        f->name = name;
        f->dest = options_.out_dir / *rel;
        f->part = f->dest;
        f->part += ".part";
        f->announced = get_number<uint64_t>(*j, "size");
        std::error_code ec;
        if (fs::exists(f->dest, ec) && !options_.force) {
            reject(fmt::format("{} exists (use --force to overwrite)", f->dest.string()));
            return;
        }
        fs::create_directories(f->dest.parent_path(), ec);
        if (ec) {
            reject(
                fmt::format("cannot create {}: {}", f->dest.parent_path().string(), ec.message()));
            return;
        }
        f->fd = ::open(f->part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (f->fd < 0) {
            reject(fmt::format("cannot open {}: {}", f->part.string(), errno_text()));
            return;
        }
        json accept{{"type", "accept"}, {"id", *id}, {"offset", 0}};
        if (options_.resume) {
            struct stat st {};
            if (::fstat(f->fd, &st) == 0 && st.st_size > 0) {
                uint64_t have = static_cast<uint64_t>(st.st_size);
                if (!f->announced || have <= *f->announced) {
                    base::Sha256 h;
                    if (hash_prefix(f->fd, have, h)) {
                        f->offered_offset = have;
                        accept["offset"] = have;
                        accept["prefix_sha256"] = base::Sha256::hex(h.peek());
                        f->prefix_hash = std::move(h);
                    }
                }
            }
        }
        id_by_name_[name] = *id;
        files_[*id] = std::move(f);
        send_control(peer, accept.dump(), now);
        return;
    }
    if (type == "start") {
        auto it = id ? files_.find(*id) : files_.end();
        if (it == files_.end() || it->second->started) {
            return;
        }
        auto& f = *it->second;
        const uint64_t offset = get_number<uint64_t>(*j, "offset").value_or(0);
        if (offset == f.offered_offset && offset > 0 && f.prefix_hash) {
            f.hash = std::move(*f.prefix_hash);
        } else {
            f.hash = base::Sha256();
            if (offset != 0) {
                // We only ever offered offered_offset; anything else is a confused sender.
                set_error(fmt::format("{}: sender started at an offset we did not offer", f.name));
                return;
            }
        }
        if (::ftruncate(f.fd, static_cast<off_t>(offset)) != 0 ||
            ::lseek(f.fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
            set_error(fmt::format("{}: {}", f.part.string(), errno_text()));
            return;
        }
        f.received = offset;
        f.started = true;
        if (f.channel) {
            auto e = early_.find(*f.channel);
            if (e != early_.end()) {
                auto queued = std::move(e->second);
                early_.erase(e);
                for (auto& b : queued) {
                    on_file_bytes(peer, f, b, now);
                }
            }
        }
        maybe_complete(peer, f, now);
        return;
    }
    if (type == "end") {
        auto it = id ? files_.find(*id) : files_.end();
        if (it == files_.end()) {
            return;
        }
        auto& f = *it->second;
        f.end_size = get_number<uint64_t>(*j, "size");
        f.end_sha = get_string(*j, "sha256");
        maybe_complete(peer, f, now);
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
    if (f.settled || f.fd < 0) {
        return;
    }
    if (!write_all(f.fd, data)) {
        set_error(fmt::format("writing {}: {}", f.part.string(), errno_text()));
        f.settled = true;
        send_control(
            peer,
            json{{"type", "ack"}, {"id", f.id}, {"ok", false}, {"error", "write failed"}}.dump(),
            now);
        return;
    }
    f.hash.update(data);
    f.received += data.size();
    bytes_done_ += data.size();
    maybe_complete(peer, f, now);
}

void Receiver::maybe_complete(peer::Peer& peer, Incoming& f, base::Instant now) {
    if (f.settled || !f.started || !f.end_size || f.received < *f.end_size) {
        if (f.end_size && f.received > *f.end_size && !f.settled) {
            f.settled = true;
            set_error(fmt::format("{}: more bytes than announced", f.name));
        }
        return;
    }
    f.settled = true;
    FileResult fr;
    fr.name = f.name;
    fr.size = f.received;
    fr.offset = f.offered_offset;
    fr.sha256 = base::Sha256::hex(f.hash.finish());
    std::string error;
    if (fr.sha256 != f.end_sha) {
        error = fmt::format("SHA-256 mismatch: received {}, sender says {}", fr.sha256, f.end_sha);
    } else if (::fdatasync(f.fd) != 0) {
        error = fmt::format("{}: {}", f.part.string(), errno_text());
    }
    ::close(f.fd);
    f.fd = -1;
    std::error_code ec;
    if (error.empty() && fs::exists(f.dest, ec) && !options_.force) {
        error = fmt::format("{} appeared meanwhile (use --force to overwrite)", f.dest.string());
    }
    if (error.empty()) {
        fs::rename(f.part, f.dest, ec);
        if (ec) {
            error = fmt::format("rename to {}: {}", f.dest.string(), ec.message());
        }
    }
    fr.ok = error.empty();
    fr.error = error;
    if (!fr.ok) {
        set_error(fmt::format("{}: {}", f.name, error));
    }
    results_.push_back(fr);
    json ack{{"type", "ack"}, {"id", f.id}, {"ok", fr.ok}, {"sha256", fr.sha256}};
    if (!fr.ok) {
        ack["error"] = error;
    }
    send_control(peer, ack.dump(), now);
    check_finished(peer, now);
}

void Receiver::check_finished(peer::Peer& peer, base::Instant now) {
    if (!done_seen_ || finished_) {
        return;
    }
    for (const auto& [id, f] : files_) {
        if (!f->settled) {
            return;
        }
    }
    send_control(peer, json{{"type", "bye"}}.dump(), now);
    finished_ = true;
}

Progress Receiver::progress() const {
    Progress p;
    p.bytes_done = bytes_done_;
    p.bytes_total = bytes_total_;
    for (const auto& [id, f] : files_) {
        if (f->started && !f->settled) {
            p.current = f->name;
        }
    }
    return p;
}

} // namespace rtcat::cli::transfer
