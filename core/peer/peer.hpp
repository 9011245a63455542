#pragma once
// One WebRTC peer for a data-channel session: ICE (core/ice) → DTLS (core/dtls) → SCTP/DCEP
// (core/dcep), glued by JSEP offer/answer (core/sdp).
//
// Sans-IO like every machine in core/: inputs are handle_receive / handle_timeout / application
// calls, each with `now`; after each one the caller drains poll_transmit(), poll_event(), and
// then waits until poll_timeout().
//
// Life of a session:
//   1. Construct. ICE starts gathering from the host sockets the driver bound.
//   2. Offerer: when gathering completes, event::LocalDescription (the offer). Answerer: call
//      set_remote_description(offer); once gathering completes, event::LocalDescription (the
//      answer). Non-trickle: every candidate is in the description.
//   3. ICE checks run; once a pair is valid (not necessarily selected yet: RFC 8445 §12.1) the
//      DTLS client sends its ClientHello. DTLS packets that arrive before our DTLS session
//      exists (the peer may be faster than our signaling) are buffered, not dropped, and so
//      are DTLS packets we produce before our ICE has a valid pair (a server answering such an
//      early ClientHello): no flight is lost to a retransmit timer.
//   4. DTLS connected with the fingerprint verified → SCTP association (built on the next
//      handle_timeout, due at once, so our last DTLS flight leaves first) → data channels.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/base/result.hpp"
#include "core/base/time.hpp"
#include "core/dcep/data_channels.hpp"
#include "core/dtls/session.hpp"
#include "core/ice/agent.hpp"
#include "core/net/datagram.hpp"
#include "core/sdp/signal.hpp"

namespace rtcat::peer {

struct PeerConfig {
    bool offerer = true;
    dtls::Certificate certificate;
    std::vector<net::SocketAddr> host_sockets;
    std::vector<ice::StunServer> stun_servers;
    std::optional<ice::TurnServer> turn;
    bool relay_only = false;
    std::function<void(std::string_view)> keylog;
    uint32_t max_message_size = 262144;
    size_t mtu = 1200; // UDP payload bound for every datagram we send (RFC 8831 §5)
    base::Duration gathering_timeout = std::chrono::seconds(3);
    base::Duration connect_timeout = std::chrono::seconds(30);
    base::Duration consent_timeout = std::chrono::seconds(30);
    // Randomness for ICE credentials and tie-breaker; tests pass fixed values.
    std::optional<uint64_t> tie_breaker;
};

// Why a session failed; the CLI maps each class to its exit code.
enum class FailureClass {
    Signaling,    // the remote description is unusable
    Connectivity, // ICE failed or consent was lost
    Security,     // DTLS fingerprint mismatch, bad certificate
    Protocol,     // DTLS or SCTP failed for another reason
};

namespace event {
struct LocalDescription {
    sdp::SdpType type;
    std::string sdp;
};
struct IceConnected {
    ice::CandidatePair pair;
};
struct DtlsConnected {
    std::string cipher;
    std::string srtp_profile;
};
struct Failed {
    FailureClass failure;
    std::string reason;
};
struct Closed {
    std::string reason;
};
} // namespace event

using Event = std::variant<event::LocalDescription, event::IceConnected, event::DtlsConnected,
                           dcep::event::Connected, dcep::event::ChannelOpen, dcep::event::Message,
                           dcep::event::ChannelClosed, dcep::event::BufferedAmountLow,
                           dcep::event::Closed, event::Failed, event::Closed>;

class Peer {
public:
    Peer(PeerConfig config, base::Instant now);
    ~Peer();
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    // The peer's offer (answerer) or answer (offerer). Errors are for the user: they name what
    // is wrong with the description.
    base::Result<void> set_remote_description(const sdp::SignalMessage& remote, base::Instant now);

    void handle_receive(net::Datagram&& datagram, base::Instant now);
    void handle_timeout(base::Instant now);
    std::optional<net::Transmit> poll_transmit();
    std::optional<Event> poll_event();
    base::Instant poll_timeout() const;

    // Data channels: usable once dcep::event::Connected was emitted (data_ready()).
    base::Result<uint16_t> open_channel(dcep::ChannelOptions options, base::Instant now);
    base::Result<void> send(uint16_t channel, std::span<const uint8_t> data, bool binary,
                            base::Instant now);
    void close_channel(uint16_t channel, base::Instant now);
    size_t buffered_amount(uint16_t channel) const;
    void set_buffered_amount_low_threshold(uint16_t channel, size_t bytes);
    // The largest message the peer accepts (its a=max-message-size, capped by ours).
    uint32_t remote_max_message_size() const;

    // Graceful end: SCTP shutdown (queued data still delivered), then DTLS close_notify and
    // TURN release; event::Closed when done. Call again after a linger deadline to force it.
    void close(base::Instant now);
    void close_now(base::Instant now) { finish_close(now, "closed"); }
    bool is_closed() const { return closed_; }

    bool data_ready() const; // SCTP association up
    // Everything sent on data channels was acknowledged by the peer's SCTP (see
    // dcep::DataChannels::all_acknowledged); true when nothing was ever sent.
    bool all_data_acknowledged() const;
    std::optional<ice::CandidatePair> selected_pair() const;
    // The peer's candidates ICE works with (a bounded number: ice::kMaxRemoteCandidates).
    const std::vector<ice::Candidate>& remote_candidates() const;

    struct Stats {
        uint64_t datagrams_in = 0;
        uint64_t datagrams_out = 0;
        uint64_t bytes_in = 0;
        uint64_t bytes_out = 0;
        uint64_t dropped_unencrypted_media = 0; // RTP/RTCP outside SRTP: never accepted
        uint64_t dropped_unknown = 0;           // neither STUN, DTLS nor media (RFC 7983)
        uint64_t dtls_buffered_early = 0;       // arrived before our DTLS session existed
        uint64_t dtls_held_early = 0;           // produced before ICE had a valid pair
        uint64_t sctp_buffered_early = 0;       // SCTP packets before our association existed
        ice::Stats ice;
        dtls::Session::Stats dtls;
        dcep::DataChannels::Stats sctp;
    };
    Stats stats() const;

private:
    void pump(base::Instant now);
    void maybe_emit_local_description();
    void maybe_start_dtls(base::Instant now);
    void feed_dtls(std::span<const uint8_t> payload, base::Instant now);
    bool drain_dtls(base::Instant now);
    bool send_dtls_output(base::Instant now);
    void flush_early_out(base::Instant now);
    void start_sctp(base::Instant now);
    bool drain_sctp(base::Instant now);
    void fail(FailureClass failure, std::string reason);
    void finish_close(base::Instant now, std::string reason);

    PeerConfig config_;
    std::string local_ufrag_;
    std::string local_pwd_;
    std::unique_ptr<ice::Agent> ice_;
    std::unique_ptr<dtls::Session> dtls_;
    std::unique_ptr<dcep::DataChannels> channels_;
    std::vector<std::string> local_candidates_;
    bool gathering_done_ = false;
    bool local_description_sent_ = false;
    std::optional<sdp::RemoteParams> remote_;
    std::string remote_offer_text_;
    bool dtls_client_ = false;
    bool ice_connected_ = false;
    bool failed_ = false;
    bool closed_ = false;
    bool closing_ = false;
    std::deque<base::Bytes> early_dtls_;
    size_t early_dtls_bytes_ = 0;
    std::deque<base::Bytes> early_out_; // our DTLS datagrams waiting for a valid ICE pair
    size_t early_out_bytes_ = 0;
    base::Instant sctp_at_ = base::kNever; // DTLS is up: build the SCTP association then
    std::deque<base::Bytes> early_sctp_;   // SCTP packets that came before the association
    size_t early_sctp_bytes_ = 0;
    std::deque<net::Transmit> transmits_;
    std::deque<Event> events_;
    Stats stats_;
    uint64_t session_id_ = 0;
};

} // namespace rtcat::peer
