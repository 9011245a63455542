#pragma once
// ICE agent (RFC 8445, full ICE, one component, UDP) with consent freshness (RFC 7675).
//
// Sans-IO: every input — a received datagram, a timeout, an application call — takes `now`;
// after each one the caller drains poll_transmit() and poll_event(), then waits until
// poll_timeout(). Nothing here reads a clock or touches a socket. Transmit.source names the
// local UDP socket to send from (one of AgentConfig::host_sockets); the driver sets
// Datagram.destination to the bound address of the socket a datagram arrived on.
//
// What is implemented, and the simplifications (RFC sections where decisions are made):
// - Gathering (§5.1.1): a host candidate per host socket; server-reflexive candidates from
//   Binding requests to each STUN server from each host socket of the same family; one relayed
//   candidate from a stun::TurnClient on the first host socket of the TURN server's family.
//   Non-trickle by default (the caller may still wait for GatheringComplete), but remote
//   candidates are accepted at any time (trickled in or learned as peer-reflexive).
// - Checklist (§6.1.2): pairs of the same family and component; server-reflexive locals are
//   never paired: §6.1.2.4 replaces them by their base, which is already paired (host), so
//   the pruning is done by construction. Pairs start Frozen except the best pair of each
//   foundation (§6.1.2.6, one data stream); one check leaves every Ta (§6.1.4.2), triggered
//   checks (§7.3.1.4) first. A check on an In-Progress pair is left to its retransmissions
//   instead of being cancelled and re-sent (§7.3.1.4 allows either outcome to work).
// - Checks carry USERNAME "rufrag:lufrag", PRIORITY, ICE-CONTROLLING/-CONTROLLED,
//   USE-CANDIDATE when nominating, MESSAGE-INTEGRITY (remote pwd) and FINGERPRINT.
//   Incoming requests need FINGERPRINT (else dropped: it is how ICE traffic is told apart,
//   §7.3), USERNAME and MESSAGE-INTEGRITY (else 400, RFC 8489 §9.1.3); a USERNAME that does
//   not start with our ufrag, or a bad MESSAGE-INTEGRITY, gets 401 without integrity
//   (RFC 8489 §9.1.3) and is counted in Stats::bad_integrity; such a request never creates
//   candidates, pairs or nominations. Responses are verified with the remote pwd: missing or
//   bad integrity is ignored (the check keeps retransmitting) and counted.
// - Requests that arrive before the remote credentials are answered (we know our pwd); the
//   peer-reflexive candidate and the triggered check wait until set_remote_credentials().
// - Nomination (§8.1.1, regular): the controlling agent nominates the best valid pair as soon
//   as no higher-priority pair is still pending, or kNominationSettle after the first valid
//   pair, by a USE-CANDIDATE check sent at once (not paced: it is one check and it is on the
//   critical path of connection set-up). The controlled agent selects the highest-priority
//   nominated valid pair and so also accepts aggressive nomination (USE-CANDIDATE on every
//   check, as some stacks still do). Ordinary checks stop once a pair is selected; triggered
//   checks go on so a peer can still nominate.
// - Data before selection (§12.1: "MAY send data on any valid pair before selected pairs have
//   been produced"): send() works as soon as a pair is valid, on the highest-priority valid
//   pair, and on the selected pair only once there is one. A successful check is also consent
//   (RFC 7675 §3: ICE obtains the initial consent). This lets DTLS start a round trip earlier
//   on the controlled side, whose pair is valid before the controlling agent's nomination
//   reaches it.
// - Consent (RFC 7675): on the selected pair a Binding request every consent_interval,
//   randomised to 0.8–1.2× (§5.1); each authenticated success response refreshes consent;
//   after consent_timeout without one the agent enters Failed ("consent lost") and stops
//   sending (§5.1: consent expiry stops all transmission on the pair).
// - States (simplified from RFC 8445 §6.1.3 / W3C RTCIceConnectionState): New (no remote
//   credentials yet), Checking, Connected (a pair selected), Failed, Closed. There is no
//   Completed (nothing distinguishes it with one component) and no Disconnected (consent is
//   either fresh or lost).
// - Retransmissions of checks (§14.3): the RFC's RTO (≥ 500 ms) is tuned for pacing on the
//   Internet; rtcat targets LANs and loopback first, so checks use kCheckRto (50 ms initial,
//   doubling, 7 transmissions): a lost check costs 50 ms instead of 500 ms.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/base/time.hpp"
#include "core/ice/candidate.hpp"
#include "core/net/address.hpp"
#include "core/net/datagram.hpp"
#include "core/stun/message.hpp"
#include "core/stun/transaction.hpp"
#include "core/stun/turn_client.hpp"

namespace rtcat::ice {

// --- tunables -------------------------------------------------------------------------------
// Initial RTO of a connectivity check (RFC 8445 §14.3 lets the agent choose; see above).
inline constexpr base::Duration kCheckRto = base::ms(50);
inline constexpr int kCheckTransmissions = 7; // 0, 50, 150, 350, 750, 1550, 3150 ms
inline constexpr int kCheckRm = 16;           // then 800 ms for the last answer
// STUN server Binding requests while gathering: servers are on the Internet, but gathering
// gives up after gathering_timeout anyway.
inline constexpr base::Duration kGatherRto = base::ms(250);
// How long the controlling agent waits after the first valid pair for a better one to
// succeed before nominating (only when better pairs are still pending).
inline constexpr base::Duration kNominationSettle = base::ms(20);
// Consent checks: one transaction per interval, retransmitted a few times so a single loss
// does not cost a whole interval (RFC 7675 §5.1 leaves the schedule to the agent).
inline constexpr base::Duration kConsentRto = base::ms(500);
inline constexpr int kConsentTransmissions = 4;
// RFC 8445 §6.1.2.5: limit the checklist size (pairs beyond it are not formed).
inline constexpr std::size_t kMaxPairs = 100;
// Remote candidates kept (trickled or peer-reflexive); more are ignored and counted.
inline constexpr std::size_t kMaxRemoteCandidates = 100;

struct StunServer {
    net::SocketAddr address;
};
struct TurnServer {
    net::SocketAddr address;
    std::string username, password;
};

struct AgentConfig {
    bool controlling = false;
    // Caller-generated (RFC 8445 §5.3: ufrag ≥ 4 and pwd ≥ 22 ice-chars).
    std::string local_ufrag, local_pwd;
    std::uint64_t tie_breaker = 0;
    // One per bound local UDP socket (the driver binds them, port 0 → ephemeral; the bound
    // addresses go here). Each becomes a host candidate and the base of srflx/relay ones.
    std::vector<net::SocketAddr> host_sockets;
    std::vector<StunServer> stun_servers;
    std::optional<TurnServer> turn; // relayed candidate from the first host socket of its family
    bool relay_only = false;        // --ice-transport relay: only relayed locals are offered/paired
    base::Duration ta = base::ms(5); // check pacing (RFC 8445 §14.2: implementation's choice)
    base::Duration consent_interval = std::chrono::seconds(5); // RFC 7675 §5.1, ×0.8–1.2
    base::Duration consent_timeout = std::chrono::seconds(30); // RFC 7675 §5.1
    base::Duration gathering_timeout = std::chrono::seconds(3);
    // Failed when nothing is selected this long after the remote credentials arrived.
    base::Duration connect_timeout = std::chrono::seconds(30);
    std::string software = "rtcat";
};

struct CandidatePair {
    Candidate local;
    Candidate remote;
    std::uint64_t priority = 0;
    bool nominated = false;
    base::Duration rtt{0}; // of the latest successful check on the pair
};

enum class State { New, Checking, Connected, Failed, Closed };
std::string_view state_name(State s);

namespace event {
struct LocalCandidate {
    Candidate candidate;
};
struct GatheringComplete {};
struct StateChanged {
    State state = State::New;
    // Failed: "no candidate pair succeeded", "consent lost (no response for 30 s)",
    // "TURN allocation failed: ...".
    std::string reason;
};
struct SelectedPair { // on selection and on every change
    CandidatePair pair;
};
} // namespace event

using Event = std::variant<event::LocalCandidate, event::GatheringComplete, event::StateChanged,
                           event::SelectedPair>;

struct Stats {
    std::uint64_t check_rounds = 0; // checklist restarts after every pair failed (lossy paths)
    std::uint64_t checks_sent = 0;  // connectivity checks started (not retransmissions)
    std::uint64_t check_retransmissions = 0;
    std::uint64_t checks_received = 0;           // authenticated Binding requests answered
    std::uint64_t responses_received = 0;        // authenticated responses to our checks
    std::uint64_t bad_integrity = 0;             // requests/responses failing USERNAME/MI checks
    std::uint64_t bad_requests = 0;              // requests without USERNAME/MI/PRIORITY (400)
    std::uint64_t no_fingerprint = 0;            // STUN without FINGERPRINT (not ICE traffic)
    std::uint64_t malformed = 0;                 // undecodable STUN
    std::uint64_t unknown_transaction = 0;       // responses to nothing we sent
    std::uint64_t asymmetric_responses = 0;      // §7.2.5.2.1 failures
    std::uint64_t role_conflicts = 0;            // 487s sent or received, switches done
    std::uint64_t unknown_source_drops = 0;      // non-STUN from addresses with no candidate
    std::uint64_t policy_drops = 0;              // traffic on sockets relay-only mode does not use
    std::uint64_t remote_candidates_ignored = 0; // wrong component, full, or after close
    std::uint64_t prflx_remote = 0;              // peer-reflexive remote candidates learned
    std::uint64_t consent_checks_sent = 0;
    std::uint64_t consent_responses = 0;
    std::uint64_t send_dropped = 0;          // send() with no valid pair or without consent
    std::uint64_t sent_before_selection = 0; // send() on a valid pair before selection (§12.1)
};

class Agent {
public:
    // Emits the host candidates at once (poll_event) and starts srflx/relay gathering.
    Agent(AgentConfig config, base::Instant now);
    ~Agent();
    Agent(const Agent&) = delete;
    Agent& operator=(const Agent&) = delete;

    void set_remote_credentials(std::string ufrag, std::string pwd, base::Instant now);
    // Candidates of another component, or TCP (refused by parse_candidate), are ignored.
    void add_remote_candidate(const Candidate& c, base::Instant now);
    // The peer has sent all its candidates: once every pair has failed, Failed comes without
    // waiting for connect_timeout.
    void end_of_remote_candidates(base::Instant now);

    // Every received datagram. Returns the application payload (DTLS/SRTP bytes): direct
    // datagrams from a known remote candidate, or unwrapped TURN Data indications /
    // ChannelData from our TURN server (source = the peer, destination = our relayed
    // address). STUN/TURN signalling is consumed (nullopt). Non-STUN datagrams from unknown
    // sources are dropped and counted.
    std::optional<net::Datagram> handle_receive(net::Datagram&& d, base::Instant now);
    void handle_timeout(base::Instant now);

    // Application data on the selected pair, or before selection on the best valid pair
    // (ChannelData/Send indication when the local candidate is relayed). false when no pair is
    // valid yet, or consent was lost.
    bool send(base::Bytes payload, base::Instant now);
    // send() would send: some pair is valid (or selected) and consent holds.
    bool can_send() const { return has_route_; }

    std::optional<net::Transmit> poll_transmit();
    std::optional<Event> poll_event();
    base::Instant poll_timeout() const;

    // Releases the TURN allocation (its Refresh goes out via poll_transmit) and stops
    // everything else. State Closed.
    void close(base::Instant now);

    State state() const { return state_; }
    std::optional<CandidatePair> selected_pair() const;
    bool controlling() const { return controlling_; }
    const Stats& stats() const { return stats_; }
    const std::vector<Candidate>& local_candidates() const { return local_; }
    const std::vector<Candidate>& remote_candidates() const { return remote_; }
    // Every pair with its state, for diagnostics ("frozen", "waiting", "in-progress",
    // "succeeded", "failed").
    struct PairInfo {
        CandidatePair pair;
        std::string_view state;
        bool valid = false;
    };
    std::vector<PairInfo> pairs() const;
    bool gathering_complete() const { return gathering_done_; }

private:
    enum class PairState { Frozen, Waiting, InProgress, Succeeded, Failed };
    struct Pair {
        std::size_t local = 0;
        std::size_t remote = 0;
        std::uint64_t priority = 0;
        PairState state = PairState::Frozen;
        bool valid = false;                    // in the valid list (§7.2.5.3.2)
        bool nominated = false;                // valid and nominated (§8.1.1 / §7.3.1.5)
        bool nominate_on_success = false;      // USE-CANDIDATE seen before our check succeeded
        bool in_checklist = true;              // false for valid pairs built from a prflx local
        std::optional<std::size_t> valid_pair; // the valid pair this check produced
        base::Duration rtt{0};
    };
    enum class CheckKind { Ordinary, Nomination, Consent };
    struct CheckCtx {
        std::size_t pair = 0;
        CheckKind kind = CheckKind::Ordinary;
        bool sent_controlling = false;
        net::SocketAddr local_base; // expected destination of the response
        net::SocketAddr remote;     // expected source of the response
    };
    struct GatherCtx {
        std::size_t host = 0; // index in local_ of the host candidate
        net::SocketAddr server;
    };

    // gathering
    void add_local(Candidate c, std::uint32_t local_pref, bool advertise);
    void start_gathering(base::Instant now);
    void finish_gathering_if_done();
    void on_gather_event(const stun::TransactionEvent& ev);
    void on_turn_event(stun::TurnEvent&& ev, base::Instant now);
    // checklist
    void form_pairs_for_local(std::size_t local);
    void form_pairs_for_remote(std::size_t remote);
    std::optional<std::size_t> add_pair(std::size_t local, std::size_t remote, bool in_checklist);
    std::optional<std::size_t> find_pair(std::size_t local, std::size_t remote) const;
    std::uint64_t pair_priority(std::size_t local, std::size_t remote) const;
    void recompute_priorities();
    std::string pair_foundation(const Pair& p) const;
    void unfreeze_foundation(const Pair& p);
    bool checks_allowed() const;
    void schedule_checks(base::Instant now);
    void on_pacing_timer(base::Instant now);
    void send_check(std::size_t pair, CheckKind kind, base::Instant now);
    void on_check_event(const stun::TransactionEvent& ev, base::Instant now);
    void fail_check(const CheckCtx& ctx, base::Instant now);
    void on_check_success(const CheckCtx& ctx, const stun::Message& resp, base::Duration rtt,
                          base::Instant now);
    // The highest-priority valid, succeeded pair (nomination candidate and pre-selection route).
    std::optional<std::size_t> best_valid_pair() const;
    void maybe_nominate(base::Instant now);
    void update_selection(base::Instant now);
    void update_route();
    void set_route(std::size_t pair);
    void check_failure(base::Instant now);
    void switch_role(base::Instant now);
    CandidatePair make_pair(std::size_t pair) const;
    // receive path
    std::optional<net::Datagram> receive_slow(net::Datagram&& d, base::Instant now);
    std::optional<net::Datagram> receive_on_local(net::Datagram&& d, std::size_t local,
                                                  base::Instant now);
    void handle_request(const stun::Message& msg, base::ByteView raw, const net::SocketAddr& from,
                        std::size_t local, base::Instant now);
    void handle_response(const stun::Message& msg, base::ByteView raw, const net::Datagram& d,
                         base::Instant now);
    void respond(const stun::Message& resp, const base::Bytes* key, const net::SocketAddr& from,
                 std::size_t local);
    void transmit_from(const net::SocketAddr& base, const net::SocketAddr& to, base::Bytes payload,
                       base::Instant now);
    std::optional<std::size_t> local_for_destination(const net::SocketAddr& dest) const;
    std::optional<std::size_t> remote_by_address(const net::SocketAddr& a) const;
    bool is_relay_base(const net::SocketAddr& a) const;
    // consent / state
    void on_consent_timer(base::Instant now);
    void set_state(State s, std::string reason);
    void pump(base::Instant now); // drains the inner machines after every input
    base::Duration consent_jitter();

    AgentConfig config_;
    bool controlling_;
    base::Bytes local_key_;
    std::optional<std::string> remote_ufrag_;
    base::Bytes remote_key_;
    State state_ = State::New;
    Stats stats_;

    std::vector<Candidate> local_;
    std::vector<std::uint32_t> local_pref_; // per local candidate (§5.1.2.2)
    std::vector<bool> local_paired_;        // host (unless relay-only) and relay candidates
    std::vector<Candidate> remote_;
    std::vector<Pair> pairs_;
    std::deque<std::size_t> triggered_;
    std::map<stun::TransactionId, CheckCtx> checks_;
    stun::TransactionClient check_tx_;
    std::uint64_t next_prflx_foundation_ = 1;
    // Triggered checks (and their peer-reflexive candidates) held until the remote
    // credentials arrive are simply pairs in triggered_: pacing starts with the credentials.

    // gathering
    stun::TransactionClient gather_tx_;
    std::map<stun::TransactionId, GatherCtx> gathers_;
    std::unique_ptr<stun::TurnClient> turn_;
    net::SocketAddr turn_local_;
    std::size_t turn_host_ = 0;              // local_ index of the TURN client's socket
    std::optional<std::size_t> relay_local_; // local_ index of the relayed candidate
    std::set<net::IpAddr> permissions_asked_;
    std::optional<net::SocketAddr> relayed_;
    bool turn_pending_ = false;
    bool gathering_done_ = false;
    base::Instant gathering_deadline_ = base::kNever;

    // timers
    base::Instant next_check_at_ = base::kNever;
    base::Instant last_check_at_ = base::Instant::min();
    base::Instant nominate_at_ = base::kNever;
    base::Instant first_valid_at_ = base::kNever;
    base::Instant connect_deadline_ = base::kNever;
    base::Instant consent_next_ = base::kNever;
    base::Instant consent_expiry_ = base::kNever;
    bool end_of_remote_ = false;
    bool nominating_ = false;

    std::optional<std::size_t> selected_;
    bool has_selected_ = false;
    // Where send() goes, flattened for the fast paths of handle_receive() and send(): the
    // selected pair, or before selection the best valid pair (§12.1).
    bool has_route_ = false;
    std::size_t route_pair_ = 0;
    bool route_relayed_ = false;
    net::SocketAddr route_local_base_;
    net::SocketAddr route_remote_;

    base::Instant now_{}; // of the input being handled (for helpers deep in the call tree)
    std::uint64_t rng_state_;
    std::deque<net::Transmit> transmits_;
    std::deque<Event> events_;
};

} // namespace rtcat::ice
