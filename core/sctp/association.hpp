#pragma once
// One SCTP association (RFC 4960) over an opaque packet transport (DTLS, RFC 8261), backed by
// usrsctp in AF_CONN mode with no threads. Sans-IO: after each input (handle_receive,
// handle_timeout, send, reset_stream, shutdown) drain poll_transmit(), poll_event(), then
// poll_timeout().
//
// Note: usrsctp is one stack per process and its timers are global (see stack.hpp): an input to
// one Association may produce packets/events on another one in the same process. That other
// association then reports itself due (poll_timeout() <= the caller's now), so a driver that
// fires each machine's timeout when it is due picks the output up without knowing about the
// sharing.
//
// Wire format details the caller relies on:
// - Both sides actively connect (RFC 8841 §10: simultaneous open), each to its own AF_CONN handle.
// - Every packet from poll_transmit() is <= Config::max_packet_size (path MTU fixed, RFC 8261
//   §5: usrsctp does no PLPMTUD).
// - Messages are delivered whole (reassembled from partial deliveries); larger than
//   max_receive_message_size: dropped and counted.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/base/result.hpp"
#include "core/base/time.hpp"

namespace rtcat::sctp {

struct Config {
    std::uint16_t local_port = 5000;
    std::uint16_t remote_port = 5000;
    std::size_t max_packet_size = 1163;
    std::size_t max_receive_message_size = 262144;
};

enum class PrPolicy { None, MaxRetransmits, MaxLifetimeMs };

struct SendParams {
    std::uint16_t stream = 0;
    std::uint32_t ppid = 0;
    bool unordered = false;
    PrPolicy pr_policy = PrPolicy::None;
    std::uint32_t pr_value = 0;
    // Last piece of the message (SCTP_EOR): the socket uses explicit EOR, so one message may be
    // handed over in several send() calls.
    bool end_of_message = true;
};

namespace event {
struct Up {
    std::uint16_t inbound_streams = 0;
    std::uint16_t outbound_streams = 0;
};
struct Down {
    std::string reason;
};
struct Message {
    std::uint16_t stream = 0;
    std::uint32_t ppid = 0;
    bool unordered = false;
    base::Bytes data;
};
// RFC 6525 stream reset notification. incoming: the peer reset its outgoing streams (our
// incoming ones); outgoing: our outgoing reset request was performed. failed: the request was
// denied or failed.
struct StreamReset {
    std::vector<std::uint16_t> streams; // empty = all streams
    bool incoming = false;
    bool outgoing = false;
    bool failed = false;
};
} // namespace event
using Event = std::variant<event::Up, event::Down, event::Message, event::StreamReset>;

struct Stats {
    std::uint64_t packets_in = 0;
    std::uint64_t packets_out = 0;
    std::uint64_t bad_packets = 0;        // discarded by usrsctp (checksum, header, vtag, OOTB)
    std::uint64_t oversized_messages = 0; // inbound messages over max_receive_message_size
    std::size_t largest_packet_out = 0;
};

class Association {
public:
    Association(Config config, base::Instant now);
    ~Association();
    Association(const Association&) = delete;
    Association& operator=(const Association&) = delete;

    void handle_receive(base::ByteView packet, base::Instant now);
    void handle_timeout(base::Instant now);
    std::optional<base::Bytes> poll_transmit();
    std::optional<Event> poll_event();
    // Next timer tick while the association lives, base::kNever once it is down. Already due
    // (the last tick) when packets or socket data are waiting that another association's input
    // produced (shared timer wheel): handle_timeout() then collects them.
    base::Instant poll_timeout() const;

    // Hands (part of) one message to usrsctp. Returns the number of bytes accepted: 0 when the
    // send buffer is full (try again after the next input), fewer than data.size() when it
    // filled up midway. With end_of_message, the message ends once all its bytes are accepted.
    // While a message is incomplete, only the same stream may be sent on (explicit EOR locks
    // the stream). Errors: not connected, invalid stream, association down.
    base::Result<std::size_t> send(const SendParams& params, base::ByteView data);
    // RFC 6525 outgoing stream reset (usrsctp defers it until the stream's queued data is sent).
    // Several streams go in one request.
    base::Result<void> reset_streams(std::span<const std::uint16_t> streams);
    base::Result<void> reset_stream(std::uint16_t stream) {
        return reset_streams(std::span(&stream, 1));
    }
    // Graceful SHUTDOWN after everything handed to usrsctp is acknowledged.
    void shutdown();

    bool up() const;
    bool down() const;
    // Everything handed to usrsctp so far is acknowledged by the peer (its cumulative TSN ack
    // covers our last assigned TSN): usrsctp's SENDER_DRY since our last send.
    bool sender_dry() const;
    Stats stats() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace rtcat::sctp
