#pragma once
// WebRTC data channels (RFC 8831) with in-band establishment (DCEP, RFC 8832) over one SCTP
// association (core/sctp). Sans-IO: after every input (handle_receive, handle_timeout, open,
// send, close, shutdown) drain poll_transmit(), poll_event(), then wait until poll_timeout().
//
// - Both sides connect actively when constructed (RFC 8841 §10); open() and send() are allowed
//   before Connected and are queued.
// - Stream ids: the DTLS client uses even ids, the server odd ids (RFC 8832 §6).
// - send() never blocks: messages queue per channel and are pushed into usrsctp while its send
//   buffer accepts them (channels take turns message by message). buffered_amount(id) is the
//   number of user bytes accepted by send() and not yet handed to usrsctp (like the browser's
//   bufferedAmount: queued, not yet sent; usrsctp's own 4 MiB send buffer is not counted).
// - Closing (RFC 8831 §6.7): close() resets our outgoing stream once its queued messages are
//   handed over; when the peer resets its outgoing stream we reset ours back. ChannelClosed is
//   emitted when both directions are reset; the id is then free for reuse. The peer may learn
//   that first and re-open the id while our reset is still unanswered: its DATA_CHANNEL_OPEN and
//   messages are then held until the old channel is closed here (ChannelClosed, then
//   ChannelOpen for the same id).
// - When the association goes down every open channel gets ChannelClosed, then Closed.
// - usrsctp is one stack per process: an input to one DataChannels may make packets/events ready
//   on another in the same process (see core/sctp/stack.hpp).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include "core/base/bytes.hpp"
#include "core/base/result.hpp"
#include "core/base/time.hpp"
#include "core/dcep/channel_options.hpp"

namespace rtcat::dcep {

namespace event {
struct Connected {}; // SCTP association up (COMM_UP)
// remote=true: opened by the peer (DATA_CHANNEL_OPEN received). Local DCEP channels get it on
// DATA_CHANNEL_ACK (or the peer's first message on the stream); negotiated channels on Connected
// (or at open() when already connected).
struct ChannelOpen {
    ChannelInfo channel;
    bool remote = false;
};
// Empty messages (PPID 56/57) are delivered with empty data.
struct Message {
    std::uint16_t id = 0;
    bool binary = false;
    base::Bytes data;
};
// When both directions are reset (RFC 8831 §6.7), or when the association goes down.
struct ChannelClosed {
    std::uint16_t id = 0;
    // The peer reset its outgoing stream: everything it sent on the channel arrived (a reset is
    // performed only once the data before it is in, RFC 6525 §5.2.2).
    bool peer_done = true;
    // The peer performed our reset: it had everything we sent (we reset only when every byte
    // was acknowledged).
    bool delivered = true;
    // Closed by both sides, not taken down with the association.
    bool clean() const { return peer_done && delivered; }
};
// buffered_amount(id) fell from above the threshold to at or below it.
struct BufferedAmountLow {
    std::uint16_t id = 0;
};
struct Closed {
    std::string reason;
};
} // namespace event

using Event = std::variant<event::Connected, event::ChannelOpen, event::Message,
                           event::ChannelClosed, event::BufferedAmountLow, event::Closed>;

struct Config {
    bool dtls_client = true; // RFC 8832 §6: the DTLS client uses even stream ids, server odd
    std::uint16_t local_port = 5000;
    std::uint16_t remote_port = 5000;
    // The peer's a=max-message-size (RFC 8841 §6): larger sends are rejected; 0 = no limit.
    std::uint32_t remote_max_message_size = 65535;
    // What we advertise and accept; larger inbound messages are dropped and counted.
    std::uint32_t local_max_message_size = 262144;
    // Every SCTP packet handed out is <= this: 1200-byte UDP payload minus 37 bytes of DTLS
    // 1.2 AES-GCM record overhead.
    std::size_t max_packet_size = 1163;
    // Stream ids for our channels: the lowest free one (as Chromium and pion choose), or, by
    // default, the next in turn (see allocate_id in data_channels.cpp). Tests set it to be a peer
    // that re-uses ids at once.
    bool lowest_free_id = false;
};

class DataChannels {
public:
    DataChannels(Config config, base::Instant now);
    ~DataChannels();
    DataChannels(const DataChannels&) = delete;
    DataChannels& operator=(const DataChannels&) = delete;

    // One SCTP packet (the payload of a DTLS application-data record).
    void handle_receive(std::span<const std::uint8_t> sctp_packet, base::Instant now);
    void handle_timeout(base::Instant now);
    std::optional<base::Bytes> poll_transmit(); // SCTP packets to encrypt and send
    std::optional<Event> poll_event();
    base::Instant poll_timeout() const;

    // Opens a channel (allowed before Connected). Errors: no free stream id, negotiated id in use
    // or out of range, label/protocol over 65535 bytes, association closed.
    base::Result<std::uint16_t> open(ChannelOptions options);
    // Queues one message. Errors: unknown or closing channel, message larger than
    // remote_max_message_size, association closed.
    base::Result<void> send(std::uint16_t id, std::span<const std::uint8_t> data, bool binary);
    // Outgoing stream reset after the channel's queued messages (RFC 8831 §6.7).
    void close(std::uint16_t id);
    // Graceful SCTP SHUTDOWN once every queued message is handed to usrsctp.
    void shutdown();
    // The transport under the association is gone (the peer closed DTLS): every channel gets
    // ChannelClosed (saying which directions had been reset), then Closed, as if the
    // association went down. Nothing is sent any more.
    void transport_closed(const std::string& reason);

    std::size_t buffered_amount(std::uint16_t id) const;
    void set_buffered_amount_low_threshold(std::uint16_t id, std::size_t bytes);
    bool connected() const;
    // Every message handed to send() has left our queues and the peer's SCTP acknowledged all
    // of it (usrsctp's SENDER_DRY). Keeps its last value once the association is down, so it
    // still tells whether the peer had everything when it went away.
    bool all_acknowledged() const;

    struct Stats {
        std::uint64_t packets_in = 0;
        std::uint64_t packets_out = 0;
        std::uint64_t bad_packets = 0; // dropped by the SCTP layer (checksum, vtag, too short)
        std::uint64_t messages_in = 0;
        std::uint64_t messages_out = 0; // user messages fully handed to SCTP
        std::uint64_t bytes_in = 0;
        std::uint64_t bytes_out = 0;
        std::uint64_t dropped_messages = 0; // unknown stream, bad PPID, oversized, send failure
        std::uint64_t bad_dcep = 0;         // malformed or unexpected DCEP messages
        // DATA_CHANNEL_OPENs for an id whose previous channel was still closing on our side
        // (the peer re-used it first): held, then opened once the old channel was gone.
        std::uint64_t deferred_opens = 0;
        // Stream reset requests sent while our data was still unacknowledged, because too many
        // waited (see kResetPressure in data_channels.cpp).
        std::uint64_t resets_before_dry = 0;
        std::size_t largest_packet_out = 0;
    };
    Stats stats() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace rtcat::dcep
