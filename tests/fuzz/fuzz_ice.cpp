// libFuzzer target for the ICE agent's receive path: an agent with known credentials and a
// known remote candidate is fed datagrams from a few source addresses, interleaved with
// timeouts and sends. Input: a sequence of records [flags u8][len u16 BE][len bytes].
//   flags bits 0-1: source address (known remote, unknown v4, unknown v6, remote's 2nd port)
//   bit 2: destination is the v6 host socket (else v4)
//   bit 3: if the payload decodes as STUN, re-sign it with the right key (MESSAGE-INTEGRITY
//          keyed with our pwd for requests, the peer's for responses) and add FINGERPRINT, so
//          the authenticated paths are reached
//   bit 4: advance virtual time by len * 10 ms and run handle_timeout instead of receiving
//   bit 5: send() the payload as application data
// Under g++ the same function replays tests/fuzz/corpus/ice/ as an ordinary test.

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/ice/agent.hpp"
#include "core/stun/message.hpp"

using namespace rtcat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto v4 = net::SocketAddr(net::IpAddr::v4(10, 0, 0, 2), 6000);
    const auto v6 = *net::SocketAddr::parse("[2001:db8::2]:6000");
    const auto remote = net::SocketAddr(net::IpAddr::v4(10, 0, 0, 1), 5000);
    const net::SocketAddr sources[4] = {remote, net::SocketAddr(net::IpAddr::v4(10, 9, 9, 9), 9),
                                        *net::SocketAddr::parse("[2001:db8::9]:9"),
                                        net::SocketAddr(net::IpAddr::v4(10, 0, 0, 1), 5001)};
    ice::AgentConfig cfg;
    cfg.controlling = (size & 1) != 0;
    cfg.local_ufrag = "fuzz";
    cfg.local_pwd = "fuzz-password-0123456789";
    cfg.tie_breaker = 42;
    cfg.host_sockets = {v4, v6};
    base::Instant now{};
    ice::Agent agent(cfg, now);
    agent.set_remote_credentials("peer", "peer-password-0123456789", now);
    ice::Candidate rc;
    rc.foundation = "1";
    rc.priority = ice::compute_priority(ice::CandidateType::Host, 65535, 1);
    rc.address = remote;
    rc.base = remote;
    agent.add_remote_candidate(rc, now);
    const base::Bytes local_key = stun::short_term_key(cfg.local_pwd);
    const base::Bytes peer_key = stun::short_term_key("peer-password-0123456789");

    base::ByteReader r(base::ByteView(data, size));
    while (!r.empty()) {
        std::uint8_t flags = r.u8();
        std::uint16_t len = r.u16();
        auto body = r.bytes(std::min<std::size_t>(len, r.remaining()));
        if (r.failed())
            break;
        base::Bytes payload(body.begin(), body.end());
        if (flags & 0x10) {
            now += base::ms(10) * (len % 4096);
            agent.handle_timeout(now);
        } else if (flags & 0x20) {
            (void)agent.send(std::move(payload), now);
        } else {
            if (flags & 0x08) {
                if (auto m = stun::decode(payload); m.ok()) {
                    stun::EncodeOptions o;
                    o.integrity_key = m->cls() == stun::Class::Request ? &local_key : &peer_key;
                    o.fingerprint = true;
                    stun::Message copy(m->method(), m->cls(), m->transaction_id());
                    for (const auto& a : m->attributes())
                        if (a.type != stun::attr::MessageIntegrity &&
                            a.type != stun::attr::MessageIntegritySha256 &&
                            a.type != stun::attr::Fingerprint)
                            copy.add_raw(a.type, a.value);
                    payload = stun::encode(copy, o);
                }
            }
            net::Datagram d{sources[flags & 3], (flags & 4) ? v6 : v4, std::move(payload)};
            (void)agent.handle_receive(std::move(d), now);
        }
        while (auto t = agent.poll_transmit()) {
            if (t->payload.empty() && agent.state() != ice::State::Connected)
                std::abort(); // the agent itself never sends empty datagrams
        }
        while (agent.poll_event()) {
        }
        (void)agent.poll_timeout();
        (void)agent.selected_pair();
    }
    agent.close(now);
    while (agent.poll_transmit()) {
    }
    return 0;
}
