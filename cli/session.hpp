#pragma once
// Runs one Peer on real sockets: binds the host sockets, does the signaling, and drives the
// sans-IO peer from a single poll loop (batched recvmmsg/sendmmsg). What happens on top of the
// connection (file transfer, netcat) is a SessionApp.

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/signaling.hpp"
#include "core/base/time.hpp"
#include "core/peer/peer.hpp"

namespace rtcat::cli {

// Options every peer-role command shares (offer, answer, send-file).
struct PeerOptions {
    std::vector<std::string> stun;
    std::string turn;
    std::vector<std::string> bind;
    bool ice_loopback = false;
    std::string ice_transport = "all";
    double timeout = 60;
    std::string keylog;
    bool json = false;
    std::string sdp_in;
    std::string sdp_out;
    std::string sdp_format = "auto";
    std::string cert;
    std::string key;
    uint32_t max_message_size = 262144;
    // Seconds without progress once connected before giving up (exit 4); 0: never. Negative:
    // the command's default (set by the command before run_session).
    double idle_timeout = -1;
    // For the copy-paste guide on a terminal: what the other side runs ("rtcat answer --out
    // DIR"), filled in by the command.
    std::string other_side;
};

void add_peer_options(CLI::App& sub, PeerOptions& o);

class SessionApp {
public:
    virtual ~SessionApp() = default;
    // The data channel association is up.
    virtual void on_ready(peer::Peer& peer, base::Instant now) = 0;
    virtual void on_event(peer::Peer& peer, peer::Event& event, base::Instant now) = 0;
    // Called once per loop iteration after inputs were handled: fill channels, print progress.
    virtual void pump(peer::Peer& peer, base::Instant now) = 0;
    // An extra fd to poll for readability (stdin in netcat mode or a `-` source), or -1.
    virtual int wants_readable_fd() const { return -1; }
    virtual void on_fd_readable(peer::Peer& /*peer*/, base::Instant /*now*/) {}
    virtual base::Instant poll_timeout() const { return base::kNever; }
    // Grows whenever the application makes progress (bytes, messages): the idle timeout
    // measures the time since it last changed.
    virtual uint64_t activity() const = 0;
    // Done: the loop closes the peer gracefully and returns exit_code().
    virtual bool finished() const = 0;
    virtual int exit_code() const = 0;
    // The peer hung up (DTLS close_notify, SCTP SHUTDOWN or ABORT) or vanished (ICE consent
    // lost) after the association was up and before finished(). Returns the exit code: the
    // application knows whether what it needed was done by then (0), or not.
    virtual int on_peer_gone(peer::Peer& peer, const std::string& why) = 0;
    // Nothing moved for the idle timeout. True: that is how this application ends (the exit
    // code is then exit_code()); false: the session ends with a timeout (exit 4).
    virtual bool on_idle() { return false; }
    // The session ends before finished() (interrupted, failed, timed out): last chance to
    // report. Not called after on_peer_gone().
    virtual void on_abort(const std::string& /*why*/) {}
};

// When each step of connection set-up happened, in ms since run_session() began (negative:
// did not happen). The reference point of "offer -> open" is the offer: written by the offerer,
// read by the answerer; the process start-up before it (certificate, sockets) is `peer_ms`.
struct ConnectTimeline {
    double peer_ms = -1;         // Peer constructed (certificate generated, sockets bound)
    double offer_ms = -1;        // offerer: our offer written; answerer: the offer read
    double answer_ms = -1;       // offerer: the answer read; answerer: our answer written
    double ice_ms = -1;          // a candidate pair selected
    double dtls_ms = -1;         // DTLS handshake done, fingerprint verified
    double sctp_ms = -1;         // SCTP association up (data channels usable)
    double channel_open_ms = -1; // first data channel open (ours acknowledged, or the peer's)
};

struct SessionResult {
    int exit_code = 0;
    std::optional<ice::CandidatePair> pair;
    double seconds_connected = 0;
    // Offer -> first data channel open, in ms (0 when it never opened): what a user waits for
    // once signaling is done, comparable with other stacks' "offer to onopen".
    double connect_ms = 0;
    ConnectTimeline timeline;
    peer::Peer::Stats stats;
    uint64_t kernel_drops = 0;
};

SessionResult run_session(const PeerOptions& options, bool offerer, SessionApp& app);

std::string describe_pair(const ice::CandidatePair& pair);
bool pair_is_relayed(const ice::CandidatePair& pair);

} // namespace rtcat::cli
