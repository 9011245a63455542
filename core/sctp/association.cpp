// usrsctp wrapping for one association. Traps of the library, found while writing this:
// - conn_output runs inside usrsctp with its locks held: it only copies the packet out.
// - With AF_CONN each side binds AND connects to its own address handle; the peer's handle is
//   never used (connecting to it sends nothing).
// - Reading: no receive callback. usrsctp_recvv (non-blocking) is called after every input until
//   it would block, so nothing of ours ever runs inside usrsctp except conn_output. Messages and
//   notifications may both arrive in pieces (partial delivery; notifications can be interleaved
//   with a partially delivered message), so each has its own accumulator, completed by MSG_EOR.
// - Writing: no upcall either. The socket is non-blocking and uses SCTP_EXPLICIT_EOR: sendv
//   accepts part of a message when the send buffer fills up, and the stream stays locked until
//   the piece with SCTP_EOR is accepted. The owner retries after every input (a SACK frees
//   space synchronously inside conninput).

#include "core/sctp/association.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <deque>

#include <usrsctp.h>

#include "core/base/log.hpp"
#include "core/sctp/crc32c.hpp"
#include "core/sctp/stack.hpp"
#include "core/sctp/tuning.hpp"

namespace rtcat::sctp {
namespace {

// PPIDs travel in network byte order in sctp_sndinfo / sctp_rcvinfo.
std::uint32_t swap_to_network(std::uint32_t v) {
    if constexpr (std::endian::native == std::endian::little)
        return __builtin_bswap32(v);
    else
        return v;
}

std::string errno_text(int e) {
    return std::string(std::strerror(e));
}

template <typename T> void set_option(struct socket* sock, int level, int name, const T& value) {
    if (usrsctp_setsockopt(sock, level, name, &value, static_cast<socklen_t>(sizeof(T))) != 0) {
        int e = errno;
        // All options used here are supported by usrsctp 0.9.5; failing means a programming
        // error (wrong level/size), not bad input.
        RTCAT_ERROR("sctp", "setsockopt({}, {}) failed: {}", level, name, errno_text(e));
        RTCAT_CHECK(false, "usrsctp_setsockopt failed");
    }
}

// Copies a notification struct out of a byte buffer (no alignment assumptions).
template <typename T> bool read_struct(const base::Bytes& b, T& out) {
    if (b.size() < sizeof(T))
        return false;
    std::memcpy(&out, b.data(), sizeof(T));
    return true;
}

} // namespace

struct Association::Impl {
    Config config;
    struct socket* sock = nullptr;
    std::deque<base::Bytes> outbox;
    std::deque<Event> events;
    bool is_up = false;
    bool is_down = false;
    bool dry = true; // see sender_dry()
    Stats stats;

    // Receive accumulators.
    std::unique_ptr<std::uint8_t[]> rbuf{new std::uint8_t[tuning::kReceiveSlice]};
    base::Bytes partial;
    bool partial_started = false;
    bool partial_dropping = false;
    event::Message partial_meta;
    base::Bytes notification;
    bool read_side_closed = false; // the last read ended on EOF or an error, not EWOULDBLOCK

    static void output(void* handle, const std::uint8_t* data, std::size_t size) {
        auto* self = static_cast<Impl*>(handle);
        self->outbox.emplace_back(data, data + size);
        ++self->stats.packets_out;
        self->stats.largest_packet_out = std::max(self->stats.largest_packet_out, size);
    }

    void open_socket() {
        sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, nullptr, nullptr, 0, nullptr);
        RTCAT_CHECK(sock != nullptr, "usrsctp_socket failed");
        RTCAT_CHECK(usrsctp_set_non_blocking(sock, 1) == 0, "usrsctp_set_non_blocking failed");

        // Destroying the association aborts it at once (ABORT chunk) instead of a graceful
        // shutdown that would need timers after the owner is gone; shutdown() is the polite way.
        struct linger lg {};
        lg.l_onoff = 1;
        lg.l_linger = 0;
        set_option(sock, SOL_SOCKET, SO_LINGER, lg);

        set_option(sock, SOL_SOCKET, SO_SNDBUF, tuning::kSendBuffer);
        set_option(sock, SOL_SOCKET, SO_RCVBUF, tuning::kReceiveBuffer);

        // RFC 8831 §6.7: closing a data channel resets its streams (RFC 6525).
        struct sctp_assoc_value av {};
        av.assoc_id = SCTP_FUTURE_ASSOC;
        av.assoc_value = SCTP_ENABLE_RESET_STREAM_REQ;
        set_option(sock, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, av);

        const int on = 1;
        const int off = 0;
        set_option(sock, IPPROTO_SCTP, SCTP_RECVRCVINFO, on);
        set_option(sock, IPPROTO_SCTP, SCTP_EXPLICIT_EOR, on);
        // RFC 8831 §6.6: "The sender SHOULD disable the Nagle algorithm".
        set_option(sock, IPPROTO_SCTP, SCTP_NODELAY, on);
        // Level 0: a partially delivered message blocks other messages (RFC 6458 §8.1.20), so
        // one accumulator suffices. No I-DATA (RFC 8260): interleaving stays off.
        set_option(sock, IPPROTO_SCTP, SCTP_FRAGMENT_INTERLEAVE, off);

        // Streams in each direction: see tuning::kMaxStreams (RFC 8831 §6.2 and why fewer).
        struct sctp_initmsg init {};
        init.sinit_num_ostreams = tuning::kMaxStreams;
        init.sinit_max_instreams = tuning::kMaxStreams;
        set_option(sock, IPPROTO_SCTP, SCTP_INITMSG, init);

        for (std::uint16_t type :
             {SCTP_ASSOC_CHANGE, SCTP_STREAM_RESET_EVENT, SCTP_SENDER_DRY_EVENT,
              SCTP_PARTIAL_DELIVERY_EVENT, SCTP_SHUTDOWN_EVENT, SCTP_REMOTE_ERROR}) {
            struct sctp_event ev {};
            ev.se_assoc_id = SCTP_FUTURE_ASSOC;
            ev.se_type = type;
            ev.se_on = 1;
            set_option(sock, IPPROTO_SCTP, SCTP_EVENT, ev);
        }

        // Fixed path MTU (RFC 8261 §5; usrsctp has no PLPMTUD). For AF_CONN usrsctp emits
        // packets up to spp_pathmtu + 12 (it does not count the SCTP common header), so the
        // header is subtracted here; tests measure the largest packet for several sizes.
        struct sctp_paddrparams spp {};
        spp.spp_assoc_id = SCTP_FUTURE_ASSOC;
        spp.spp_flags = SPP_PMTUD_DISABLE | SPP_HB_ENABLE;
        spp.spp_pathmtu =
            static_cast<std::uint32_t>(config.max_packet_size - tuning::kAfConnPacketOverhead);
        set_option(sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, spp);

        struct sctp_sack_info sack {};
        sack.sack_assoc_id = SCTP_FUTURE_ASSOC;
        sack.sack_delay = tuning::kSackDelayMs;
        sack.sack_freq = tuning::kSackFrequency;
        set_option(sock, IPPROTO_SCTP, SCTP_DELAYED_SACK, sack);

        struct sockaddr_conn local {};
        local.sconn_family = AF_CONN;
        local.sconn_port = static_cast<std::uint16_t>(swap16(config.local_port));
        local.sconn_addr = this;
        // usrsctp's API takes sockaddr*; sockaddr_conn is its AF_CONN flavour.
        RTCAT_CHECK(usrsctp_bind(sock, reinterpret_cast<struct sockaddr*>(&local), sizeof(local)) ==
                        0,
                    "usrsctp_bind failed");

        struct sockaddr_conn remote {};
        remote.sconn_family = AF_CONN;
        remote.sconn_port = static_cast<std::uint16_t>(swap16(config.remote_port));
        remote.sconn_addr = this; // our own handle: see the trap list at the top
        int rc = usrsctp_connect(sock, reinterpret_cast<struct sockaddr*>(&remote), sizeof(remote));
        if (rc != 0 && errno != EINPROGRESS) {
            int e = errno;
            RTCAT_WARN("sctp", "usrsctp_connect failed: {}", errno_text(e));
            fail("connect failed: " + errno_text(e));
        }
    }

    static std::uint16_t swap16(std::uint16_t v) {
        if constexpr (std::endian::native == std::endian::little)
            return static_cast<std::uint16_t>((v >> 8) | (v << 8));
        else
            return v;
    }

    void fail(std::string reason) {
        if (is_down)
            return;
        is_down = true;
        is_up = false;
        events.emplace_back(event::Down{std::move(reason)});
    }

    // Reads everything usrsctp has for us: messages and notifications.
    void drain_socket() {
        while (sock != nullptr) {
            struct sctp_rcvinfo info {};
            socklen_t infolen = sizeof(info);
            socklen_t fromlen = 0;
            unsigned int infotype = 0;
            int flags = 0;
            ssize_t n = usrsctp_recvv(sock, rbuf.get(), tuning::kReceiveSlice, nullptr, &fromlen,
                                      &info, &infolen, &infotype, &flags);
            if (n <= 0) {
                // EWOULDBLOCK: drained. Anything else (EOF, an error) is reported by
                // notification; the socket then stays "readable" for good, which must not make
                // poll_timeout() due forever.
                const bool would_block = n < 0 && (errno == EWOULDBLOCK || errno == EAGAIN);
                read_side_closed = !would_block;
                break;
            }
            auto size = static_cast<std::size_t>(n);
            if ((flags & MSG_NOTIFICATION) != 0) {
                notification.insert(notification.end(), rbuf.get(), rbuf.get() + size);
                if ((flags & MSG_EOR) != 0) {
                    handle_notification();
                    notification.clear();
                }
                continue;
            }
            if (!partial_started) {
                partial_started = true;
                partial_dropping = false;
                partial.clear();
                partial_meta = {};
                if (infotype == SCTP_RECVV_RCVINFO) {
                    partial_meta.stream = info.rcv_sid;
                    partial_meta.ppid = swap_to_network(info.rcv_ppid);
                    partial_meta.unordered = (info.rcv_flags & SCTP_UNORDERED) != 0;
                }
            }
            if (!partial_dropping) {
                if (partial.size() + size > config.max_receive_message_size) {
                    partial_dropping = true;
                    partial.clear();
                    partial.shrink_to_fit();
                } else {
                    partial.insert(partial.end(), rbuf.get(), rbuf.get() + size);
                }
            }
            if ((flags & MSG_EOR) != 0) {
                if (partial_dropping) {
                    ++stats.oversized_messages;
                    RTCAT_DEBUG("sctp", "dropped an inbound message over {} bytes on stream {}",
                                config.max_receive_message_size, partial_meta.stream);
                } else {
                    partial_meta.data = std::move(partial);
                    events.emplace_back(std::move(partial_meta));
                }
                partial = {};
                partial_meta = {};
                partial_started = false;
                partial_dropping = false;
            }
        }
    }

    void handle_notification() {
        decltype(sctp_notification::sn_header) header{};
        if (!read_struct(notification, header) || header.sn_length != notification.size())
            return;
        switch (header.sn_type) {
        case SCTP_ASSOC_CHANGE: {
            struct sctp_assoc_change ac {};
            if (!read_struct(notification, ac))
                return;
            switch (ac.sac_state) {
            case SCTP_COMM_UP:
                if (!is_up && !is_down) {
                    is_up = true;
                    events.emplace_back(event::Up{ac.sac_inbound_streams, ac.sac_outbound_streams});
                }
                break;
            case SCTP_COMM_LOST:
                fail("association lost");
                break;
            case SCTP_SHUTDOWN_COMP:
                fail("association shut down");
                break;
            case SCTP_CANT_STR_ASSOC:
                fail("association could not be established");
                break;
            case SCTP_RESTART:
                // RFC 4960 §5.2.4: the peer restarted; its channel state is gone.
                fail("peer restarted the association");
                break;
            default:
                break;
            }
            break;
        }
        case SCTP_STREAM_RESET_EVENT: {
            struct sctp_stream_reset_event sr {};
            if (!read_struct(notification, sr))
                return;
            event::StreamReset ev;
            ev.incoming = (sr.strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) != 0;
            ev.outgoing = (sr.strreset_flags & SCTP_STREAM_RESET_OUTGOING_SSN) != 0;
            ev.failed =
                (sr.strreset_flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) != 0;
            std::size_t count = (notification.size() - sizeof(struct sctp_stream_reset_event)) / 2;
            for (std::size_t i = 0; i < count; ++i) {
                std::uint16_t sid = 0;
                std::memcpy(&sid,
                            notification.data() + sizeof(struct sctp_stream_reset_event) + 2 * i,
                            sizeof(sid));
                ev.streams.push_back(sid);
            }
            events.emplace_back(std::move(ev));
            break;
        }
        case SCTP_PARTIAL_DELIVERY_EVENT: {
            struct sctp_pdapi_event pd {};
            if (!read_struct(notification, pd))
                return;
            if (pd.pdapi_indication == SCTP_PARTIAL_DELIVERY_ABORTED) {
                // PR-SCTP abandoned the rest of a partially delivered message: discard it.
                partial = {};
                partial_meta = {};
                partial_started = false;
                partial_dropping = false;
            }
            break;
        }
        case SCTP_REMOTE_ERROR:
            RTCAT_DEBUG("sctp", "peer reported an operation error");
            break;
        case SCTP_SHUTDOWN_EVENT:
            RTCAT_DEBUG("sctp", "peer started a shutdown");
            break;
        case SCTP_SENDER_DRY_EVENT:
            dry = true;
            break;
        default:
            break;
        }
    }
};

Association::Association(Config config, base::Instant now) : impl_(std::make_unique<Impl>()) {
    RTCAT_CHECK(config.max_packet_size >= tuning::kMinPacketSize + tuning::kAfConnPacketOverhead,
                "max_packet_size below usrsctp's smallest path MTU");
    impl_->config = config;
    stack::attach(impl_.get(), &Impl::output, now);
    impl_->open_socket();
    impl_->drain_socket();
}

Association::~Association() {
    if (impl_->sock != nullptr) {
        usrsctp_close(impl_->sock);
        impl_->sock = nullptr;
    }
    stack::detach(impl_.get());
}

void Association::handle_receive(base::ByteView packet, base::Instant now) {
    stack::tick(now);
    ++impl_->stats.packets_in;
    // A packet shorter than the common header plus one chunk header cannot be SCTP.
    if (packet.size() < 16 || impl_->sock == nullptr) {
        ++impl_->stats.bad_packets;
        impl_->drain_socket();
        return;
    }
    // usrsctp's own check is off (stack.cpp: CRC32c offloaded to us, done much faster here).
    if (!packet_checksum_ok(packet.data(), packet.size())) {
        ++impl_->stats.bad_packets;
        impl_->drain_socket();
        return;
    }
    auto before = stack::discarded_packets();
    usrsctp_conninput(impl_.get(), packet.data(), packet.size(), 0);
    if (stack::discarded_packets() != before)
        ++impl_->stats.bad_packets;
    impl_->drain_socket();
}

void Association::handle_timeout(base::Instant now) {
    stack::tick(now);
    impl_->drain_socket();
}

std::optional<base::Bytes> Association::poll_transmit() {
    if (impl_->outbox.empty())
        return std::nullopt;
    auto p = std::move(impl_->outbox.front());
    impl_->outbox.pop_front();
    return p;
}

std::optional<Event> Association::poll_event() {
    if (impl_->events.empty())
        return std::nullopt;
    auto e = std::move(impl_->events.front());
    impl_->events.pop_front();
    return e;
}

base::Instant Association::poll_timeout() const {
    if (impl_->is_down || impl_->sock == nullptr)
        return base::kNever;
    // usrsctp is one stack with one timer wheel: another association's input (its tick) may
    // have fired OUR timers (delayed SACK, T3 retransmission, heartbeat, stream-reset
    // retransmission) and left packets in our outbox or data/notifications on our socket.
    // Nothing else tells our owner, and waiting for our own next tick is not enough: that
    // deadline moves with the shared tick, so a driver that serves the associations in a fixed
    // order can starve one of them for as long as the other keeps ticking (with SACKs held back
    // a lossy transfer degrades to RTO-driven recovery). Work already waiting is due at once.
    if (!impl_->outbox.empty())
        return stack::last_tick();
    if (!impl_->read_side_closed && (usrsctp_get_events(impl_->sock) & SCTP_EVENT_READ) != 0)
        return stack::last_tick();
    return stack::last_tick() + tuning::kTimerTick;
}

base::Result<std::size_t> Association::send(const SendParams& params, base::ByteView data) {
    if (!impl_->is_up || impl_->is_down)
        return base::make_error("association not up");
    struct sctp_sendv_spa spa {};
    spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
    spa.sendv_sndinfo.snd_sid = params.stream;
    spa.sendv_sndinfo.snd_ppid = swap_to_network(params.ppid);
    if (params.unordered)
        spa.sendv_sndinfo.snd_flags |= SCTP_UNORDERED;
    if (params.end_of_message)
        spa.sendv_sndinfo.snd_flags |= SCTP_EOR;
    if (params.pr_policy != PrPolicy::None) {
        spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
        spa.sendv_prinfo.pr_policy =
            params.pr_policy == PrPolicy::MaxRetransmits ? SCTP_PR_SCTP_RTX : SCTP_PR_SCTP_TTL;
        spa.sendv_prinfo.pr_value = params.pr_value;
    }
    ssize_t n = usrsctp_sendv(impl_->sock, data.data(), data.size(), nullptr, 0, &spa, sizeof(spa),
                              SCTP_SENDV_SPA, 0);
    if (n < 0) {
        int e = errno;
        if (e == EWOULDBLOCK || e == EAGAIN)
            return std::size_t{0};
        // The association is gone (ABORT received, or given up) even if its notification is
        // still unread in the socket: mark it down now, or every queued message would fail
        // one by one against a dead association.
        if (e == ECONNRESET || e == EPIPE || e == ENOTCONN || e == ESHUTDOWN)
            impl_->fail("send failed: " + errno_text(e));
        return base::make_error("usrsctp_sendv: {}", errno_text(e));
    }
    if (n > 0)
        impl_->dry = false;
    return static_cast<std::size_t>(n);
}

base::Result<void> Association::reset_streams(std::span<const std::uint16_t> streams) {
    if (!impl_->is_up || impl_->is_down)
        return base::make_error("association not up");
    if (streams.empty() || streams.size() > tuning::kMaxStreams)
        return base::make_error("stream reset: {} streams", streams.size());
    // struct sctp_reset_streams ends in a flexible array: build it in a suitably aligned buffer.
    constexpr std::size_t kListOffset = offsetof(struct sctp_reset_streams, srs_stream_list);
    const std::size_t size = kListOffset + streams.size_bytes();
    auto buf = std::make_unique<std::uint64_t[]>((size + 7) / 8);
    struct sctp_reset_streams head {};
    head.srs_assoc_id = SCTP_ALL_ASSOC;
    head.srs_flags = SCTP_STREAM_RESET_OUTGOING;
    head.srs_number_streams = static_cast<std::uint16_t>(streams.size());
    auto* bytes = reinterpret_cast<std::uint8_t*>(buf.get());
    std::memcpy(bytes, &head, kListOffset);
    std::memcpy(bytes + kListOffset, streams.data(), streams.size_bytes());
    if (usrsctp_setsockopt(impl_->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, bytes,
                           static_cast<socklen_t>(size)) != 0) {
        int e = errno;
        return base::make_error("stream reset: {}", errno_text(e));
    }
    return {};
}

void Association::shutdown() {
    if (impl_->sock == nullptr || impl_->is_down)
        return;
    if (usrsctp_shutdown(impl_->sock, SHUT_WR) != 0) {
        int e = errno;
        RTCAT_DEBUG("sctp", "usrsctp_shutdown: {}", errno_text(e));
    }
    impl_->drain_socket();
}

bool Association::sender_dry() const {
    return impl_->dry;
}

bool Association::up() const {
    return impl_->is_up;
}
bool Association::down() const {
    return impl_->is_down;
}
Stats Association::stats() const {
    return impl_->stats;
}

} // namespace rtcat::sctp
