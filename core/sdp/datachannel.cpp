#include "core/sdp/datachannel.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "core/base/printable.hpp"

namespace rtcat::sdp {
namespace {

constexpr std::string_view kSctpProto = "UDP/DTLS/SCTP";
constexpr std::string_view kSctpTcpProto = "TCP/DTLS/SCTP";
constexpr std::string_view kLegacySctpProto = "DTLS/SCTP"; // draft-ietf-mmusic-sctp-sdp-05
constexpr std::string_view kDataChannelFormat = "webrtc-datachannel";
// What Chromium writes in a=sctpmap when it answers the legacy form (number of streams).
constexpr int kLegacySctpmapStreams = 1024;

template <typename T> std::optional<T> to_number(std::string_view s) {
    T v{};
    if (s.empty())
        return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size())
        return std::nullopt;
    return v;
}

bool is_sctp_proto(std::string_view p) {
    return p == kSctpProto || p == kSctpTcpProto || p == kLegacySctpProto;
}

bool is_legacy(const MediaDescription& m) {
    return m.proto == kLegacySctpProto;
}

// A data-channel m-section regardless of port.
bool is_datachannel(const MediaDescription& m) {
    if (m.media != "application" || !is_sctp_proto(m.proto))
        return false;
    if (is_legacy(m))
        return !m.formats.empty() && to_number<std::uint16_t>(m.formats[0]).has_value();
    return std::find(m.formats.begin(), m.formats.end(), kDataChannelFormat) != m.formats.end();
}

bool is_ice_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

base::Result<void> check_ice_credential(std::string_view what, std::string_view v,
                                        std::size_t min) {
    if (v.size() < min)
        return base::make_error("a={} shorter than {} characters", what, min);
    if (v.size() > kIceCredentialMax)
        return base::make_error("a={} longer than {} characters", what, kIceCredentialMax);
    for (char c : v)
        if (!is_ice_char(c))
            return base::make_error(
                "a={} contains '{}', outside the ICE character set (letters, digits, + and /)",
                what, base::printable(std::string_view(&c, 1)));
    return {};
}

// The SCTP port of a legacy section: "a=sctpmap:<port> webrtc-datachannel <streams>" if present,
// else the m= format.
std::uint16_t legacy_sctp_port(const MediaDescription& m) {
    for (auto v : m.all("sctpmap")) {
        auto sp = v.find(' ');
        if (auto p = to_number<std::uint16_t>(v.substr(0, sp)))
            return *p;
    }
    if (!m.formats.empty())
        if (auto p = to_number<std::uint16_t>(m.formats[0]))
            return *p;
    return kDefaultSctpPort;
}

MediaDescription application_section(const LocalParams& local, bool legacy) {
    MediaDescription m;
    m.media = "application";
    m.port = 9; // JSEP §5.2.1: discard port until a default candidate is chosen
    m.connections.push_back(Connection{.nettype = "IN", .addrtype = "IP4", .address = "0.0.0.0"});
    auto add = [&](std::string name, std::optional<std::string> value = std::nullopt) {
        m.attributes.push_back(Attribute{.name = std::move(name), .value = std::move(value)});
    };
    if (legacy) {
        m.proto = std::string(kLegacySctpProto);
        m.formats.push_back(std::to_string(local.sctp_port));
    } else {
        m.proto = std::string(kSctpProto);
        m.formats.emplace_back(kDataChannelFormat);
    }
    for (const auto& c : local.candidates)
        add("candidate", c);
    if (local.end_of_candidates)
        add("end-of-candidates");
    add("ice-ufrag", local.ice_ufrag);
    add("ice-pwd", local.ice_pwd);
    if (local.ice_trickle)
        add("ice-options", "trickle");
    add("fingerprint", format_fingerprint(local.fingerprint));
    add("setup", std::string(setup_name(local.setup)));
    add("mid", local.mid);
    if (legacy)
        add("sctpmap", std::to_string(local.sctp_port) + " webrtc-datachannel " +
                           std::to_string(kLegacySctpmapStreams));
    else
        add("sctp-port", std::to_string(local.sctp_port));
    add("max-message-size", std::to_string(local.max_message_size));
    return m;
}

SessionDescription session_skeleton(const LocalParams& local) {
    SessionDescription sd;
    sd.origin = Origin{.username = "-",
                       .session_id = std::to_string(local.session_id),
                       .session_version = std::to_string(local.session_version),
                       .nettype = "IN",
                       .addrtype = "IP4",
                       .address = "127.0.0.1"};
    sd.session_name = "-";
    sd.timings.push_back(Timing{.start = 0, .stop = 0, .repeats = {}});
    if (local.ice_lite)
        sd.attributes.push_back(Attribute{.name = "ice-lite", .value = std::nullopt});
    return sd;
}

void add_session_tail(SessionDescription& sd) {
    sd.attributes.push_back(Attribute{.name = "extmap-allow-mixed", .value = std::nullopt});
    // Chromium's exact spelling, leading space included.
    sd.attributes.push_back(Attribute{.name = "msid-semantic", .value = " WMS"});
}

} // namespace

std::string_view sdp_type_name(SdpType t) {
    return t == SdpType::Offer ? "offer" : "answer";
}

SessionDescription make_description(const LocalParams& local, SdpType type) {
    if (type == SdpType::Offer)
        RTCAT_CHECK(local.setup == Setup::ActPass, "an offer's a=setup must be actpass");
    else
        RTCAT_CHECK(local.setup == Setup::Active || local.setup == Setup::Passive,
                    "an answer's a=setup must be active or passive");
    SessionDescription sd = session_skeleton(local);
    if (!local.mid.empty())
        sd.attributes.push_back(Attribute{.name = "group", .value = "BUNDLE " + local.mid});
    add_session_tail(sd);
    sd.media.push_back(application_section(local, false));
    return sd;
}

SessionDescription make_offer(const LocalParams& local) {
    return make_description(local, SdpType::Offer);
}

int find_datachannel_section(const SessionDescription& sd) {
    for (std::size_t i = 0; i < sd.media.size(); ++i)
        if (is_datachannel(sd.media[i]) && sd.media[i].port != 0)
            return static_cast<int>(i);
    return -1;
}

base::Result<SessionDescription> make_answer(const SessionDescription& remote_offer,
                                             LocalParams local) {
    int idx = find_datachannel_section(remote_offer);
    if (idx < 0)
        return base::Error{"the offer has no usable m=application section for a data channel "
                           "(UDP/DTLS/SCTP webrtc-datachannel)"};
    const MediaDescription& offered = remote_offer.media[static_cast<std::size_t>(idx)];
    // RFC 8842 §5.3 / RFC 4145 §4.1: the answerer takes the role the offer leaves open; we prefer
    // active (JSEP §5.3.1: "active" is RECOMMENDED for the answerer).
    auto remote_setup = setup(remote_offer, offered).value_or(Setup::ActPass);
    if (remote_setup == Setup::HoldConn)
        return base::Error{"the offer's a=setup:holdconn leaves no DTLS role to take"};
    local.setup = remote_setup == Setup::Active ? Setup::Passive : Setup::Active;
    local.mid = std::string(mid(offered).value_or(""));
    if (is_legacy(offered))
        local.sctp_port = legacy_sctp_port(offered);

    SessionDescription sd = session_skeleton(local);
    // RFC 8843 §7.3.1: the answer's BUNDLE group holds the accepted mids of the offered group.
    auto bundle = bundle_mids(remote_offer);
    if (!local.mid.empty() && std::find(bundle.begin(), bundle.end(), local.mid) != bundle.end())
        sd.attributes.push_back(Attribute{.name = "group", .value = "BUNDLE " + local.mid});
    add_session_tail(sd);

    for (std::size_t i = 0; i < remote_offer.media.size(); ++i) {
        const MediaDescription& om = remote_offer.media[i];
        if (static_cast<int>(i) == idx) {
            sd.media.push_back(application_section(local, is_legacy(om)));
            continue;
        }
        // RFC 8829 §5.3.1 / RFC 3264 §6: a rejected m= line keeps media, proto and formats with
        // port 0; we keep the mid so browsers can match the section.
        MediaDescription rej;
        rej.media = om.media;
        rej.port = 0;
        rej.proto = om.proto;
        rej.formats = om.formats;
        rej.connections.push_back(
            Connection{.nettype = "IN", .addrtype = "IP4", .address = "0.0.0.0"});
        if (auto m = mid(om))
            rej.attributes.push_back(Attribute{.name = "mid", .value = std::string(*m)});
        if (om.media == "audio" || om.media == "video")
            rej.attributes.push_back(Attribute{.name = "inactive", .value = std::nullopt});
        sd.media.push_back(std::move(rej));
    }
    return sd;
}

base::Result<RemoteParams> extract_remote(const SessionDescription& sd, SdpType type) {
    const MediaDescription* m = nullptr;
    for (const auto& md : sd.media) {
        if (!is_datachannel(md))
            continue;
        // RFC 8843 §7.2: a bundle-only section of an offer has port 0 but is not rejected.
        if (md.port != 0 || (type == SdpType::Offer && md.has("bundle-only"))) {
            m = &md;
            break;
        }
        if (!m)
            m = &md;
    }
    if (!m)
        return base::Error{"no m=application section for a data channel"};
    if (m->port == 0 && !(type == SdpType::Offer && m->has("bundle-only")))
        return base::make_error("the data channel m=application section is rejected (port 0) in "
                                "the {}",
                                sdp_type_name(type));

    RemoteParams r;
    auto ufrag = ice_ufrag(sd, *m);
    if (!ufrag)
        return base::Error{"missing a=ice-ufrag"};
    if (auto ok = check_ice_credential("ice-ufrag", *ufrag, kIceUfragMin); !ok)
        return ok.error();
    auto pwd = ice_pwd(sd, *m);
    if (!pwd)
        return base::Error{"missing a=ice-pwd"};
    if (auto ok = check_ice_credential("ice-pwd", *pwd, kIcePwdMin); !ok)
        return ok.error();
    r.ice_ufrag = std::string(*ufrag);
    r.ice_pwd = std::string(*pwd);

    // RFC 8122 §5 / RFC 8842 §5.1: several fingerprints may be offered; we use the ones whose
    // hash we support (SHA-2 family and SHA-1) and fail only if none is left.
    auto fps = all_effective(sd, *m, "fingerprint");
    if (fps.empty())
        return base::Error{"missing a=fingerprint (DTLS fingerprint is mandatory)"};
    std::string unsupported;
    for (auto v : fps) {
        auto fp = parse_fingerprint(v);
        if (!fp)
            return fp.error();
        if (fingerprint_length(fp->algorithm) == 0) {
            if (unsupported.empty())
                unsupported = fp->algorithm;
            continue;
        }
        r.fingerprints.push_back(std::move(*fp));
    }
    if (r.fingerprints.empty())
        return base::make_error("unsupported fingerprint algorithm {}",
                                base::printable(unsupported));

    // RFC 4145 §4.1: a missing a=setup means "active".
    auto setup_v = find_effective(sd, *m, "setup");
    if (setup_v) {
        auto s = parse_setup(*setup_v);
        if (!s)
            return base::make_error("invalid a=setup:{}", base::printable(*setup_v));
        r.setup = *s;
    } else {
        r.setup = Setup::Active;
    }
    if (r.setup == Setup::HoldConn)
        return base::Error{"setup:holdconn is not supported (no DTLS connection would be made)"};
    if (type == SdpType::Answer && r.setup == Setup::ActPass)
        return base::Error{"setup:actpass is not allowed in an answer"};

    r.mid = std::string(mid(*m).value_or(""));
    if (is_legacy(*m)) {
        r.sctp_port = legacy_sctp_port(*m);
    } else if (m->has("sctp-port")) {
        auto p = sctp_port(*m);
        if (!p)
            return base::make_error("a=sctp-port:{} is not a port number",
                                    base::printable(*m->find("sctp-port")));
        r.sctp_port = *p;
    }
    if (m->has("max-message-size")) {
        auto mms = max_message_size(*m);
        if (!mms)
            return base::make_error("a=max-message-size:{} is not a number",
                                    base::printable(*m->find("max-message-size")));
        r.max_message_size = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(*mms, std::numeric_limits<std::uint32_t>::max()));
    }
    for (auto c : candidates(*m))
        r.candidates.emplace_back(c);
    r.end_of_candidates = end_of_candidates(sd, *m);
    r.ice_lite = ice_lite(sd);
    return r;
}

} // namespace rtcat::sdp
