#pragma once
// A small sans-IO TURN server model (RFC 8656 over UDP, RFC 8489 §9.2 long-term credentials)
// for unit tests: it checks MESSAGE-INTEGRITY(-SHA256) with the right key, challenges with
// 401 + REALM/NONCE (optionally with the nonce cookie and PASSWORD-ALGORITHMS), issues 438
// when told to, allocates relayed addresses, tracks permissions and channels, and relays Send
// indications / ChannelData between allocations or to "external" peers. It also has knobs
// to misbehave (tampered integrity, unknown attributes, Try Alternate, stripped algorithms).
//
// Same contract as the core machines: handle_receive(now) then drain poll_transmit().
// Not a real server: one nonce for everyone, no rate limits, no quotas.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/base/time.hpp"
#include "core/net/address.hpp"
#include "core/net/datagram.hpp"
#include "core/net/demux.hpp"
#include "core/stun/credentials.hpp"
#include "core/stun/message.hpp"

namespace rtcat::test {

class FakeTurnServer {
public:
    struct Config {
        net::SocketAddr address;
        net::IpAddr relay_ip;
        std::string realm = "example.org";
        std::map<std::string, std::string> users; // username -> password
        // RFC 8489 §9.2: put the nonce cookie (password-algorithms bit) in nonces and offer
        // PASSWORD-ALGORITHMS in challenges.
        bool offer_password_algorithms = false;
        std::vector<stun::PasswordAlgorithm> algorithms{stun::PasswordAlgorithm::Sha256,
                                                        stun::PasswordAlgorithm::Md5};
        std::uint32_t default_lifetime = 600;
        std::uint32_t max_lifetime = 3600;
        std::string software = "fake-turn";
    };

    struct Allocation {
        net::SocketAddr client;
        net::SocketAddr relayed;
        base::Instant expires{};
        stun::TransactionId allocate_tid{};
        base::Bytes allocate_response; // for retransmitted Allocates (RFC 8656 §7.2)
        std::map<net::IpAddr, base::Instant> permissions;
        std::map<std::uint16_t, net::SocketAddr> channels;
        std::map<net::SocketAddr, std::uint16_t> channel_of;
    };

    struct Seen {
        base::Instant at{};
        net::SocketAddr from;
        stun::Message msg;
        base::Bytes raw;
    };

    explicit FakeTurnServer(Config cfg) : cfg_(std::move(cfg)) { rotate_nonce(); }

    // --- knobs ---
    void stale_next(int n = 1) { stale_ += n; }   // next n authenticated requests get 438
    void tamper_next(int n = 1) { tamper_ += n; } // next n signed responses get a bad MAC
    void unknown_attribute_next(int n = 1) { unknown_attr_ += n; }
    void redirect_to(net::SocketAddr alt) { alternate_ = alt; }
    // Challenges keep the cookie's password-algorithms bit but lose the list (what an
    // on-path bid-down attacker would do).
    void strip_password_algorithms(bool on = true) { strip_algorithms_ = on; }
    void silent(bool on = true) { silent_ = on; } // answer nothing

    // --- introspection ---
    const std::vector<Seen>& seen() const { return seen_; }
    std::vector<Seen> seen_requests(stun::Method m) const {
        std::vector<Seen> out;
        for (const auto& s : seen_)
            if (s.msg.cls() == stun::Class::Request && s.msg.method() == m)
                out.push_back(s);
        return out;
    }
    const Allocation* allocation_for(const net::SocketAddr& client) const {
        auto it = allocations_.find(client);
        return it == allocations_.end() ? nullptr : &it->second;
    }
    // Datagrams relayed to peers that are not allocations on this server.
    const std::vector<net::Datagram>& to_peers() const { return to_peers_; }
    const std::string& nonce() const { return nonce_; }
    int integrity_failures() const { return integrity_failures_; }
    int dropped_no_permission() const { return dropped_no_permission_; }

    // --- input ---
    void handle_receive(const net::Datagram& d, base::Instant now) {
        now_ = now;
        if (d.destination != cfg_.address)
            return;
        auto kind = net::classify(d.payload);
        if (kind == net::PacketKind::TurnChannel) {
            on_channel_data(d);
            return;
        }
        if (kind != net::PacketKind::Stun)
            return;
        auto decoded = stun::decode(d.payload);
        if (!decoded.ok())
            return;
        const stun::Message& msg = *decoded;
        seen_.push_back(Seen{now, d.source, msg, d.payload});
        if (msg.cls() == stun::Class::Indication && msg.method() == stun::Method::Send) {
            on_send_indication(d.source, msg);
            return;
        }
        if (msg.cls() != stun::Class::Request || silent_)
            return;
        on_request(d.source, msg, d.payload);
    }

    // A peer outside the server sends `data` to the relayed address `relayed`.
    void receive_from_peer(const net::SocketAddr& peer, const net::SocketAddr& relayed,
                           base::ByteView data, base::Instant now) {
        now_ = now;
        for (auto& [client, alloc] : allocations_)
            if (alloc.relayed == relayed && alloc.expires > now_)
                deliver(alloc, peer, data);
    }

    std::optional<net::Datagram> poll_transmit() {
        if (out_.empty())
            return std::nullopt;
        auto d = std::move(out_.front());
        out_.pop_front();
        return d;
    }

private:
    struct Auth {
        base::Bytes key;
        bool sha256 = false;
    };

    void rotate_nonce() {
        ++nonce_counter_;
        nonce_ = (cfg_.offer_password_algorithms
                      ? stun::make_nonce_cookie(stun::kFeaturePasswordAlgorithms)
                      : std::string()) +
                 "nonce" + std::to_string(nonce_counter_);
    }

    void add_challenge(stun::Message& m) {
        m.add_string(stun::attr::Realm, cfg_.realm);
        m.add_string(stun::attr::Nonce, nonce_);
        if (cfg_.offer_password_algorithms && !strip_algorithms_)
            m.add_password_algorithms(cfg_.algorithms);
    }

    void send_to(const net::SocketAddr& client, const stun::Message& m, const Auth* auth = nullptr,
                 base::Bytes* keep = nullptr) {
        stun::EncodeOptions opts;
        stun::Message copy = m;
        if (unknown_attr_ > 0 && m.cls() != stun::Class::Indication) {
            --unknown_attr_;
            copy.add_u32(0x7F01, 0xDEADBEEF); // comprehension-required, unassigned
        }
        if (auth) {
            opts.integrity_key = &auth->key;
            opts.sha256 = auth->sha256;
        }
        base::Bytes wire = stun::encode(copy, opts);
        if (keep)
            *keep = wire;
        if (auth && tamper_ > 0) {
            --tamper_;
            wire[wire.size() - 1] ^= 0x01; // last byte of the MAC
        }
        out_.push_back(net::Datagram{cfg_.address, client, std::move(wire)});
    }

    void error(const net::SocketAddr& client, const stun::Message& req, int code,
               const char* reason, const Auth* auth = nullptr) {
        auto m = stun::Message::error_for(req, code, reason);
        m.add_string(stun::attr::Software, cfg_.software);
        send_to(client, m, auth);
    }

    // RFC 8489 §9.2.4 server side. Returns the key to sign the answer with, or nullopt after
    // having answered with an error.
    std::optional<Auth> authenticate(const net::SocketAddr& client, const stun::Message& req,
                                     base::ByteView raw) {
        bool has_mi = req.has(stun::attr::MessageIntegrity);
        bool has_mi256 = req.has(stun::attr::MessageIntegritySha256);
        if (!has_mi && !has_mi256) {
            auto m = stun::Message::error_for(req, 401, "Unauthenticated");
            add_challenge(m);
            send_to(client, m);
            return std::nullopt;
        }
        auto user = req.get_string(stun::attr::Username);
        auto realm = req.get_string(stun::attr::Realm);
        auto nonce = req.get_string(stun::attr::Nonce);
        if (!user || !realm || !nonce) {
            error(client, req, 400, "Bad Request");
            return std::nullopt;
        }
        stun::PasswordAlgorithm alg = stun::PasswordAlgorithm::Md5;
        auto algs = req.password_algorithms();
        auto chosen = req.password_algorithm();
        if (algs || chosen) {
            // §9.2.4: both present, the list as we sent it, the choice on the list.
            if (!algs || !chosen || *algs != cfg_.algorithms ||
                std::find(algs->begin(), algs->end(), *chosen) == algs->end()) {
                error(client, req, 400, "Bad Request");
                return std::nullopt;
            }
            alg = *chosen;
        }
        if (*nonce != nonce_) {
            auto m = stun::Message::error_for(req, 438, "Stale Nonce");
            add_challenge(m);
            send_to(client, m);
            return std::nullopt;
        }
        auto pw = cfg_.users.find(*user);
        Auth auth;
        auth.sha256 = has_mi256;
        if (pw != cfg_.users.end())
            auth.key = stun::long_term_key(*user, cfg_.realm, pw->second, alg);
        if (pw == cfg_.users.end() || *realm != cfg_.realm ||
            stun::check_integrity(raw, auth.key) != stun::IntegrityResult::Valid) {
            ++integrity_failures_;
            auto m = stun::Message::error_for(req, 401, "Unauthenticated");
            add_challenge(m);
            send_to(client, m);
            return std::nullopt;
        }
        if (stale_ > 0) {
            --stale_;
            rotate_nonce();
            auto m = stun::Message::error_for(req, 438, "Stale Nonce");
            add_challenge(m);
            send_to(client, m);
            return std::nullopt;
        }
        return auth;
    }

    Allocation* live_allocation(const net::SocketAddr& client) {
        auto it = allocations_.find(client);
        if (it == allocations_.end())
            return nullptr;
        if (it->second.expires <= now_) {
            allocations_.erase(it);
            return nullptr;
        }
        return &it->second;
    }

    void on_request(const net::SocketAddr& client, const stun::Message& req, base::ByteView raw) {
        // A retransmitted Allocate whose success was lost gets the same answer (RFC 8656
        // §7.2), before authentication (the nonce may have moved on since).
        if (req.method() == stun::Method::Allocate) {
            if (auto* a = live_allocation(client); a && a->allocate_tid == req.transaction_id()) {
                out_.push_back(net::Datagram{cfg_.address, client, a->allocate_response});
                return;
            }
        }
        auto auth = authenticate(client, req, raw);
        if (!auth)
            return;
        switch (req.method()) {
        case stun::Method::Allocate:
            return on_allocate(client, req, *auth);
        case stun::Method::Refresh:
            return on_refresh(client, req, *auth);
        case stun::Method::CreatePermission:
            return on_create_permission(client, req, *auth);
        case stun::Method::ChannelBind:
            return on_channel_bind(client, req, *auth);
        default:
            return error(client, req, 400, "Bad Request", &*auth);
        }
    }

    void on_allocate(const net::SocketAddr& client, const stun::Message& req, const Auth& auth) {
        if (alternate_) {
            auto m = stun::Message::error_for(req, 300, "Try Alternate");
            m.add_address(stun::attr::AlternateServer, *alternate_);
            send_to(client, m, &auth);
            return;
        }
        if (live_allocation(client))
            return error(client, req, 437, "Allocation Mismatch", &auth);
        auto transport = req.requested_transport();
        if (!transport)
            return error(client, req, 400, "Bad Request", &auth);
        if (*transport != 17)
            return error(client, req, 442, "Unsupported Transport Protocol", &auth);
        std::uint32_t life = std::min(
            req.get_u32(stun::attr::Lifetime).value_or(cfg_.default_lifetime), cfg_.max_lifetime);
        Allocation a;
        a.client = client;
        a.relayed = net::SocketAddr(cfg_.relay_ip, next_port_++);
        a.expires = now_ + std::chrono::seconds(life);
        a.allocate_tid = req.transaction_id();
        auto m = stun::Message::success_for(req);
        m.add_xor_address(stun::attr::XorRelayedAddress, a.relayed);
        m.add_u32(stun::attr::Lifetime, life);
        m.add_xor_address(stun::attr::XorMappedAddress, client);
        m.add_string(stun::attr::Software, cfg_.software);
        send_to(client, m, &auth, &a.allocate_response);
        allocations_[client] = std::move(a);
    }

    void on_refresh(const net::SocketAddr& client, const stun::Message& req, const Auth& auth) {
        auto* a = live_allocation(client);
        if (!a)
            return error(client, req, 437, "Allocation Mismatch", &auth);
        std::uint32_t life = std::min(
            req.get_u32(stun::attr::Lifetime).value_or(cfg_.default_lifetime), cfg_.max_lifetime);
        auto m = stun::Message::success_for(req);
        m.add_u32(stun::attr::Lifetime, life);
        m.add_string(stun::attr::Software, cfg_.software);
        if (life == 0)
            allocations_.erase(client);
        else
            a->expires = now_ + std::chrono::seconds(life);
        send_to(client, m, &auth);
    }

    void on_create_permission(const net::SocketAddr& client, const stun::Message& req,
                              const Auth& auth) {
        auto* a = live_allocation(client);
        if (!a)
            return error(client, req, 437, "Allocation Mismatch", &auth);
        auto peer = req.get_xor_address(stun::attr::XorPeerAddress);
        if (!peer)
            return error(client, req, 400, "Bad Request", &auth);
        a->permissions[peer->ip()] = now_ + std::chrono::seconds(300);
        auto m = stun::Message::success_for(req);
        m.add_string(stun::attr::Software, cfg_.software);
        send_to(client, m, &auth);
    }

    void on_channel_bind(const net::SocketAddr& client, const stun::Message& req,
                         const Auth& auth) {
        auto* a = live_allocation(client);
        if (!a)
            return error(client, req, 437, "Allocation Mismatch", &auth);
        auto peer = req.get_xor_address(stun::attr::XorPeerAddress);
        auto channel = req.channel_number();
        if (!peer || !channel || *channel < stun::kMinChannel || *channel > stun::kMaxChannel)
            return error(client, req, 400, "Bad Request", &auth);
        auto bound = a->channels.find(*channel);
        auto of = a->channel_of.find(*peer);
        if ((bound != a->channels.end() && bound->second != *peer) ||
            (of != a->channel_of.end() && of->second != *channel))
            return error(client, req, 400, "Bad Request", &auth);
        a->channels[*channel] = *peer;
        a->channel_of[*peer] = *channel;
        a->permissions[peer->ip()] = now_ + std::chrono::seconds(300); // RFC 8656 §12.2
        auto m = stun::Message::success_for(req);
        m.add_string(stun::attr::Software, cfg_.software);
        send_to(client, m, &auth);
    }

    void on_send_indication(const net::SocketAddr& client, const stun::Message& ind) {
        auto* a = live_allocation(client);
        auto peer = ind.get_xor_address(stun::attr::XorPeerAddress);
        const auto* data = ind.find(stun::attr::Data);
        if (!a || !peer || !data)
            return;
        relay(*a, *peer, data->value);
    }

    void on_channel_data(const net::Datagram& d) {
        auto* a = live_allocation(d.source);
        auto cd = stun::parse_channel_data(d.payload);
        if (!a || !cd)
            return;
        auto it = a->channels.find(cd->channel);
        if (it == a->channels.end())
            return;
        relay(*a, it->second, cd->data);
    }

    bool permitted(const Allocation& a, const net::IpAddr& ip) const {
        auto it = a.permissions.find(ip);
        return it != a.permissions.end() && it->second > now_;
    }

    void relay(const Allocation& from, const net::SocketAddr& peer, base::ByteView data) {
        // RFC 8656 §11.2 / §12.5: outgoing data needs a permission for the peer.
        if (!permitted(from, peer.ip())) {
            ++dropped_no_permission_;
            return;
        }
        for (auto& [client, other] : allocations_) {
            if (other.relayed == peer && other.expires > now_) {
                deliver(other, from.relayed, data);
                return;
            }
        }
        to_peers_.push_back(
            net::Datagram{from.relayed, peer, base::Bytes(data.begin(), data.end())});
    }

    // Data arriving at `a`'s relayed address from `peer` (RFC 8656 §11.3 / §12.6).
    void deliver(const Allocation& a, const net::SocketAddr& peer, base::ByteView data) {
        if (!permitted(a, peer.ip())) {
            ++dropped_no_permission_;
            return;
        }
        auto ch = a.channel_of.find(peer);
        if (ch != a.channel_of.end()) {
            out_.push_back(
                net::Datagram{cfg_.address, a.client, stun::encode_channel_data(ch->second, data)});
            return;
        }
        auto m = stun::Message::indication(stun::Method::Data);
        m.add_xor_address(stun::attr::XorPeerAddress, peer);
        m.add_raw(stun::attr::Data, data);
        out_.push_back(net::Datagram{cfg_.address, a.client, stun::encode(m)});
    }

    Config cfg_;
    base::Instant now_{};
    std::string nonce_;
    int nonce_counter_ = 0;
    std::uint16_t next_port_ = 49152;
    std::map<net::SocketAddr, Allocation> allocations_;
    std::deque<net::Datagram> out_;
    std::vector<Seen> seen_;
    std::vector<net::Datagram> to_peers_;
    int stale_ = 0;
    int tamper_ = 0;
    int unknown_attr_ = 0;
    bool strip_algorithms_ = false;
    bool silent_ = false;
    std::optional<net::SocketAddr> alternate_;
    int integrity_failures_ = 0;
    int dropped_no_permission_ = 0;
};

} // namespace rtcat::test
