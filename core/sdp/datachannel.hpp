#pragma once
// JSEP (RFC 8829) offer/answer for a session that carries only a data channel (RFC 8841 SCTP over
// DTLS over ICE), and the extraction of what the transport layers need from the remote side.
//
// Our descriptions copy what Chromium prints for a data-channel-only offer, so every browser
// accepts them:
//   v=0 / o=- <id> <ver> IN IP4 127.0.0.1 / s=- / t=0 0 / a=group:BUNDLE <mid> /
//   a=extmap-allow-mixed / a=msid-semantic: WMS /
//   m=application 9 UDP/DTLS/SCTP webrtc-datachannel / c=IN IP4 0.0.0.0 / a=candidate... /
//   [a=end-of-candidates] / a=ice-ufrag / a=ice-pwd / [a=ice-options:trickle] /
//   a=fingerprint / a=setup / a=mid / a=sctp-port / a=max-message-size
// Port 9 and 0.0.0.0 stay even when candidates are known: JSEP §5.2.1 allows the "discard" form
// and every browser then uses the a=candidate lines (our ICE agent does the same).

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/result.hpp"
#include "core/sdp/sdp.hpp"

namespace rtcat::sdp {

enum class SdpType { Offer, Answer };
std::string_view sdp_type_name(SdpType t); // "offer" / "answer"

// RFC 8841 §6.1 says a peer without a=max-message-size accepts 64 KiB, but pion v3 (which
// announces no a=max-message-size) closes the channel on any message over 65535 bytes: the
// largest size every implementation takes.
inline constexpr std::uint32_t kDefaultRemoteMaxMessageSize = 65535;
// RFC 8841 §5.2: a=sctp-port absent means 5000.
inline constexpr std::uint16_t kDefaultSctpPort = 5000;
// RFC 8839 §5.4: ice-ufrag 4..256 ice-chars, ice-pwd 22..256 ice-chars.
inline constexpr std::size_t kIceUfragMin = 4;
inline constexpr std::size_t kIcePwdMin = 22;
inline constexpr std::size_t kIceCredentialMax = 256;

struct LocalParams {
    std::string ice_ufrag;
    std::string ice_pwd;
    Fingerprint fingerprint;
    Setup setup = Setup::ActPass;
    std::string mid = "0";
    std::uint16_t sctp_port = kDefaultSctpPort;
    std::uint32_t max_message_size = 262144;
    std::vector<std::string> candidates; // raw a=candidate values
    bool end_of_candidates = true;
    bool ice_trickle = false;
    bool ice_lite = false;
    std::uint64_t session_id = 0;
    std::uint64_t session_version = 2;
};

// An offer: `local.setup` must be ActPass (RFC 8842 §5.2); checked.
SessionDescription make_offer(const LocalParams& local);
// An answer to `remote_offer`. Takes the first usable m=application (UDP/DTLS/SCTP or
// TCP/DTLS/SCTP webrtc-datachannel, or the legacy "DTLS/SCTP <port>" form), copies its mid, and
// picks our DTLS role (RFC 8842 §5.3): active unless the offer says active, then passive
// (local.setup is overwritten). Every other m-section is rejected with port 0 keeping media,
// proto and formats (RFC 8829 §5.3.1), and BUNDLE lists only the accepted mid.
base::Result<SessionDescription> make_answer(const SessionDescription& remote_offer,
                                             LocalParams local);

// Same Chromium-like layout for the given type (used by the compact token decoder, which has
// no offer to answer). For an answer, `local.setup` must be Active or Passive.
SessionDescription make_description(const LocalParams& local, SdpType type);

struct RemoteParams {
    std::string ice_ufrag;
    std::string ice_pwd;
    std::vector<Fingerprint> fingerprints; // supported algorithms only, in order
    Setup setup = Setup::Active;
    std::string mid;
    std::uint16_t sctp_port = kDefaultSctpPort;
    std::uint32_t max_message_size = kDefaultRemoteMaxMessageSize; // 0 = no limit (RFC 8841 §6)
    std::vector<std::string> candidates;
    bool end_of_candidates = false;
    bool ice_lite = false;
};

// Everything the ICE, DTLS and SCTP layers need from the peer's description, validated with
// errors meant for the user ("missing a=ice-ufrag", "a=ice-pwd shorter than 22 characters",
// "unsupported fingerprint algorithm md5", "setup:actpass is not allowed in an answer", ...).
base::Result<RemoteParams> extract_remote(const SessionDescription& sd, SdpType type);

// Index of the m-section a data channel would use (first m=application with an SCTP proto and a
// non-zero port), or -1.
int find_datachannel_section(const SessionDescription& sd);

} // namespace rtcat::sdp
