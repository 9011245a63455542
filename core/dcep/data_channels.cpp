#include "core/dcep/data_channels.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <vector>

#include "core/base/check.hpp"
#include "core/base/log.hpp"
#include "core/dcep/message.hpp"
#include "core/sctp/association.hpp"
#include "core/sctp/tuning.hpp"

namespace rtcat::dcep {
namespace {

// RFC 8831 §6.2 / RFC 8832: stream id 65535 is reserved, ids go up to 65534.
constexpr std::uint32_t kStreamLimit = sctp::tuning::kMaxStreams;
// Messages held for a re-opened stream id while our side of its previous channel still closes
// (see Reopen). The hold lasts until our outgoing reset is acknowledged: a round trip, a few
// RTOs under loss. 4 MiB is the association's receive window, what a peer can reasonably have
// sent meanwhile; beyond it a peer is misbehaving and the excess is dropped and counted.
constexpr std::size_t kMaxHeldReopenBytes = 4 * 1024 * 1024;

struct Outgoing {
    base::Bytes data;
    std::uint32_t ppid = 0;
    std::size_t counted = 0; // user bytes (buffered_amount); 0 for DCEP and empty messages
    std::size_t offset = 0;  // bytes already accepted by usrsctp
    bool unordered = false;  // fixed when the first byte goes out
    bool user = false;
};

struct Channel {
    ChannelInfo info;
    bool local = false;
    bool negotiated = false;
    bool acked = false; // DCEP handshake done (ACK or first peer message) or negotiated
    bool open_emitted = false;
    bool scheduled = false; // in the round-robin ready list
    bool close_requested = false;
    bool reset_issued = false;
    bool out_reset_done = false;
    bool in_reset_done = false;
    std::deque<Outgoing> queue;
    std::size_t buffered = 0;
    std::size_t low_threshold = 0;
};

// RFC 8831 §6.7 leaves a race in stream-id reuse. Both directions of a closing channel are reset
// (RFC 6525) and each side frees the id once it knows both resets were performed: the peer knows
// it when OUR reset request arrives (it answers it) and its own was answered; we know it only
// when the peer's answer to our request arrives. If that answer is lost, we retransmit our
// request an RTO later, but the peer has already reused the id: its DATA_CHANNEL_OPEN (and the
// first messages) for the next channel reach us while the previous channel is still in our
// table. Dropping that OPEN loses the channel for good (SCTP acknowledged it), which stalled
// rtcat-file transfers at file boundaries under loss. Since the peer had already reset its
// outgoing stream (in_reset_done), such an OPEN can only be for a new channel: it and what
// follows it on the stream are held here and replayed when the old channel is removed, so the
// application sees ChannelClosed, then ChannelOpen for the same id. Our DATA_CHANNEL_ACK is
// queued only then, after our reset was performed, so it starts the stream's new SSN sequence
// as the peer expects (RFC 6525: a performed outgoing reset restarts the stream's SSNs at 0).
struct Reopen {
    ChannelOptions options;
    std::deque<sctp::event::Message> held;
    std::size_t held_bytes = 0;
    bool peer_reset = false; // the peer already closed the re-opened channel as well
};

// Outgoing stream resets go out one request at a time, each when everything we sent is
// acknowledged (the association is "dry"), for the sake of peers running usrsctp, rtcat among
// them. RFC 6525 §5.2.2: a request whose Sender's Last Assigned TSN is beyond the receiver's
// cumulative TSN is answered "In progress" and performed once the missing DATA arrives. usrsctp
// re-checks such deferred requests only while processing a NEW DATA chunk; a retransmitted
// request just gets the cached "In progress" again, and every later single-chunk message is
// held until the reset happens. So when the DATA that fills the gap is the last the peer gets
// (under loss: a retransmission overtaken by the final messages), the reset never completes,
// the messages held behind it are never delivered (rtcat-file's `done`), and our retransmitted
// request ends the association ("association lost") after Association.Max.Retrans timeouts.
// A request sent when dry carries a TSN the peer has acknowledged: it is performed at once.
// usrsctp would send a second request itself as soon as the first is answered, whatever was
// sent meanwhile, so we hand it one request at a time. Closing channels are batched into one
// request. When kResetPressure resets wait (the application keeps opening and closing channels
// while other data never lets the association go dry), they go out anyway: stream ids must not
// run out, and the data that keeps flowing completes such a request on the peer's side.
constexpr std::size_t kResetPressure = 64;
constexpr std::size_t kMaxResetBatch = 128; // stream ids per request (usrsctp accepts 200)

} // namespace

struct DataChannels::Impl {
    Config config;
    sctp::Association assoc;
    std::map<std::uint16_t, Channel> channels;
    std::map<std::uint16_t, Reopen> reopens;     // see Reopen
    std::deque<std::uint16_t> ready;             // channels with queued work, round robin
    std::optional<std::uint16_t> current;        // channel whose head message is partly handed over
    std::vector<std::uint16_t> resets;           // outgoing resets to issue (see kResetPressure)
    std::vector<std::uint16_t> resets_in_flight; // our request that the peer has not answered
    std::deque<Event> events;
    bool connected = false;
    bool closed = false;
    bool shutdown_requested = false;
    bool shutdown_issued = false;
    std::uint32_t out_streams = kStreamLimit;
    std::uint32_t next_local_id = 0; // see allocate_id
    Stats stats;

    Impl(Config c, base::Instant now)
        : config(c), assoc(
                         sctp::Config{
                             .local_port = c.local_port,
                             .remote_port = c.remote_port,
                             .max_packet_size = c.max_packet_size,
                             .max_receive_message_size = c.local_max_message_size,
                         },
                         now) {}

    Channel* find(std::uint16_t id) {
        auto it = channels.find(id);
        return it == channels.end() ? nullptr : &it->second;
    }

    void schedule(Channel& ch) {
        if (ch.scheduled || (current && *current == ch.info.id))
            return;
        ch.scheduled = true;
        ready.push_back(ch.info.id);
    }

    void emit_open(Channel& ch) {
        if (ch.open_emitted)
            return;
        ch.open_emitted = true;
        events.emplace_back(event::ChannelOpen{ch.info, !ch.local});
    }

    void set_buffered(Channel& ch, std::size_t value) {
        std::size_t before = ch.buffered;
        ch.buffered = value;
        if (before > ch.low_threshold && value <= ch.low_threshold)
            events.emplace_back(event::BufferedAmountLow{ch.info.id});
    }

    void enqueue(Channel& ch, Outgoing m) {
        ch.buffered += m.counted;
        ch.queue.push_back(std::move(m));
        schedule(ch);
    }

    // After every input: association events first (they may queue ACKs / resets), then sending.
    void process() {
        while (auto e = assoc.poll_event())
            std::visit([this](auto& ev) { on(ev); }, *e);
        flush();
        // Events caused by flushing (none today) would be picked up by the next input.
    }

    void on(sctp::event::Up& up) {
        if (connected || closed)
            return;
        connected = true;
        out_streams = up.outbound_streams;
        RTCAT_DEBUG("dcep", "SCTP up: {} outbound / {} inbound streams", up.outbound_streams,
                    up.inbound_streams);
        events.emplace_back(event::Connected{});
        std::vector<std::uint16_t> unusable;
        for (auto& [id, ch] : channels) {
            if (id >= out_streams)
                unusable.push_back(id);
            else if (ch.negotiated)
                emit_open(ch);
        }
        for (auto id : unusable) {
            RTCAT_WARN("dcep", "channel {} is beyond the peer's {} streams: closed", id,
                       out_streams);
            remove_channel(id);
        }
    }

    void on(sctp::event::Down& down) {
        if (closed)
            return;
        closed = true;
        connected = false;
        // A peer may reset its stream and hang up before answering our reset (aiortc does):
        // what it sent is complete all the same.
        for (auto& [id, ch] : channels)
            events.emplace_back(event::ChannelClosed{id, ch.in_reset_done, ch.out_reset_done});
        channels.clear();
        reopens.clear();
        ready.clear();
        current.reset();
        resets.clear();
        resets_in_flight.clear();
        events.emplace_back(event::Closed{down.reason});
    }

    void on(sctp::event::StreamReset& sr) {
        auto apply = [&](std::uint16_t id) {
            Channel* ch = find(id);
            if (ch == nullptr)
                return;
            bool incoming = sr.incoming;
            if (incoming && ch->in_reset_done) {
                // Our incoming stream was reset already: this reset closes the channel the peer
                // re-opened on the id meanwhile (still held, see Reopen), not the old one.
                if (auto it = reopens.find(id); it != reopens.end()) {
                    it->second.peer_reset = true;
                    incoming = false;
                }
            }
            if (incoming) {
                // RFC 8831 §6.7: the peer reset its outgoing stream; reset ours back.
                ch->in_reset_done = true;
                if (!ch->close_requested) {
                    ch->close_requested = true;
                    schedule(*ch);
                }
            }
            if (sr.outgoing || (sr.failed && ch->reset_issued && !sr.incoming)) {
                if (sr.failed)
                    RTCAT_WARN("dcep", "peer refused the reset of stream {}", id);
                ch->out_reset_done = true;
                std::erase(resets_in_flight, id);
            }
            if (ch->in_reset_done && ch->out_reset_done)
                remove_channel(id);
        };
        if (sr.streams.empty()) {
            std::vector<std::uint16_t> ids;
            for (auto& [id, ch] : channels)
                ids.push_back(id);
            for (auto id : ids)
                apply(id);
        } else {
            for (auto id : sr.streams)
                apply(id);
        }
    }

    void remove_channel(std::uint16_t id) {
        if (channels.erase(id) == 0)
            return;
        if (current && *current == id)
            current.reset();
        std::erase(ready, id);
        std::erase(resets, id);
        std::erase(resets_in_flight, id);
        events.emplace_back(event::ChannelClosed{id});
        // The peer already re-opened this id (see Reopen): the new channel starts now.
        if (auto it = reopens.find(id); it != reopens.end()) {
            Reopen r = std::move(it->second);
            reopens.erase(it);
            RTCAT_DEBUG("dcep", "stream {} re-opened by the peer: {} held message(s) replayed", id,
                        r.held.size());
            accept_open(id, std::move(r.options));
            for (auto& m : r.held)
                on(m);
            if (r.peer_reset) {
                // RFC 8831 §6.7: reset ours back, as for any channel the peer closes.
                Channel& nc = channels.at(id);
                nc.in_reset_done = true;
                nc.close_requested = true;
                schedule(nc);
            }
        }
    }

    void on(sctp::event::Message& m) {
        if (m.ppid == ppid::kDcep) {
            on_dcep(m.stream, m.data);
            return;
        }
        if (auto it = reopens.find(m.stream); it != reopens.end()) {
            Reopen& r = it->second;
            if (r.held_bytes + m.data.size() > kMaxHeldReopenBytes) {
                ++stats.dropped_messages;
                RTCAT_WARN("dcep", "re-opened stream {}: over {} bytes held, message dropped",
                           m.stream, kMaxHeldReopenBytes);
                return;
            }
            r.held_bytes += m.data.size();
            r.held.push_back(std::move(m));
            return;
        }
        Channel* ch = find(m.stream);
        if (ch == nullptr || ch->in_reset_done) {
            ++stats.dropped_messages;
            RTCAT_DEBUG("dcep", "message on unknown stream {} dropped", m.stream);
            return;
        }
        bool binary = false;
        bool empty = false;
        switch (m.ppid) {
        case ppid::kString:
            break;
        case ppid::kBinary:
            binary = true;
            break;
        case ppid::kStringEmpty:
            empty = true;
            break;
        case ppid::kBinaryEmpty:
            binary = true;
            empty = true;
            break;
        default:
            // Includes the deprecated partial PPIDs 52/54 (RFC 8831 §8): nobody sends them.
            ++stats.dropped_messages;
            RTCAT_DEBUG("dcep", "message with PPID {} on stream {} dropped", m.ppid, m.stream);
            return;
        }
        // RFC 8832 §6: a message from the peer on a channel we opened implies its ACK.
        if (!ch->acked) {
            ch->acked = true;
            emit_open(*ch);
        }
        if (empty)
            m.data.clear(); // RFC 8831 §6.6: one byte on the wire, an empty message to the user
        ++stats.messages_in;
        stats.bytes_in += m.data.size();
        events.emplace_back(event::Message{m.stream, binary, std::move(m.data)});
    }

    // A channel the peer opened (DATA_CHANNEL_OPEN on a free id).
    void accept_open(std::uint16_t id, ChannelOptions options) {
        Channel c;
        c.info.id = id;
        c.info.options = std::move(options);
        c.acked = true;
        auto [it, inserted] = channels.emplace(id, std::move(c));
        Channel& nc = it->second;
        // RFC 8832 §6: answer with DATA_CHANNEL_ACK on the same stream.
        enqueue(nc, Outgoing{.data = encode_ack(), .ppid = ppid::kDcep});
        emit_open(nc);
    }

    void on_dcep(std::uint16_t id, const base::Bytes& payload) {
        auto msg = decode(payload);
        if (!msg) {
            ++stats.bad_dcep;
            RTCAT_DEBUG("dcep", "bad DCEP message on stream {}: {}", id, msg.error().message);
            return;
        }
        Channel* ch = find(id);
        if (reopens.contains(id)) {
            // Only the peer's OPEN may precede the messages of a held re-open.
            ++stats.bad_dcep;
            RTCAT_DEBUG("dcep", "DCEP message on re-opened stream {} ignored", id);
            return;
        }
        if (auto* open = std::get_if<OpenMessage>(&*msg)) {
            if (id >= kStreamLimit || closed) {
                ++stats.bad_dcep;
                RTCAT_DEBUG("dcep", "DATA_CHANNEL_OPEN on stream {} ignored", id);
                return;
            }
            if (ch != nullptr) {
                if (ch->in_reset_done) {
                    // The peer finished closing the previous channel and re-used the id before
                    // our own reset was answered: see Reopen.
                    RTCAT_DEBUG("dcep",
                                "DATA_CHANNEL_OPEN on stream {} held until its "
                                "previous channel is closed",
                                id);
                    ++stats.deferred_opens;
                    Reopen r;
                    r.options = std::move(open->options);
                    reopens.emplace(id, std::move(r));
                    return;
                }
                // RFC 8832 §6: the id is ours (glare is impossible with the parity rule) or
                // still open: a misbehaving peer.
                ++stats.bad_dcep;
                RTCAT_DEBUG("dcep", "DATA_CHANNEL_OPEN on busy stream {} ignored", id);
                return;
            }
            accept_open(id, std::move(open->options));
            return;
        }
        // DATA_CHANNEL_ACK
        if (ch == nullptr || !ch->local || ch->negotiated) {
            ++stats.bad_dcep;
            return;
        }
        if (!ch->acked) {
            ch->acked = true;
            emit_open(*ch);
        }
    }

    enum class Push { Done, Blocked, Dropped };

    Push push(Channel& ch, Outgoing& m) {
        if (m.offset == 0)
            m.unordered = m.user && !ch.info.options.ordered && ch.acked;
        sctp::SendParams p;
        p.stream = ch.info.id;
        p.ppid = m.ppid;
        // RFC 8832 §6: until the handshake completes, messages on an unordered channel go
        // ordered so none overtakes the DATA_CHANNEL_OPEN. DCEP itself is ordered and reliable.
        p.unordered = m.unordered;
        if (m.user) {
            switch (ch.info.options.reliability) {
            case Reliability::Reliable:
                break;
            case Reliability::MaxRetransmits:
                p.pr_policy = sctp::PrPolicy::MaxRetransmits;
                p.pr_value = ch.info.options.reliability_value;
                break;
            case Reliability::MaxLifetime:
                p.pr_policy = sctp::PrPolicy::MaxLifetimeMs;
                p.pr_value = ch.info.options.reliability_value;
                break;
            }
        }
        while (m.offset < m.data.size()) {
            std::size_t remaining = m.data.size() - m.offset;
            std::size_t slice = std::min(remaining, sctp::tuning::kSendSlice);
            p.end_of_message = slice == remaining;
            auto r = assoc.send(p, base::ByteView(m.data).subspan(m.offset, slice));
            if (!r) {
                if (assoc.down())
                    return Push::Dropped; // reported once, by the association's Down event
                RTCAT_WARN("dcep", "send on stream {} failed: {}", ch.info.id, r.error().message);
                ++stats.dropped_messages;
                if (m.counted > 0)
                    set_buffered(ch, ch.buffered - std::min(ch.buffered, m.counted - m.offset));
                return Push::Dropped;
            }
            std::size_t n = *r;
            if (m.counted > 0)
                set_buffered(ch, ch.buffered - std::min(ch.buffered, n));
            m.offset += n;
            if (n < slice)
                return Push::Blocked;
        }
        if (m.user) {
            ++stats.messages_out;
            stats.bytes_out += m.counted;
        }
        return Push::Done;
    }

    void flush() {
        if (!connected || closed)
            return;
        // Before new data goes out: a reset that waited for the association to go dry (see
        // kResetPressure) may be due now, and the data would make it wait again.
        issue_resets();
        while (true) {
            std::uint16_t id = 0;
            bool sticky = current.has_value();
            if (sticky) {
                id = *current;
            } else {
                if (ready.empty())
                    break;
                id = ready.front();
                ready.pop_front();
            }
            Channel* ch = find(id);
            if (ch == nullptr) {
                current.reset();
                continue;
            }
            if (!sticky)
                ch->scheduled = false;
            if (ch->queue.empty()) {
                current.reset();
                if (ch->close_requested && !ch->reset_issued &&
                    std::find(resets.begin(), resets.end(), id) == resets.end())
                    resets.push_back(id);
                continue;
            }
            Outgoing& m = ch->queue.front();
            Push r = push(*ch, m);
            if (r == Push::Dropped && assoc.down())
                break; // the Down event closes every channel: nothing more can be sent
            if (r == Push::Blocked) {
                if (m.offset > 0) {
                    current = id; // explicit EOR locks the stream until the message ends
                } else {
                    current.reset();
                    ch->scheduled = true;
                    ready.push_front(id);
                }
                break;
            }
            current.reset();
            ch->queue.pop_front();
            if (!ch->queue.empty() || ch->close_requested)
                schedule(*ch);
        }
        issue_resets();
        if (shutdown_requested && !shutdown_issued && !current && ready.empty()) {
            shutdown_issued = true;
            assoc.shutdown();
        }
    }

    void issue_resets() {
        if (resets.empty())
            return;
        const bool pressed = resets.size() >= kResetPressure;
        if (!pressed && (!resets_in_flight.empty() || !assoc.sender_dry()))
            return;
        const std::size_t n = std::min(resets.size(), kMaxResetBatch);
        const auto end = resets.begin() + static_cast<std::ptrdiff_t>(n);
        std::vector<std::uint16_t> batch(resets.begin(), end);
        auto r = assoc.reset_streams(batch);
        if (!r) {
            RTCAT_DEBUG("dcep", "reset of {} stream(s) deferred: {}", n, r.error().message);
            return;
        }
        if (!assoc.sender_dry())
            ++stats.resets_before_dry;
        resets.erase(resets.begin(), end);
        for (auto id : batch) {
            if (Channel* ch = find(id))
                ch->reset_issued = true;
            resets_in_flight.push_back(id);
        }
    }

    // Ids are handed out in turn, not lowest-free first: Chromium (156) closes a channel that
    // opens on a stream id whose previous channel's `close` has not fired in the page yet, even
    // though both resets were performed (rtcat-file opens the next file's channel milliseconds
    // after closing the last one). Taking the next id in turn leaves an id unused for as long as
    // 511 other channels are opened; it also makes the reuse race of Reopen rarer.
    std::optional<std::uint16_t> allocate_id() {
        const std::uint32_t limit = std::min<std::uint32_t>(out_streams, kStreamLimit);
        const std::uint32_t first = config.dtls_client ? 0 : 1;
        if (config.lowest_free_id || next_local_id < first || next_local_id >= limit ||
            (next_local_id - first) % 2 != 0)
            next_local_id = first;
        std::uint32_t id = next_local_id;
        for (std::uint32_t tried = 0; tried < limit; tried += 2) {
            if (!channels.contains(static_cast<std::uint16_t>(id))) {
                next_local_id = id + 2;
                return static_cast<std::uint16_t>(id);
            }
            id += 2;
            if (id >= limit)
                id = first;
        }
        return std::nullopt;
    }
};

DataChannels::DataChannels(Config config, base::Instant now)
    : impl_(std::make_unique<Impl>(config, now)) {
    impl_->process();
}

DataChannels::~DataChannels() = default;

void DataChannels::handle_receive(std::span<const std::uint8_t> sctp_packet, base::Instant now) {
    impl_->assoc.handle_receive(sctp_packet, now);
    impl_->process();
}

void DataChannels::handle_timeout(base::Instant now) {
    impl_->assoc.handle_timeout(now);
    impl_->process();
}

std::optional<base::Bytes> DataChannels::poll_transmit() {
    return impl_->assoc.poll_transmit();
}

std::optional<Event> DataChannels::poll_event() {
    if (impl_->events.empty())
        return std::nullopt;
    auto e = std::move(impl_->events.front());
    impl_->events.pop_front();
    return e;
}

base::Instant DataChannels::poll_timeout() const {
    if (impl_->closed)
        return base::kNever;
    return impl_->assoc.poll_timeout();
}

base::Result<std::uint16_t> DataChannels::open(ChannelOptions options) {
    auto& d = *impl_;
    if (d.closed || d.shutdown_requested)
        return base::make_error("association closed");
    constexpr auto kMaxLen = std::numeric_limits<std::uint16_t>::max();
    if (options.label.size() > kMaxLen || options.protocol.size() > kMaxLen)
        return base::make_error("label or protocol longer than 65535 bytes");
    std::uint16_t id = 0;
    if (options.negotiated_id) {
        id = *options.negotiated_id;
        if (id >= std::min<std::uint32_t>(d.out_streams, kStreamLimit))
            return base::make_error("stream id {} out of range", id);
        if (d.channels.contains(id))
            return base::make_error("stream id {} already in use", id);
    } else {
        auto free = d.allocate_id();
        if (!free)
            return base::make_error("no free stream id");
        id = *free;
    }
    Channel ch;
    ch.info.id = id;
    ch.info.options = std::move(options);
    ch.local = true;
    ch.negotiated = ch.info.options.negotiated_id.has_value();
    ch.acked = ch.negotiated;
    auto [it, inserted] = d.channels.emplace(id, std::move(ch));
    Channel& c = it->second;
    if (c.negotiated) {
        if (d.connected)
            d.emit_open(c);
    } else {
        // RFC 8832 §6: DATA_CHANNEL_OPEN first on the new stream, ordered and reliable.
        d.enqueue(c, Outgoing{.data = encode_open(c.info.options), .ppid = ppid::kDcep});
    }
    d.flush();
    return id;
}

base::Result<void> DataChannels::send(std::uint16_t id, std::span<const std::uint8_t> data,
                                      bool binary) {
    auto& d = *impl_;
    if (d.closed || d.assoc.down())
        return base::make_error("association closed");
    Channel* ch = d.find(id);
    if (ch == nullptr)
        return base::make_error("unknown channel {}", id);
    if (ch->close_requested)
        return base::make_error("channel {} is closing", id);
    if (d.config.remote_max_message_size != 0 && data.size() > d.config.remote_max_message_size)
        return base::make_error("message of {} bytes exceeds the peer's max-message-size {}",
                                data.size(), d.config.remote_max_message_size);
    Outgoing m;
    m.user = true;
    if (data.empty()) {
        // RFC 8831 §6.6: an empty message is one byte with the "empty" PPID.
        m.data = base::Bytes{0};
        m.ppid = binary ? ppid::kBinaryEmpty : ppid::kStringEmpty;
    } else {
        m.data.assign(data.begin(), data.end());
        m.ppid = binary ? ppid::kBinary : ppid::kString;
        m.counted = data.size();
    }
    d.enqueue(*ch, std::move(m));
    d.flush();
    return {};
}

void DataChannels::close(std::uint16_t id) {
    auto& d = *impl_;
    Channel* ch = d.find(id);
    if (ch == nullptr || ch->close_requested)
        return;
    ch->close_requested = true;
    if (!d.connected) {
        // Nothing of this channel reached the wire yet.
        d.remove_channel(id);
        return;
    }
    d.schedule(*ch);
    d.flush();
}

void DataChannels::shutdown() {
    auto& d = *impl_;
    if (d.closed || d.shutdown_requested)
        return;
    d.shutdown_requested = true;
    if (!d.connected) {
        d.assoc.shutdown();
        sctp::event::Down down{"shut down before connecting"};
        d.on(down);
        return;
    }
    d.flush();
}

void DataChannels::transport_closed(const std::string& reason) {
    sctp::event::Down down{reason};
    impl_->on(down);
}

std::size_t DataChannels::buffered_amount(std::uint16_t id) const {
    auto it = impl_->channels.find(id);
    return it == impl_->channels.end() ? 0 : it->second.buffered;
}

void DataChannels::set_buffered_amount_low_threshold(std::uint16_t id, std::size_t bytes) {
    if (Channel* ch = impl_->find(id))
        ch->low_threshold = bytes;
}

bool DataChannels::connected() const {
    return impl_->connected;
}

bool DataChannels::all_acknowledged() const {
    const auto& d = *impl_;
    if (d.current || !d.ready.empty())
        return false;
    for (const auto& [id, ch] : d.channels)
        if (!ch.queue.empty())
            return false;
    return d.assoc.sender_dry();
}

DataChannels::Stats DataChannels::stats() const {
    auto s = impl_->stats;
    auto a = impl_->assoc.stats();
    s.packets_in = a.packets_in;
    s.packets_out = a.packets_out;
    s.bad_packets = a.bad_packets;
    s.dropped_messages += a.oversized_messages;
    s.largest_packet_out = a.largest_packet_out;
    return s;
}

} // namespace rtcat::dcep
