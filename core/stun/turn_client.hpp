#pragma once
// TURN client over UDP (RFC 8656): one allocation on one server, its permissions and channel
// bindings, Send/Data indications and ChannelData, with the STUN long-term credential
// mechanism (RFC 8489 §9.2) including SHA-256 password-algorithm negotiation.
//
// Sans-IO: every input (an application call, a received datagram, a timeout) takes `now`;
// after each one the caller drains poll_transmit() and poll_event(), then waits until
// poll_timeout(). Requests run as TransactionClient transactions (RFC 8489 §6.2.1).
//
// Operations asked for while the Allocate is still in flight (create_permission,
// bind_channel) are held and issued once the allocation exists.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/base/time.hpp"
#include "core/net/address.hpp"
#include "core/net/datagram.hpp"
#include "core/stun/credentials.hpp"
#include "core/stun/message.hpp"
#include "core/stun/transaction.hpp"

namespace rtcat::stun {

struct TurnConfig {
    net::SocketAddr server;
    net::SocketAddr local; // source for every transmit
    std::string username;
    std::string password;
    base::Duration requested_lifetime = std::chrono::seconds(600);
    RetransmitConfig rtx;
    std::string software = "rtcat";
    // REQUESTED-ADDRESS-FAMILY for the relayed address (RFC 8656 §7.1); none = server default
    // (IPv4).
    std::optional<net::Family> requested_family;
};

// Timers (RFC 8656). Permissions live 300 s (§9) and channel bindings 600 s (§12); both are
// refreshed a minute early so a refresh that needs retransmissions still lands in time.
inline constexpr base::Duration kPermissionRefreshInterval = std::chrono::seconds(240);
inline constexpr base::Duration kChannelRefreshInterval = std::chrono::seconds(540);
// The allocation is refreshed this long before it expires, or at half its lifetime when the
// lifetime is shorter than twice this margin.
inline constexpr base::Duration kAllocationRefreshMargin = std::chrono::seconds(60);

enum class TurnFailure {
    AuthFailed,   // credentials rejected, or the challenge could not be answered
    Timeout,      // the transaction ran out of retransmissions
    ServerError,  // an error response (including 300 Try Alternate), see error_code
    Malformed,    // a response we cannot use (missing attributes, unknown comprehension-
                  // required attributes, RFC 8489 §6.3.3/§6.3.4)
    NotAllocated, // the operation was asked for with no allocation (failed or released)
};
std::string_view turn_failure_name(TurnFailure f);

namespace turn_event {
struct Allocated {
    net::SocketAddr relayed;
    std::optional<net::SocketAddr> mapped; // XOR-MAPPED-ADDRESS of the Allocate response
    base::Duration lifetime{0};
    std::string server_software;
};
struct AllocateFailed {
    TurnFailure reason = TurnFailure::ServerError;
    int error_code = 0; // 0 when no error response was involved
    std::string message;
    std::string realm;                               // AuthFailed: the realm that refused us
    std::optional<net::SocketAddr> alternate_server; // 300 Try Alternate (not followed)
};
struct PermissionCreated {
    net::IpAddr peer;
};
struct PermissionFailed {
    net::IpAddr peer;
    TurnFailure reason = TurnFailure::ServerError;
    int error_code = 0;
    std::string message;
};
struct ChannelBound {
    net::SocketAddr peer;
    std::uint16_t channel = 0;
};
struct ChannelBindFailed {
    net::SocketAddr peer;
    std::uint16_t channel = 0;
    TurnFailure reason = TurnFailure::ServerError;
    int error_code = 0;
    std::string message;
};
struct Data {
    net::SocketAddr peer;
    base::Bytes data;
    bool via_channel = false;
};
struct Refreshed {
    base::Duration lifetime{0};
};
struct Released {
    bool confirmed = false; // false: the server did not answer (the allocation will expire)
};
// The allocation was lost after it had been established (refresh timed out or refused).
struct Failed {
    TurnFailure reason = TurnFailure::ServerError;
    int error_code = 0;
    std::string message;
};
} // namespace turn_event

using TurnEvent =
    std::variant<turn_event::Allocated, turn_event::AllocateFailed, turn_event::PermissionCreated,
                 turn_event::PermissionFailed, turn_event::ChannelBound,
                 turn_event::ChannelBindFailed, turn_event::Data, turn_event::Refreshed,
                 turn_event::Released, turn_event::Failed>;

// Dropped traffic and protocol counters (bad traffic is counted, never asserted on).
struct TurnStats {
    std::uint64_t malformed = 0;           // undecodable STUN or ChannelData from the server
    std::uint64_t bad_integrity = 0;       // responses failing MESSAGE-INTEGRITY(-SHA256)
    std::uint64_t unknown_attributes = 0;  // responses with unknown comprehension-required
    std::uint64_t bid_down = 0;            // responses ignored by the nonce-cookie rule
    std::uint64_t unknown_channel = 0;     // ChannelData on an unbound channel
    std::uint64_t no_permission = 0;       // Data indications from peers we did not permit
    std::uint64_t unexpected = 0;          // from the server but not ours (unknown tid, ...)
    std::uint64_t send_dropped = 0;        // send() with no allocation
    std::uint64_t stale_nonce_retries = 0; // 438 answered with a fresh nonce
    std::uint64_t retransmissions = 0;     // request retransmissions
};

class TurnClient {
public:
    enum class State { Idle, Allocating, Allocated, Releasing, Released, Failed };

    explicit TurnClient(TurnConfig config);

    // Starts the allocation (first without credentials, RFC 8489 §9.2.3). Once per client.
    void allocate(base::Instant now);
    // Installs (or refreshes) a permission for `peer`; kept alive until release().
    void create_permission(const net::IpAddr& peer, base::Instant now);
    // Binds the next free channel number (from 0x4000) to `peer`; kept alive until release().
    // A peer that already has a channel keeps it.
    void bind_channel(const net::SocketAddr& peer, base::Instant now);
    // ChannelData once a channel to `peer` is confirmed, else a Send indication. Returns
    // false (and counts) when there is no allocation to send through.
    bool send(const net::SocketAddr& peer, base::ByteView data, base::Instant now);
    // Deletes the allocation (Refresh with LIFETIME 0, RFC 8656 §8).
    void release(base::Instant now);

    // True when the datagram came from the server and was ours (a response to one of our
    // transactions, a Data indication or ChannelData), consumed or dropped-and-counted.
    // False for anything else, including STUN responses to other components' transactions
    // sent to the same server.
    bool handle_receive(const net::Datagram& d, base::Instant now);
    void handle_timeout(base::Instant now);

    std::optional<net::Transmit> poll_transmit();
    std::optional<TurnEvent> poll_event();
    base::Instant poll_timeout() const;

    State state() const { return state_; }
    const TurnStats& stats() const { return stats_; }
    std::optional<net::SocketAddr> relayed_address() const { return relayed_; }
    std::optional<net::SocketAddr> mapped_address() const { return mapped_; }
    // The channel bound (confirmed) to `peer`, if any.
    std::optional<std::uint16_t> channel_for(const net::SocketAddr& peer) const;
    bool has_permission(const net::IpAddr& peer) const;
    const LongTermCredentials& credentials() const { return creds_; }

private:
    enum class Kind { Allocate, Refresh, Release, CreatePermission, ChannelBind };
    // What a request was for; kept so a 401/438 retry can rebuild it with a new transaction
    // id (RFC 8489 §9.2.5: the retry is a new transaction).
    struct Request {
        Kind kind = Kind::Allocate;
        net::IpAddr peer_ip;        // CreatePermission
        net::SocketAddr peer;       // ChannelBind
        std::uint16_t channel = 0;  // ChannelBind
        base::Duration lifetime{0}; // Allocate / Refresh
        bool authenticated = false; // sent with MESSAGE-INTEGRITY(-SHA256)
        base::Bytes key;            // the key it was sent with
        bool sha256 = false;
        bool stale_retried = false; // one 438 retry already spent (RFC 8489 §9.2.5)
    };
    struct Permission {
        bool installed = false;
        bool in_flight = false;
        base::Instant refresh_at = base::kNever;
    };
    struct Channel {
        std::uint16_t number = 0;
        bool bound = false;
        bool in_flight = false;
        base::Instant refresh_at = base::kNever;
    };

    void send_request(Request req, base::Instant now);
    Message build(const Request& req) const;
    void process_tx_events(base::Instant now);
    void on_response(Request req, const Message& msg, base::Instant now);
    void on_timeout(const Request& req, base::Instant now);
    void on_success(const Request& req, const Message& msg, base::Instant now);
    void on_error(Request req, const Message& msg, base::Instant now);
    void fail_request(const Request& req, TurnFailure reason, int code, std::string message,
                      std::optional<net::SocketAddr> alternate = std::nullopt);
    void handle_stun(const Message& msg, base::ByteView raw, base::Instant now, bool& ours);
    void handle_channel_data(base::ByteView raw);
    void request_permission(const net::IpAddr& peer, base::Instant now);
    void request_channel(const net::SocketAddr& peer, base::Instant now);
    void start_permission(const net::IpAddr& peer, base::Instant now);
    void start_channel_bind(const net::SocketAddr& peer, base::Instant now);
    void schedule_allocation_refresh(base::Duration lifetime, base::Instant now);
    void enter_failed(TurnFailure reason, int code, std::string message);
    void drain(base::Instant now);
    bool live() const { return state_ == State::Allocated; }

    TurnConfig config_;
    LongTermCredentials creds_;
    TransactionClient tx_;
    State state_ = State::Idle;
    TurnStats stats_;

    std::map<TransactionId, Request> requests_;
    std::deque<net::Transmit> transmits_;
    std::deque<TurnEvent> events_;

    std::optional<net::SocketAddr> relayed_;
    std::optional<net::SocketAddr> mapped_;
    base::Instant refresh_at_ = base::kNever;
    bool refresh_in_flight_ = false;

    std::map<net::IpAddr, Permission> permissions_;
    std::map<net::SocketAddr, Channel> channels_;
    std::map<std::uint16_t, net::SocketAddr> channel_peers_;
    std::uint16_t next_channel_ = kMinChannel;

    // Asked for while the Allocate was in flight.
    std::vector<net::IpAddr> deferred_permissions_;
    std::vector<net::SocketAddr> deferred_channels_;
};

} // namespace rtcat::stun
