#include "core/peer/peer.hpp"

#include <algorithm>

#include "core/base/log.hpp"
#include "core/base/random.hpp"
#include "core/net/demux.hpp"
#include "core/sdp/datachannel.hpp"

namespace rtcat::peer {

namespace {

// Early DTLS datagrams are held until our session exists; a handshake flight is a few KiB, so
// this bound only stops a hostile sender from growing memory.
constexpr size_t kMaxEarlyDtlsBytes = 64 * 1024;

std::string random_ice_chars(size_t n) {
    // RFC 8839 §5.4 ice-char = ALPHA / DIGIT / "+" / "/"
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<uint8_t> raw(n);
    base::random_bytes(raw);
    std::string out;
    out.reserve(n);
    for (uint8_t b : raw) {
        out.push_back(kAlphabet[b % kAlphabet.size()]);
    }
    return out;
}

} // namespace

Peer::Peer(PeerConfig config, base::Instant now) : config_(std::move(config)) {
    // RFC 8445 §5.3: ufrag at least 24 bits of randomness, password at least 128 bits.
    local_ufrag_ = random_ice_chars(8);
    local_pwd_ = random_ice_chars(24);
    session_id_ = base::random_u64() >> 2; // o= sess-id: keep it a positive 63-bit number

    ice::AgentConfig ic;
    // JSEP (RFC 8829 §5.2.1 / RFC 8445 §6.1.1): the offerer is the controlling agent.
    ic.controlling = config_.offerer;
    ic.local_ufrag = local_ufrag_;
    ic.local_pwd = local_pwd_;
    ic.tie_breaker = config_.tie_breaker.value_or(base::random_u64());
    ic.host_sockets = config_.host_sockets;
    ic.stun_servers = config_.stun_servers;
    ic.turn = config_.turn;
    ic.relay_only = config_.relay_only;
    ic.gathering_timeout = config_.gathering_timeout;
    ic.connect_timeout = config_.connect_timeout;
    ic.consent_timeout = config_.consent_timeout;
    ice_ = std::make_unique<ice::Agent>(std::move(ic), now);
    pump(now);
}

Peer::~Peer() = default;

base::Result<void> Peer::set_remote_description(const sdp::SignalMessage& remote,
                                                base::Instant now) {
    if (remote_) {
        return base::make_error("a remote description was already applied");
    }
    const auto expected = config_.offerer ? sdp::SdpType::Answer : sdp::SdpType::Offer;
    if (remote.type != expected) {
        return base::make_error("expected an {} from the peer, got an {}",
                                expected == sdp::SdpType::Offer ? "offer" : "answer",
                                remote.type == sdp::SdpType::Offer ? "offer" : "answer");
    }
    auto parsed = sdp::parse(remote.sdp);
    if (!parsed) {
        return parsed.error();
    }
    auto params = sdp::extract_remote(*parsed, remote.type);
    if (!params) {
        return params.error();
    }
    remote_ = std::move(*params);
    remote_offer_text_ = remote.sdp;

    // RFC 8842 §5.3: the answerer picks active or passive; we answer active (we are the DTLS
    // client), so our ClientHello goes out as soon as ICE has a pair.
    if (config_.offerer) {
        dtls_client_ = remote_->setup == sdp::Setup::Passive;
    } else {
        dtls_client_ = remote_->setup != sdp::Setup::Active;
    }

    // Candidates first, credentials second: checks start with the credentials, and with every
    // pair formed by then the first check goes to the best pair (RFC 8445 §6.1.4.2) instead of
    // the first candidate listed, with the better pairs a Ta behind it.
    size_t skipped = 0;
    std::vector<ice::Candidate> cands;
    for (const auto& line : remote_->candidates) {
        auto cand = ice::parse_candidate(line);
        if (!cand) {
            // mDNS (.local) and TCP candidates: ICE still connects through peer-reflexive
            // discovery when the peer's checks arrive (RFC 8445 §7.3.1.3).
            RTCAT_DEBUG("peer", "remote candidate ignored: {} ({})", cand.error().message, line);
            ++skipped;
            continue;
        }
        cands.push_back(std::move(*cand));
    }
    if (cands.size() > ice::kMaxRemoteCandidates) {
        // The agent keeps a bounded number: let them be the peer's best, not its first.
        RTCAT_WARN("peer",
                   "the peer's description lists {} candidates; keeping the {} with the highest "
                   "priority",
                   cands.size(), ice::kMaxRemoteCandidates);
        std::stable_sort(cands.begin(), cands.end(),
                         [](const auto& a, const auto& b) { return a.priority > b.priority; });
        skipped += cands.size() - ice::kMaxRemoteCandidates;
        cands.resize(ice::kMaxRemoteCandidates);
    }
    for (const auto& cand : cands) {
        ice_->add_remote_candidate(cand, now);
    }
    ice_->set_remote_credentials(remote_->ice_ufrag, remote_->ice_pwd, now);
    if (remote_->end_of_candidates) {
        ice_->end_of_remote_candidates(now);
    }
    RTCAT_DEBUG("peer", "remote description applied: {} candidates ({} ignored), DTLS {}",
                remote_->candidates.size(), skipped, dtls_client_ ? "client" : "server");
    maybe_start_dtls(now);
    pump(now);
    return {};
}

void Peer::maybe_emit_local_description() {
    if (local_description_sent_ || !gathering_done_) {
        return;
    }
    if (!config_.offerer && !remote_) {
        return;
    }
    sdp::LocalParams lp;
    lp.ice_ufrag = local_ufrag_;
    lp.ice_pwd = local_pwd_;
    lp.fingerprint = config_.certificate.fingerprint("sha-256");
    lp.max_message_size = config_.max_message_size;
    lp.candidates = local_candidates_;
    lp.end_of_candidates = true;
    lp.session_id = session_id_;
    std::string text;
    if (config_.offerer) {
        lp.setup = sdp::Setup::ActPass;
        text = sdp::serialize(sdp::make_offer(lp));
    } else {
        lp.setup = dtls_client_ ? sdp::Setup::Active : sdp::Setup::Passive;
        // Re-parse the remote offer: make_answer copies its mid and rejects its media sections.
        // The offer was parsed successfully once already, so this cannot fail.
        auto offer = sdp::parse(remote_offer_text_);
        RTCAT_CHECK(offer.ok(), "remote offer re-parse");
        auto answer = sdp::make_answer(*offer, lp);
        if (!answer) {
            fail(FailureClass::Signaling, answer.error().message);
            return;
        }
        text = sdp::serialize(*answer);
    }
    local_description_sent_ = true;
    events_.push_back(event::LocalDescription{
        config_.offerer ? sdp::SdpType::Offer : sdp::SdpType::Answer, std::move(text)});
}

void Peer::maybe_start_dtls(base::Instant now) {
    if (dtls_ || !remote_ || failed_) {
        return;
    }
    // The client speaks as soon as ICE has a valid pair (RFC 8445 §12.1 allows data on any
    // valid pair before selection; RFC 8842 §5 only needs ICE to have connectivity): on the
    // controlled side that is a round trip before the controlling agent's nomination arrives.
    // The server waits for the ClientHello but must exist as soon as it knows the peer's
    // fingerprint.
    if (dtls_client_ && !ice_->can_send()) {
        return;
    }
    dtls::SessionConfig dc;
    dc.role = dtls_client_ ? dtls::Role::Client : dtls::Role::Server;
    dc.certificate = config_.certificate;
    dc.remote_fingerprints = remote_->fingerprints;
    dc.keylog = config_.keylog;
    dtls_ = std::make_unique<dtls::Session>(std::move(dc), now);
    while (!early_dtls_.empty()) {
        auto d = std::move(early_dtls_.front());
        early_dtls_.pop_front();
        dtls_->handle_receive(d, now);
    }
    early_dtls_bytes_ = 0;
}

void Peer::handle_receive(net::Datagram&& datagram, base::Instant now) {
    if (closed_) {
        return;
    }
    ++stats_.datagrams_in;
    stats_.bytes_in += datagram.payload.size();
    auto app = ice_->handle_receive(std::move(datagram), now);
    if (app) {
        feed_dtls(app->payload, now);
    }
    pump(now);
}

void Peer::feed_dtls(std::span<const uint8_t> payload, base::Instant now) {
    switch (net::classify(payload)) {
    case net::PacketKind::Dtls:
        if (dtls_) {
            dtls_->handle_receive(payload, now);
        } else if (early_dtls_bytes_ + payload.size() <= kMaxEarlyDtlsBytes) {
            early_dtls_bytes_ += payload.size();
            early_dtls_.emplace_back(payload.begin(), payload.end());
            ++stats_.dtls_buffered_early;
        }
        break;
    case net::PacketKind::Rtp:
        // No SRTP context in a data-channel session: media is never accepted unencrypted.
        ++stats_.dropped_unencrypted_media;
        break;
    default:
        ++stats_.dropped_unknown;
        break;
    }
}

void Peer::start_sctp(base::Instant now) {
    sctp_at_ = base::kNever;
    if (channels_ || failed_ || closing_) {
        return;
    }
    dcep::Config sc;
    sc.dtls_client = dtls_client_;
    sc.local_port = 5000;
    sc.remote_port = remote_->sctp_port;
    sc.local_max_message_size = config_.max_message_size;
    sc.remote_max_message_size = remote_->max_message_size;
    sc.max_packet_size = config_.mtu - dtls::Session::kRecordOverhead;
    channels_ = std::make_unique<dcep::DataChannels>(sc, now);
    for (auto& packet : early_sctp_) {
        channels_->handle_receive(packet, now);
    }
    early_sctp_.clear();
    early_sctp_bytes_ = 0;
}

void Peer::handle_timeout(base::Instant now) {
    if (closed_) {
        return;
    }
    ice_->handle_timeout(now);
    if (dtls_) {
        dtls_->handle_timeout(now);
    }
    if (now >= sctp_at_) {
        start_sctp(now);
    }
    if (channels_) {
        channels_->handle_timeout(now);
    }
    pump(now);
}

bool Peer::send_dtls_output(base::Instant now) {
    flush_early_out(now); // held datagrams first: DTLS flights keep their order
    bool any = false;
    while (auto out = dtls_->poll_transmit()) {
        any = true;
        if (!ice_->can_send() || !early_out_.empty()) {
            // The DTLS server answers a ClientHello that arrived (and was buffered) before its
            // own ICE checks succeeded: hold the flight until a pair is valid rather than lose
            // it to a retransmission timer.
            if (early_out_bytes_ + out->size() <= kMaxEarlyDtlsBytes) {
                early_out_bytes_ += out->size();
                early_out_.push_back(std::move(*out));
                ++stats_.dtls_held_early;
            }
            continue;
        }
        ++stats_.datagrams_out;
        stats_.bytes_out += out->size();
        ice_->send(std::move(*out), now);
    }
    return any;
}

void Peer::flush_early_out(base::Instant now) {
    if (early_out_.empty() || !ice_->can_send()) {
        return;
    }
    while (!early_out_.empty()) {
        ++stats_.datagrams_out;
        stats_.bytes_out += early_out_.front().size();
        ice_->send(std::move(early_out_.front()), now);
        early_out_.pop_front();
    }
    early_out_bytes_ = 0;
}

bool Peer::drain_dtls(base::Instant now) {
    if (!dtls_) {
        return false;
    }
    bool any = false;
    while (auto ev = dtls_->poll_event()) {
        any = true;
        if (auto* data = std::get_if<dtls::event::Data>(&*ev)) {
            if (channels_) {
                channels_->handle_receive(data->payload, now);
            } else if (early_sctp_bytes_ + data->payload.size() <= kMaxEarlyDtlsBytes) {
                // The peer's INIT can come with its last DTLS flight, before our association
                // exists (see start_sctp): kept, so it needs no retransmission.
                early_sctp_bytes_ += data->payload.size();
                ++stats_.sctp_buffered_early;
                early_sctp_.push_back(std::move(data->payload));
            }
        } else if (auto* c = std::get_if<dtls::event::Connected>(&*ev)) {
            events_.push_back(event::DtlsConnected{c->cipher, c->srtp_profile});
            // The SCTP association is built on the next input (handle_timeout at `now`), not
            // here: building it (usrsctp start-up, stream tables) takes milliseconds, and our
            // last flight (the server's ChangeCipherSpec/Finished) must reach the driver's
            // socket first or the peer spends those milliseconds waiting for it.
            sctp_at_ = now;
        } else if (auto* f = std::get_if<dtls::event::Failed>(&*ev)) {
            fail(f->security ? FailureClass::Security : FailureClass::Protocol,
                 "DTLS: " + f->reason);
        } else if (std::holds_alternative<dtls::event::Closed>(*ev)) {
            if (!closed_) {
                closed_ = true;
                if (channels_) {
                    // A peer that resets a channel and closes DTLS at once (no SCTP ABORT) still
                    // finished that channel: the application learns which were complete.
                    channels_->transport_closed("the peer closed the DTLS session");
                    while (auto cev = channels_->poll_event()) {
                        std::visit([&](auto&& e) { events_.push_back(std::move(e)); },
                                   std::move(*cev));
                    }
                }
                events_.push_back(event::Closed{"the peer closed the DTLS session"});
                return any;
            }
        }
    }
    any = send_dtls_output(now) || any;
    return any;
}

bool Peer::drain_sctp(base::Instant now) {
    if (!channels_) {
        return false;
    }
    bool any = false;
    while (auto pkt = channels_->poll_transmit()) {
        any = true;
        if (dtls_ && dtls_->connected()) {
            auto r = dtls_->send(*pkt);
            if (!r) {
                RTCAT_DEBUG("peer", "SCTP packet not sent: {}", r.error().message);
            }
        }
    }
    while (auto ev = channels_->poll_event()) {
        any = true;
        const bool assoc_closed = std::holds_alternative<dcep::event::Closed>(*ev);
        std::visit([&](auto&& e) { events_.push_back(std::move(e)); }, std::move(*ev));
        if (assoc_closed && closing_) {
            finish_close(now, "closed");
            return any;
        }
    }
    return any;
}

void Peer::pump(base::Instant now) {
    // ICE first (it may select a pair and so allow the DTLS client to start), then DTLS and
    // SCTP until neither has output: an SCTP packet becomes a DTLS record becomes an ICE send.
    while (auto ev = ice_->poll_event()) {
        if (auto* lc = std::get_if<ice::event::LocalCandidate>(&*ev)) {
            local_candidates_.push_back(ice::format_candidate(lc->candidate));
        } else if (std::holds_alternative<ice::event::GatheringComplete>(*ev)) {
            gathering_done_ = true;
        } else if (auto* sp = std::get_if<ice::event::SelectedPair>(&*ev)) {
            if (!ice_connected_) {
                ice_connected_ = true;
                events_.push_back(event::IceConnected{sp->pair});
            }
        } else if (auto* sc = std::get_if<ice::event::StateChanged>(&*ev)) {
            if (sc->state == ice::State::Failed) {
                fail(FailureClass::Connectivity, "ICE: " + sc->reason);
            }
        }
    }
    maybe_emit_local_description();
    maybe_start_dtls(now);
    flush_early_out(now);
    // A DTLS Data event can make SCTP produce a SACK, which becomes another record: loop until
    // a round moves nothing. The bound only guards against a bug turning this into a spin.
    for (int round = 0; round < 64; ++round) {
        const bool d = drain_dtls(now);
        const bool s = drain_sctp(now);
        if (!d && !s) {
            break;
        }
    }
    while (auto t = ice_->poll_transmit()) {
        transmits_.push_back(std::move(*t));
    }
}

std::optional<net::Transmit> Peer::poll_transmit() {
    if (transmits_.empty()) {
        return std::nullopt;
    }
    auto t = std::move(transmits_.front());
    transmits_.pop_front();
    return t;
}

std::optional<Event> Peer::poll_event() {
    if (events_.empty()) {
        return std::nullopt;
    }
    auto e = std::move(events_.front());
    events_.pop_front();
    return e;
}

base::Instant Peer::poll_timeout() const {
    if (closed_) {
        return base::kNever;
    }
    base::Instant t = std::min(ice_->poll_timeout(), sctp_at_);
    if (dtls_) {
        t = std::min(t, dtls_->poll_timeout());
    }
    if (channels_) {
        t = std::min(t, channels_->poll_timeout());
    }
    return t;
}

base::Result<uint16_t> Peer::open_channel(dcep::ChannelOptions options, base::Instant now) {
    if (!channels_) {
        return base::make_error("the data channel association is not up yet");
    }
    auto id = channels_->open(std::move(options));
    pump(now);
    return id;
}

base::Result<void> Peer::send(uint16_t channel, std::span<const uint8_t> data, bool binary,
                              base::Instant now) {
    if (!channels_) {
        return base::make_error("the data channel association is not up yet");
    }
    auto r = channels_->send(channel, data, binary);
    pump(now);
    return r;
}

void Peer::close_channel(uint16_t channel, base::Instant now) {
    if (channels_) {
        channels_->close(channel);
        pump(now);
    }
}

size_t Peer::buffered_amount(uint16_t channel) const {
    return channels_ ? channels_->buffered_amount(channel) : 0;
}

void Peer::set_buffered_amount_low_threshold(uint16_t channel, size_t bytes) {
    if (channels_) {
        channels_->set_buffered_amount_low_threshold(channel, bytes);
    }
}

uint32_t Peer::remote_max_message_size() const {
    if (!remote_) {
        return sdp::kDefaultRemoteMaxMessageSize;
    }
    // RFC 8841 §6.1: 0 means "no limit" on the remote side; our own limit still applies.
    if (remote_->max_message_size == 0) {
        return config_.max_message_size;
    }
    return remote_->max_message_size;
}

void Peer::close(base::Instant now) {
    if (closed_ || closing_) {
        return;
    }
    // Graceful: SCTP SHUTDOWN delivers everything still queued (the last acknowledgements of a
    // transfer) before the association ends; only then DTLS close_notify and TURN release.
    if (channels_ && channels_->connected()) {
        closing_ = true;
        channels_->shutdown();
        pump(now);
        return;
    }
    finish_close(now, "closed");
}

void Peer::finish_close(base::Instant now, std::string reason) {
    if (closed_) {
        return;
    }
    if (dtls_) {
        dtls_->close();
        drain_dtls(now);
    }
    ice_->close(now);
    while (auto t = ice_->poll_transmit()) {
        transmits_.push_back(std::move(*t));
    }
    closed_ = true;
    events_.push_back(event::Closed{std::move(reason)});
}

bool Peer::data_ready() const {
    return channels_ && channels_->connected();
}

bool Peer::all_data_acknowledged() const {
    return !channels_ || channels_->all_acknowledged();
}

std::optional<ice::CandidatePair> Peer::selected_pair() const {
    return ice_->selected_pair();
}

const std::vector<ice::Candidate>& Peer::remote_candidates() const {
    return ice_->remote_candidates();
}

Peer::Stats Peer::stats() const {
    Stats s = stats_;
    s.ice = ice_->stats();
    if (dtls_) {
        s.dtls = dtls_->stats();
    }
    if (channels_) {
        s.sctp = channels_->stats();
    }
    return s;
}

void Peer::fail(FailureClass failure, std::string reason) {
    if (failed_) {
        return;
    }
    failed_ = true;
    events_.push_back(event::Failed{failure, std::move(reason)});
}

} // namespace rtcat::peer
