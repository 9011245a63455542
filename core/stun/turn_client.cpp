#include "core/stun/turn_client.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "core/base/check.hpp"
#include "core/base/log.hpp"
#include "core/net/demux.hpp"

namespace rtcat::stun {

namespace {

constexpr std::string_view kLog = "turn";
constexpr std::uint8_t kUdp = 17; // REQUESTED-TRANSPORT, RFC 8656 §7.1

std::uint32_t seconds(base::Duration d) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    return static_cast<std::uint32_t>(std::clamp<std::int64_t>(s, 0, 0xFFFFFFFF));
}

} // namespace

std::string_view turn_failure_name(TurnFailure f) {
    switch (f) {
    case TurnFailure::AuthFailed:
        return "authentication failed";
    case TurnFailure::Timeout:
        return "timeout";
    case TurnFailure::ServerError:
        return "server error";
    case TurnFailure::Malformed:
        return "malformed response";
    case TurnFailure::NotAllocated:
        return "no allocation";
    }
    return "?";
}

TurnClient::TurnClient(TurnConfig config)
    : config_(std::move(config)), creds_(config_.username, config_.password) {}

// --- application calls ---------------------------------------------------------------------

void TurnClient::allocate(base::Instant now) {
    RTCAT_CHECK(state_ == State::Idle, "allocate() called twice");
    state_ = State::Allocating;
    Request req;
    req.kind = Kind::Allocate;
    req.lifetime = config_.requested_lifetime;
    send_request(std::move(req), now);
    drain(now);
}

void TurnClient::create_permission(const net::IpAddr& peer, base::Instant now) {
    request_permission(peer, now);
    drain(now);
}

void TurnClient::bind_channel(const net::SocketAddr& peer, base::Instant now) {
    request_channel(peer, now);
    drain(now);
}

void TurnClient::request_permission(const net::IpAddr& peer, base::Instant now) {
    if (state_ == State::Allocating) {
        if (std::find(deferred_permissions_.begin(), deferred_permissions_.end(), peer) ==
            deferred_permissions_.end())
            deferred_permissions_.push_back(peer);
        return;
    }
    if (!live()) {
        events_.push_back(
            turn_event::PermissionFailed{peer, TurnFailure::NotAllocated, 0, "no allocation"});
        return;
    }
    auto it = permissions_.find(peer);
    if (it != permissions_.end() && it->second.in_flight)
        return;
    start_permission(peer, now);
}

void TurnClient::request_channel(const net::SocketAddr& peer, base::Instant now) {
    if (state_ == State::Allocating) {
        if (std::find(deferred_channels_.begin(), deferred_channels_.end(), peer) ==
            deferred_channels_.end())
            deferred_channels_.push_back(peer);
        return;
    }
    if (!live()) {
        events_.push_back(
            turn_event::ChannelBindFailed{peer, 0, TurnFailure::NotAllocated, 0, "no allocation"});
        return;
    }
    if (channels_.contains(peer))
        return; // bound or being bound; kept alive by the refresh timer
    // RFC 8656 §12: a number stays tied to its peer for the binding's lifetime and 5 minutes
    // after, so numbers are never reused within one allocation (4096 is plenty for a CLI).
    if (next_channel_ > kMaxChannel) {
        events_.push_back(turn_event::ChannelBindFailed{peer, 0, TurnFailure::ServerError, 0,
                                                        "no free channel number"});
        return;
    }
    std::uint16_t number = next_channel_++;
    channels_[peer] = Channel{number, false, false, base::kNever};
    channel_peers_[number] = peer;
    start_channel_bind(peer, now);
}

bool TurnClient::send(const net::SocketAddr& peer, base::ByteView data, base::Instant now) {
    (void)now;
    if (!live()) {
        ++stats_.send_dropped;
        return false;
    }
    auto ch = channels_.find(peer);
    // RFC 8656 §12.1: ChannelData only once the ChannelBind succeeded; until then the Send
    // indication carries the data (and works as long as a permission exists).
    if (ch != channels_.end() && ch->second.bound) {
        transmits_.push_back(net::Transmit{config_.local, config_.server,
                                           encode_channel_data(ch->second.number, data)});
        return true;
    }
    // RFC 8656 §11.1: XOR-PEER-ADDRESS + DATA. DONT-FRAGMENT is left out (it is optional and
    // a server without support would reject the indication's comprehension-required
    // attribute). Indications are not authenticated (RFC 8656 §11).
    Message ind = Message::indication(Method::Send);
    ind.add_xor_address(attr::XorPeerAddress, peer);
    ind.add_raw(attr::Data, data);
    transmits_.push_back(net::Transmit{config_.local, config_.server, encode(ind)});
    return true;
}

void TurnClient::release(base::Instant now) {
    if (state_ == State::Allocating) {
        // The server may still create the allocation; it then expires on its own lifetime.
        for (const auto& [tid, req] : requests_)
            tx_.cancel(tid);
        requests_.clear();
        deferred_permissions_.clear();
        deferred_channels_.clear();
        state_ = State::Released;
        events_.push_back(turn_event::Released{false});
        return;
    }
    if (state_ != State::Allocated)
        return;
    // Outstanding refreshes no longer matter; their answers will be ignored.
    for (const auto& [tid, req] : requests_)
        tx_.cancel(tid);
    requests_.clear();
    permissions_.clear();
    channels_.clear();
    channel_peers_.clear();
    refresh_at_ = base::kNever;
    refresh_in_flight_ = false;
    state_ = State::Releasing;
    Request req;
    req.kind = Kind::Release;
    send_request(std::move(req), now);
    drain(now);
}

// --- requests ------------------------------------------------------------------------------

Message TurnClient::build(const Request& req) const {
    Message m;
    switch (req.kind) {
    case Kind::Allocate:
        m = Message::request(Method::Allocate);
        m.add_requested_transport(kUdp);
        m.add_u32(attr::Lifetime, seconds(req.lifetime));
        // RFC 8656 §7.1: without it the relayed address is IPv4, whatever family we came over.
        if (config_.requested_family == net::Family::V6)
            m.add_u32(attr::RequestedAddressFamily, 0x02000000u);
        else if (config_.requested_family == net::Family::V4)
            m.add_u32(attr::RequestedAddressFamily, 0x01000000u);
        break;
    case Kind::Refresh:
        m = Message::request(Method::Refresh);
        m.add_u32(attr::Lifetime, seconds(req.lifetime));
        break;
    case Kind::Release:
        // RFC 8656 §8: a Refresh with LIFETIME 0 deletes the allocation.
        m = Message::request(Method::Refresh);
        m.add_u32(attr::Lifetime, 0);
        break;
    case Kind::CreatePermission:
        // RFC 8656 §9.1: the port of XOR-PEER-ADDRESS is ignored by the server.
        m = Message::request(Method::CreatePermission);
        m.add_xor_address(attr::XorPeerAddress, net::SocketAddr(req.peer_ip, 0));
        break;
    case Kind::ChannelBind:
        m = Message::request(Method::ChannelBind);
        m.add_channel_number(req.channel);
        m.add_xor_address(attr::XorPeerAddress, req.peer);
        break;
    }
    // RFC 8489 §14.14: SOFTWARE SHOULD be in client requests.
    if (!config_.software.empty())
        m.add_string(attr::Software, config_.software);
    if (req.authenticated)
        creds_.add_attributes(m);
    return m;
}

void TurnClient::send_request(Request req, base::Instant now) {
    // RFC 8489 §9.2.3: the first request goes out without credentials; once a challenge gave
    // us realm and nonce every request carries them (§9.2.4), sparing a 401 round trip.
    req.authenticated = creds_.ready();
    if (req.authenticated) {
        req.key = creds_.key();
        req.sha256 = creds_.use_sha256();
    }
    Message msg = build(req);
    EncodeOptions opts;
    if (req.authenticated) {
        opts.integrity_key = &req.key;
        opts.sha256 = req.sha256;
    }
    base::Bytes wire = encode(msg, opts);
    tx_.start(msg, std::move(wire), config_.server, config_.local, now, config_.rtx);
    requests_.emplace(msg.transaction_id(), std::move(req));
}

void TurnClient::start_permission(const net::IpAddr& peer, base::Instant now) {
    auto& perm = permissions_[peer];
    perm.in_flight = true;
    Request req;
    req.kind = Kind::CreatePermission;
    req.peer_ip = peer;
    send_request(std::move(req), now);
}

void TurnClient::start_channel_bind(const net::SocketAddr& peer, base::Instant now) {
    auto& ch = channels_.at(peer);
    ch.in_flight = true;
    Request req;
    req.kind = Kind::ChannelBind;
    req.peer = peer;
    req.channel = ch.number;
    send_request(std::move(req), now);
}

void TurnClient::schedule_allocation_refresh(base::Duration lifetime, base::Instant now) {
    base::Duration lead = lifetime > 2 * kAllocationRefreshMargin
                              ? lifetime - kAllocationRefreshMargin
                              : lifetime / 2;
    refresh_at_ = now + lead;
}

// --- receive path --------------------------------------------------------------------------

bool TurnClient::handle_receive(const net::Datagram& d, base::Instant now) {
    if (d.source != config_.server)
        return false;
    bool ours = false;
    switch (net::classify(d.payload)) {
    case net::PacketKind::Stun: {
        auto msg = decode(d.payload);
        if (!msg.ok()) {
            ++stats_.malformed;
            RTCAT_DEBUG(kLog, "dropping undecodable STUN from server: {}", msg.error().message);
            ours = true;
            break;
        }
        handle_stun(*msg, d.payload, now, ours);
        break;
    }
    case net::PacketKind::TurnChannel:
        handle_channel_data(d.payload);
        ours = true;
        break;
    default:
        break;
    }
    drain(now);
    return ours;
}

void TurnClient::handle_stun(const Message& msg, base::ByteView raw, base::Instant now,
                             bool& ours) {
    if (msg.cls() == Class::Indication) {
        if (msg.method() != Method::Data)
            return;
        ours = true;
        if (!msg.unknown_comprehension_required().empty()) {
            ++stats_.unknown_attributes; // RFC 8489 §6.3.2: discard the indication
            return;
        }
        auto peer = msg.get_xor_address(attr::XorPeerAddress);
        const auto* data = msg.find(attr::Data);
        if (!peer || !data) {
            ++stats_.malformed; // RFC 8656 §11.6: both are required
            return;
        }
        if (!live()) {
            ++stats_.unexpected;
            return;
        }
        // RFC 8656 §11.6: the client SHOULD discard data from peers it has no permission for.
        if (!permissions_.contains(peer->ip())) {
            ++stats_.no_permission;
            return;
        }
        events_.push_back(turn_event::Data{*peer, data->value, false});
        return;
    }
    if (msg.cls() == Class::Request)
        return;

    auto it = requests_.find(msg.transaction_id());
    if (it == requests_.end())
        return; // another component's transaction with the same server, or a late answer
    ours = true;
    const Request& req = it->second;

    auto ec = msg.cls() == Class::Error ? msg.error_code() : std::nullopt;
    int code = ec ? ec->code : 0;
    // RFC 8489 §9.2.5: 401 and 438 are answered before any integrity check (the server may be
    // unable to sign them); everything else answering an authenticated request MUST carry a
    // valid MESSAGE-INTEGRITY(-SHA256) or be discarded as if never received, so that the
    // retransmissions continue. That includes a 400 without integrity.
    bool challenge = code == 401 || code == 438;
    if (req.authenticated && !challenge &&
        check_integrity(raw, req.key) != IntegrityResult::Valid) {
        ++stats_.bad_integrity;
        RTCAT_DEBUG(kLog, "dropping {} {} with missing or bad integrity", method_name(msg.method()),
                    class_name(msg.cls()));
        return;
    }
    // RFC 8489 §9.2.5: a nonce cookie announcing password algorithms without the
    // PASSWORD-ALGORITHMS list means the list was stripped: ignore the response. (A 401/438
    // saying so is refused in on_error, which must not retry.)
    if (!challenge && nonce_bid_down(msg)) {
        ++stats_.bid_down;
        return;
    }
    // RFC 8489 §6.3.3/§6.3.4: a response with unknown comprehension-required attributes is
    // discarded and the transaction has failed.
    auto unknown = msg.unknown_comprehension_required();
    if (!unknown.empty()) {
        ++stats_.unknown_attributes;
        Request failed = std::move(it->second);
        requests_.erase(it);
        tx_.cancel(msg.transaction_id());
        fail_request(failed, TurnFailure::Malformed, code,
                     fmt::format("response carries unknown comprehension-required attribute "
                                 "0x{:04x}",
                                 unknown.front()));
        return;
    }
    bool matched = tx_.handle_response(msg, config_.server, now);
    RTCAT_CHECK(matched, "TURN request known here but not to the transaction client");
}

void TurnClient::handle_channel_data(base::ByteView raw) {
    auto cd = parse_channel_data(raw);
    if (!cd) {
        ++stats_.malformed;
        return;
    }
    if (!live()) {
        ++stats_.unexpected;
        return;
    }
    // RFC 8656 §12.6: data on a channel not bound to any peer is silently discarded. A
    // channel whose ChannelBind answer is still on its way counts as bound: the server only
    // relays on it after binding, and the number is ours.
    auto it = channel_peers_.find(cd->channel);
    if (it == channel_peers_.end()) {
        ++stats_.unknown_channel;
        return;
    }
    events_.push_back(
        turn_event::Data{it->second, base::Bytes(cd->data.begin(), cd->data.end()), true});
}

// --- transaction outcomes ------------------------------------------------------------------

void TurnClient::drain(base::Instant now) {
    // Retries started while handling an outcome queue more transmissions: loop until quiet,
    // moving the transaction client's output into ours so the send order is kept.
    for (;;) {
        bool progress = false;
        while (auto t = tx_.poll_transmit()) {
            transmits_.push_back(std::move(*t));
            progress = true;
        }
        while (auto ev = tx_.poll_event()) {
            progress = true;
            auto it = requests_.find(ev->transaction_id);
            if (it == requests_.end())
                continue; // cancelled while its event was queued
            Request req = std::move(it->second);
            requests_.erase(it);
            if (ev->kind == TransactionEvent::Kind::Timeout)
                on_timeout(req, now);
            else
                on_response(std::move(req), ev->response, now);
        }
        if (!progress)
            break;
    }
    stats_.retransmissions = tx_.retransmissions_sent();
}

void TurnClient::on_response(Request req, const Message& msg, base::Instant now) {
    if (msg.cls() == Class::Success)
        on_success(req, msg, now);
    else
        on_error(std::move(req), msg, now);
}

void TurnClient::on_timeout(const Request& req, base::Instant now) {
    (void)now;
    fail_request(req, TurnFailure::Timeout, 0, "no response from the TURN server");
}

void TurnClient::on_success(const Request& req, const Message& msg, base::Instant now) {
    switch (req.kind) {
    case Kind::Allocate: {
        auto relayed = msg.get_xor_address(attr::XorRelayedAddress);
        auto lifetime = msg.get_u32(attr::Lifetime);
        // RFC 8656 §7.3: the success response carries XOR-RELAYED-ADDRESS and LIFETIME.
        if (!relayed || !lifetime || *lifetime == 0) {
            fail_request(req, TurnFailure::Malformed, 0,
                         "Allocate success without XOR-RELAYED-ADDRESS or LIFETIME");
            return;
        }
        state_ = State::Allocated;
        relayed_ = relayed;
        mapped_ = msg.get_xor_address(attr::XorMappedAddress);
        base::Duration life = std::chrono::seconds(*lifetime);
        schedule_allocation_refresh(life, now);
        events_.push_back(turn_event::Allocated{*relayed, mapped_, life,
                                                msg.get_string(attr::Software).value_or("")});
        auto perms = std::move(deferred_permissions_);
        auto chans = std::move(deferred_channels_);
        deferred_permissions_.clear();
        deferred_channels_.clear();
        for (const auto& ip : perms)
            request_permission(ip, now);
        for (const auto& peer : chans)
            request_channel(peer, now);
        return;
    }
    case Kind::Refresh: {
        refresh_in_flight_ = false;
        // A server must answer with LIFETIME (RFC 8656 §8); assume what we asked if it
        // forgot rather than tearing down a working allocation.
        base::Duration life =
            std::chrono::seconds(msg.get_u32(attr::Lifetime).value_or(seconds(req.lifetime)));
        if (life <= base::Duration::zero()) {
            enter_failed(TurnFailure::ServerError, 0, "refresh granted a zero lifetime");
            return;
        }
        schedule_allocation_refresh(life, now);
        events_.push_back(turn_event::Refreshed{life});
        return;
    }
    case Kind::Release:
        state_ = State::Released;
        channels_.clear();
        channel_peers_.clear();
        events_.push_back(turn_event::Released{true});
        return;
    case Kind::CreatePermission: {
        auto& perm = permissions_[req.peer_ip];
        bool first = !perm.installed;
        perm.installed = true;
        perm.in_flight = false;
        perm.refresh_at = now + kPermissionRefreshInterval;
        if (first)
            events_.push_back(turn_event::PermissionCreated{req.peer_ip});
        return;
    }
    case Kind::ChannelBind: {
        auto it = channels_.find(req.peer);
        if (it == channels_.end())
            return;
        bool first = !it->second.bound;
        it->second.bound = true;
        it->second.in_flight = false;
        it->second.refresh_at = now + kChannelRefreshInterval;
        // RFC 8656 §12.2: a ChannelBind also installs or refreshes the permission for the
        // peer's IP. That permission lives 300 s against the binding's 600 s, so it is
        // tracked and refreshed with CreatePermission like any other.
        auto& perm = permissions_[req.peer.ip()];
        if (!perm.in_flight) {
            perm.installed = true;
            perm.refresh_at = now + kPermissionRefreshInterval;
        }
        if (first)
            events_.push_back(turn_event::ChannelBound{req.peer, req.channel});
        return;
    }
    }
}

void TurnClient::on_error(Request req, const Message& msg, base::Instant now) {
    auto ec = msg.error_code();
    if (!ec) {
        // RFC 8489 §6.3.4: an error response without ERROR-CODE fails the transaction.
        fail_request(req, TurnFailure::Malformed, 0, "error response without ERROR-CODE");
        return;
    }
    std::string reason = ec->reason;
    switch (ec->code) {
    case 401:
        // RFC 8489 §9.2.5: a 401 to a request that already carried credentials means they
        // were refused; retrying with the same ones is pointless.
        if (req.authenticated) {
            fail_request(req, TurnFailure::AuthFailed, 401, reason);
            return;
        }
        [[fallthrough]];
    case 438: {
        // RFC 8489 §9.2.5: 438 Stale Nonce is retried with the new NONCE, once.
        if (ec->code == 438) {
            if (req.stale_retried) {
                fail_request(req, TurnFailure::ServerError, 438, reason);
                return;
            }
            req.stale_retried = true;
            ++stats_.stale_nonce_retries;
        }
        auto result = creds_.accept_challenge(msg);
        switch (result) {
        case LongTermCredentials::Challenge::Accepted:
            send_request(std::move(req), now);
            return;
        case LongTermCredentials::Challenge::MissingRealmOrNonce:
            fail_request(req, TurnFailure::Malformed, ec->code, "challenge without REALM/NONCE");
            return;
        case LongTermCredentials::Challenge::BidDown:
            ++stats_.bid_down;
            fail_request(req, TurnFailure::AuthFailed, ec->code,
                         "nonce cookie announces password algorithms but the list is missing "
                         "(possible bid-down attack)");
            return;
        case LongTermCredentials::Challenge::NoCommonAlgorithm:
            fail_request(req, TurnFailure::AuthFailed, ec->code,
                         "no supported algorithm in PASSWORD-ALGORITHMS");
            return;
        }
        return;
    }
    case 300:
        // RFC 8656 §7.4 / RFC 8489 §10: Try Alternate. Following it would mean a new server
        // and new credentials state; the caller decides.
        fail_request(req, TurnFailure::ServerError, 300, reason,
                     msg.get_address(attr::AlternateServer));
        return;
    default:
        fail_request(req, TurnFailure::ServerError, ec->code, reason);
        return;
    }
}

void TurnClient::fail_request(const Request& req, TurnFailure reason, int code, std::string message,
                              std::optional<net::SocketAddr> alternate) {
    RTCAT_DEBUG(kLog, "request failed: {} ({} {})", turn_failure_name(reason), code, message);
    switch (req.kind) {
    case Kind::Allocate: {
        state_ = State::Failed;
        for (const auto& [tid, r] : requests_)
            tx_.cancel(tid);
        requests_.clear();
        events_.push_back(turn_event::AllocateFailed{reason, code, std::move(message),
                                                     creds_.realm(), alternate});
        for (const auto& ip : deferred_permissions_)
            events_.push_back(
                turn_event::PermissionFailed{ip, TurnFailure::NotAllocated, 0, "no allocation"});
        for (const auto& peer : deferred_channels_)
            events_.push_back(turn_event::ChannelBindFailed{peer, 0, TurnFailure::NotAllocated, 0,
                                                            "no allocation"});
        deferred_permissions_.clear();
        deferred_channels_.clear();
        return;
    }
    case Kind::Refresh:
        // RFC 8656 §8: without a successful refresh the allocation expires; 437 says it is
        // already gone. Either way it cannot be relied on any more.
        enter_failed(reason, code, std::move(message));
        return;
    case Kind::Release:
        state_ = State::Released;
        channels_.clear();
        channel_peers_.clear();
        events_.push_back(turn_event::Released{code == 437});
        return;
    case Kind::CreatePermission:
        permissions_.erase(req.peer_ip);
        events_.push_back(
            turn_event::PermissionFailed{req.peer_ip, reason, code, std::move(message)});
        return;
    case Kind::ChannelBind: {
        auto it = channels_.find(req.peer);
        if (it != channels_.end()) {
            channel_peers_.erase(it->second.number);
            channels_.erase(it);
        }
        events_.push_back(
            turn_event::ChannelBindFailed{req.peer, req.channel, reason, code, std::move(message)});
        return;
    }
    }
}

void TurnClient::enter_failed(TurnFailure reason, int code, std::string message) {
    state_ = State::Failed;
    for (const auto& [tid, r] : requests_)
        tx_.cancel(tid);
    requests_.clear();
    permissions_.clear();
    channels_.clear();
    channel_peers_.clear();
    refresh_at_ = base::kNever;
    refresh_in_flight_ = false;
    events_.push_back(turn_event::Failed{reason, code, std::move(message)});
}

// --- timers --------------------------------------------------------------------------------

void TurnClient::handle_timeout(base::Instant now) {
    tx_.handle_timeout(now);
    drain(now);
    if (!live())
        return;
    if (!refresh_in_flight_ && refresh_at_ <= now) {
        refresh_in_flight_ = true;
        refresh_at_ = base::kNever;
        Request req;
        req.kind = Kind::Refresh;
        req.lifetime = config_.requested_lifetime;
        send_request(std::move(req), now);
    }
    for (auto& [ip, perm] : permissions_)
        if (perm.installed && !perm.in_flight && perm.refresh_at <= now)
            start_permission(ip, now);
    for (auto& [peer, ch] : channels_)
        if (ch.bound && !ch.in_flight && ch.refresh_at <= now)
            start_channel_bind(peer, now);
    drain(now);
}

std::optional<net::Transmit> TurnClient::poll_transmit() {
    if (transmits_.empty())
        return std::nullopt;
    net::Transmit t = std::move(transmits_.front());
    transmits_.pop_front();
    return t;
}

std::optional<TurnEvent> TurnClient::poll_event() {
    if (events_.empty())
        return std::nullopt;
    TurnEvent ev = std::move(events_.front());
    events_.pop_front();
    return ev;
}

base::Instant TurnClient::poll_timeout() const {
    base::Instant next = tx_.poll_timeout();
    if (!live())
        return next;
    if (!refresh_in_flight_)
        next = std::min(next, refresh_at_);
    for (const auto& [ip, perm] : permissions_)
        if (perm.installed && !perm.in_flight)
            next = std::min(next, perm.refresh_at);
    for (const auto& [peer, ch] : channels_)
        if (ch.bound && !ch.in_flight)
            next = std::min(next, ch.refresh_at);
    return next;
}

std::optional<std::uint16_t> TurnClient::channel_for(const net::SocketAddr& peer) const {
    auto it = channels_.find(peer);
    if (it == channels_.end() || !it->second.bound)
        return std::nullopt;
    return it->second.number;
}

bool TurnClient::has_permission(const net::IpAddr& peer) const {
    auto it = permissions_.find(peer);
    return it != permissions_.end() && it->second.installed;
}

} // namespace rtcat::stun
