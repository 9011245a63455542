#pragma once
// The stun-probe machine: binding tests against every server, RFC 5780 NAT behaviour
// discovery (mapping, filtering, hairpinning) and an end-to-end TURN relay check, all at once
// over a handful of local sockets.
//
// Sans-IO: start(), handle_receive(), handle_unreachable() and handle_timeout() mutate the
// state; after each the caller drains poll_transmit() and sleeps until poll_timeout(). Each
// Transmit's `source` names the local socket to send from (one of the addresses in
// ProbeConfig); each received Datagram's `destination` names the socket it arrived on.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/time.hpp"
#include "core/net/datagram.hpp"
#include "core/stun/nat_behavior.hpp"
#include "core/stun/transaction.hpp"

namespace rtcat::stun {

class TurnClient;

struct ProbeTarget {
    std::string label; // as the user wrote it
    net::SocketAddr address;
};

struct TurnTarget {
    std::string label;
    net::SocketAddr server;
    std::string username;
    std::string password;
};

struct ProbeConfig {
    std::vector<ProbeTarget> servers;
    net::SocketAddr primary;   // binding and mapping tests
    net::SocketAddr filtering; // a fresh mapping for the filtering tests (RFC 5780 §4.4)
    net::SocketAddr hairpin;   // sends to the primary socket's public mapping (§4.5)
    std::optional<TurnTarget> turn;
    net::SocketAddr turn_a; // two allocations that relay to each other
    net::SocketAddr turn_b;
    int count = 3; // binding requests per server
    RetransmitConfig rtx;
    // Tests where silence is the answer (filtering, hairpinning, alternate address) wait
    // 250+500+1000 ms plus 1 s: long enough for real paths, short enough to keep probes quick.
    RetransmitConfig silence_rtx{base::ms(250), 4, 4};
    bool behaviour_tests = true;
    std::vector<net::IpAddr> local_addresses; // ours, to tell "no NAT"
    std::string software;
    base::Instant deadline = base::kNever;
};

// Error: the server answered, but not with a usable mapping (an error response, or a success
// response without a mapped address). It was reachable, unlike Timeout and Unreachable.
enum class ServerStatus { Pending, Ok, Timeout, Unreachable, Error };
std::string_view server_status_name(ServerStatus s);

struct ServerResult {
    ProbeTarget target;
    ServerStatus status = ServerStatus::Pending;
    std::string error;
    // From an error response's ERROR-CODE (RFC 8489 §14.8), as the server sent them: the reason
    // is server text, escape it before printing it as text.
    std::optional<int> error_code;
    std::string error_reason;
    std::optional<net::SocketAddr> mapped;
    std::optional<net::SocketAddr> response_origin;
    std::optional<net::SocketAddr> other_address;
    std::string software;    // server text, as sent
    int sent = 0;            // requests (transactions) started
    int answered = 0;        // with a success response
    int lost = 0;            // timed out after all retransmissions
    int retransmissions = 0; // over all requests
    std::vector<base::Duration> rtts;
    int ignored = 0; // datagrams from this server that were malformed or matched nothing
    bool mapping_changed = false; // different mapped addresses across requests

    std::optional<base::Duration> rtt_min() const;
    std::optional<base::Duration> rtt_max() const;
    std::optional<base::Duration> rtt_avg() const;
};

struct NatResult {
    Mapping mapping = Mapping::Unknown;
    std::string mapping_method; // "rfc5780", "servers", "local-address" or ""
    Filtering filtering = Filtering::Unknown;
    std::optional<bool> hairpinning;
    std::optional<net::SocketAddr> public_address;
    std::optional<bool> behind_nat;
    std::string rfc5780_server;                  // label of the server used for the RFC 5780 tests
    std::optional<net::SocketAddr> test2_mapped; // alternate IP, primary port
    std::optional<net::SocketAddr> test3_mapped; // alternate IP and port
    std::vector<std::string> notes;
};

enum class TurnStatus { NotRun, Pending, Ok, AuthFailed, Unreachable, Failed };
std::string_view turn_status_name(TurnStatus s);

struct TurnResult {
    TurnStatus status = TurnStatus::NotRun;
    std::string label;
    net::SocketAddr server;
    std::string realm;
    std::string error;
    std::string software;
    std::optional<net::SocketAddr> relayed;
    std::optional<net::SocketAddr> mapped;
    base::Duration lifetime{0};
    std::optional<bool> relay_ok;
    std::optional<base::Duration> relay_rtt;
    std::size_t relay_bytes = 0;
    bool released = false;
};

struct ProbeReport {
    std::vector<ServerResult> servers;
    NatResult nat;
    TurnResult turn;
    Verdict verdict;
    bool deadline_hit = false;
    std::uint64_t ignored_datagrams = 0; // malformed, unmatched, or from strangers
};

class Prober {
public:
    explicit Prober(ProbeConfig config);
    ~Prober();
    Prober(const Prober&) = delete;
    Prober& operator=(const Prober&) = delete;

    void start(base::Instant now);
    void handle_receive(const net::Datagram& d, base::Instant now);
    // An ICMP error for a datagram `local` sent to `destination` (port/host unreachable).
    void handle_unreachable(const net::SocketAddr& local, const net::SocketAddr& destination,
                            const std::string& reason, base::Instant now);
    void handle_timeout(base::Instant now);

    std::optional<net::Transmit> poll_transmit();
    base::Instant poll_timeout() const;

    bool done() const { return finished_; }
    // Complete once done(); a snapshot of progress before.
    const ProbeReport& report() const { return report_; }

private:
    enum class Test : std::uint8_t {
        Binding,
        Mapping2,
        Mapping3,
        Filter1,
        Filter2,
        Filter3,
        Hairpin
    };
    struct Behaviour {
        bool started = false;
        int server = -1; // index of the RFC 5780 server
        std::optional<TransactionId> mapping2, mapping3, filter1, filter2, filter3, hairpin;
        net::SocketAddr mapping2_dest, mapping3_dest, hairpin_dest;
        std::optional<bool> filter2_answered, filter3_answered;
        bool filter_aborted = false;
        bool mapping_failed = false;
        bool pending() const {
            return mapping2 || mapping3 || filter1 || filter2 || filter3 || hairpin;
        }
    };

    void send_binding(int server, base::Instant now);
    TransactionId start_test(Test test, int index, const net::SocketAddr& source,
                             const net::SocketAddr& dest, const RetransmitConfig& rtx,
                             std::optional<std::pair<bool, bool>> change, base::Instant now);
    void on_event(const TransactionEvent& ev, base::Instant now);
    void on_binding_event(int server, const TransactionEvent& ev, base::Instant now);
    void on_behaviour_event(Test test, const TransactionEvent& ev, base::Instant now);
    void maybe_start_behaviour(base::Instant now);
    void turn_receive(int which, const net::Datagram& d, base::Instant now);
    void drive_turn(base::Instant now);
    void drain(base::Instant now);
    void check_done(base::Instant now);
    void finish(base::Instant now);
    int server_by_address(const net::SocketAddr& a) const;

    ProbeConfig cfg_;
    ProbeReport report_;
    TransactionClient tc_;
    std::vector<std::optional<TransactionId>> in_flight_; // per server
    Behaviour beh_;
    std::deque<net::Transmit> out_;
    bool started_ = false;
    bool finished_ = false;

    // TURN check: two allocations on one server relay a message to each other.
    std::unique_ptr<TurnClient> turn_[2];
    struct TurnProgress;
    std::unique_ptr<TurnProgress> tp_;
};

} // namespace rtcat::stun
