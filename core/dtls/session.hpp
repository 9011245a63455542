#pragma once
// DTLS 1.2 (RFC 6347) for WebRTC (RFC 8827 §6.5, RFC 8842) on OpenSSL, sans-IO.
//
// Every input takes `now`: the constructor (a client writes its ClientHello at once),
// handle_receive() with one UDP payload, handle_timeout(), send() and close(). After each one
// the caller drains poll_transmit() (one datagram per call) and poll_event(), then waits until
// poll_timeout().
//
// Security: both sides present a self-signed certificate (the server demands one) and the
// peer's certificate must match one of `remote_fingerprints` (RFC 8122 §5). The check runs in
// OpenSSL's certificate verification, so a mismatch fails the handshake with a
// bad_certificate alert before any application data can be accepted.
//
// Retransmissions run on the caller's clock, not OpenSSL's: see "Timers" in session.cpp.
// use_srtp (RFC 5764 §4.1) offers AEAD_AES_128_GCM first (RFC 7714), then
// AES128_CM_HMAC_SHA1_80; the keys come from export_keying_material("EXTRACTOR-dtls_srtp").

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/base/result.hpp"
#include "core/base/time.hpp"
#include "core/dtls/certificate.hpp"
#include "core/dtls/fingerprint.hpp"

namespace rtcat::dtls {

enum class Role { Client, Server };

struct SessionConfig {
    Role role = Role::Client;
    Certificate certificate;
    // The peer's certificate must match one of these (each compared with its own hash
    // function). Empty is a configuration error: the session fails at once (security=true,
    // nothing would authenticate the peer).
    std::vector<Fingerprint> remote_fingerprints;
    // use_srtp: SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80 (GCM preferred).
    bool offer_srtp = true;
    // NSS key log lines ("CLIENT_RANDOM <hex> <hex>") for --keylog; empty = none.
    std::function<void(std::string_view line)> keylog;
    // Largest UDP payload we send: handshake flights are fragmented to fit (OpenSSL does not
    // probe the path: SSL_OP_NO_QUERY_MTU) and send() refuses larger records.
    std::size_t mtu = 1200;
    // First handshake retransmission timeout; it doubles up to kMaxRetransmit.
    base::Duration initial_retransmit = base::ms(100);
};

// Tunables.
// RFC 6347 §4.2.4.1 suggests 1 s, doubling to 60 s. WebRTC peers are past ICE (the path is
// known to work, RTT is usually far below 100 ms), so a lost first flight should cost 100 ms,
// not a second; capped at 8 s so a handshake recovers quickly after an outage. OpenSSL gives up
// after 12 timeouts (DTLS1_TMO_ALERT_COUNT): with this schedule about 50 s.
inline constexpr base::Duration kDefaultInitialRetransmit = base::ms(100);
inline constexpr base::Duration kMaxRetransmit = base::ms(8000);

namespace event {
struct Connected {
    std::string cipher;       // OpenSSL name, e.g. "ECDHE-ECDSA-AES128-GCM-SHA256"
    std::string srtp_profile; // "SRTP_AEAD_AES_128_GCM", empty if none negotiated
    std::string version;      // "DTLSv1.2"
};
struct Data {
    base::Bytes payload; // one decrypted application-data record
};
struct Closed {}; // the peer's close_notify
struct Failed {
    std::string reason;
    // Fingerprint mismatch, missing/bad certificate, or a certificate-related alert.
    bool security = false;
};
} // namespace event
using Event = std::variant<event::Connected, event::Data, event::Closed, event::Failed>;

class Session {
public:
    Session(SessionConfig config, base::Instant now);
    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // One UDP payload (may carry several records). Records that do not frame as DTLS are
    // dropped and counted; datagrams after close/failure are ignored.
    void handle_receive(std::span<const std::uint8_t> datagram, base::Instant now);
    void handle_timeout(base::Instant now);
    // One application-data record; only when connected, at most max_app_payload() bytes.
    base::Result<void> send(std::span<const std::uint8_t> data);
    std::optional<base::Bytes> poll_transmit();
    std::optional<Event> poll_event();
    base::Instant poll_timeout() const;
    // Sends close_notify (when connected) and stops; further input is ignored.
    void close();

    bool connected() const;
    // True once closed by either side or failed: nothing more will be sent or delivered.
    bool closed() const;
    bool failed() const;

    // RFC 5705 exporter; for SRTP keys the label is "EXTRACTOR-dtls_srtp" and no context
    // (RFC 5764 §4.2). Only when connected.
    base::Result<base::Bytes> export_keying_material(std::string_view label, std::size_t len) const;
    // The peer certificate's fingerprint (with the algorithm it matched), once verified.
    std::optional<Fingerprint> peer_fingerprint() const;

    struct Stats {
        std::uint64_t records_in = 0;  // well-framed records received
        std::uint64_t records_out = 0; // records sent
        std::uint64_t bad_records = 0; // dropped: garbage framing, failed decryption, replays
        std::uint64_t retransmits = 0; // handshake flights retransmitted on timeout
        std::uint64_t ignored = 0;     // datagrams received after close or failure
    };
    Stats stats() const;

    // Bytes added to an application record by the costliest suite we negotiate:
    // AES-GCM = 13 header + 8 explicit nonce + 16 tag (ChaCha20-Poly1305 adds 29).
    static constexpr std::size_t kRecordOverhead = 37;
    // Largest send() once connected (mtu minus the negotiated suite's overhead), 0 before.
    std::size_t max_app_payload() const;
    // Overhead of the negotiated suite (kRecordOverhead before the handshake completes).
    std::size_t record_overhead() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace rtcat::dtls
