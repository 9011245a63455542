#pragma once
// SDP (RFC 8866) as plain values: a tolerant parser, an exact serializer and typed accessors for
// the attributes a WebRTC agent reads (RFC 8839 ICE, RFC 8842 DTLS, RFC 8841 SCTP, RFC 8843
// BUNDLE, RTP attributes for later media work).
//
// Parsing is tolerant where real stacks disagree (CRLF or LF, trailing whitespace, trailing blank
// lines, session-level lines out of RFC order, unknown line types and attributes, missing t=) and
// strict where the structure would become ambiguous (v=/o=/s= must open the description, every
// line is `<letter>=<value>`, numeric fields are numbers). Every error names the line:
// "line 7: expected <type>=<value>". Input is bounded (kMaxSdpBytes, kMaxSdpLines,
// kMaxSdpLineLength) so hostile input cannot grow memory without limit. Errors of core/sdp that
// quote the peer's text pass it through base::printable(): they reach a terminal, and a
// description's ESC or CR must not act there.
//
// serialize() writes CRLF lines in RFC 8866 §5 order. Properties (tested over a corpus of real
// SDPs): parse(serialize(d)) == d for every parsed d, hence serialize() is a fixed point after
// one round.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.hpp"
#include "core/dtls/fingerprint.hpp"

namespace rtcat::sdp {

// ---- Tunables --------------------------------------------------------------------------------
// Browser SDPs with many transceivers reach ~20 KiB; 64 KiB leaves room and still bounds memory.
inline constexpr std::size_t kMaxSdpBytes = 64 * 1024;
// A 17-transceiver Firefox offer has ~600 lines.
inline constexpr std::size_t kMaxSdpLines = 4096;
// a=identity assertions and long fmtp lines stay well below this.
inline constexpr std::size_t kMaxSdpLineLength = 8192;

// a=name or a=name:value (RFC 8866 §5.13). The value is kept verbatim (a leading space, as in
// Chromium's "a=msid-semantic: WMS", survives a round trip).
struct Attribute {
    std::string name;
    std::optional<std::string> value;
    bool operator==(const Attribute&) const = default;
};

// o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address> (§5.2). Kept as
// text: libwebrtc's own tests use ids beyond 2^63, others use arbitrary tokens.
struct Origin {
    std::string username = "-";
    std::string session_id = "0";
    std::string session_version = "0";
    std::string nettype = "IN";
    std::string addrtype = "IP4";
    std::string address = "127.0.0.1";
    bool operator==(const Origin&) const = default;
};

// c=<nettype> <addrtype> <connection-address> (§5.7); the address keeps any /ttl/count suffix.
struct Connection {
    std::string nettype = "IN";
    std::string addrtype = "IP4";
    std::string address = "0.0.0.0";
    bool operator==(const Connection&) const = default;
};

// b=<bwtype>:<bandwidth> (§5.8).
struct Bandwidth {
    std::string type;
    std::uint64_t value = 0;
    bool operator==(const Bandwidth&) const = default;
};

// t=<start-time> <stop-time> (§5.9) with its r= lines (§5.10, kept verbatim).
struct Timing {
    std::uint64_t start = 0;
    std::uint64_t stop = 0;
    std::vector<std::string> repeats;
    bool operator==(const Timing&) const = default;
};

// A line whose type letter this parser does not model (RFC 8866 §5: unknown types are ignored by
// receivers; we keep them so a re-serialized description loses nothing). Serialized after the
// known fields of its level, before the a= lines.
struct OtherLine {
    char type = 'x';
    std::string value;
    bool operator==(const OtherLine&) const = default;
};

// Lookup helpers shared by both levels.
// First attribute `name`: its value, "" for a flag attribute, nullopt if absent.
std::optional<std::string_view> find_attribute(std::span<const Attribute> attrs,
                                               std::string_view name);
// Every attribute `name` in order ("" for flag occurrences).
std::vector<std::string_view> all_attributes(std::span<const Attribute> attrs,
                                             std::string_view name);

struct MediaDescription {
    std::string media;                       // audio, video, application, ...
    std::uint16_t port = 0;                  // 0 = rejected / bundle-only (RFC 8843)
    std::optional<std::uint16_t> port_count; // m=<media> <port>/<count>
    std::string proto;                       // UDP/DTLS/SCTP, UDP/TLS/RTP/SAVPF, ...
    std::vector<std::string> formats;
    std::optional<std::string> title; // i=
    std::vector<Connection> connections;
    std::vector<Bandwidth> bandwidths;
    std::optional<std::string> key; // k= (obsolete, kept)
    std::vector<OtherLine> other_lines;
    std::vector<Attribute> attributes;

    std::optional<std::string_view> find(std::string_view name) const {
        return find_attribute(attributes, name);
    }
    std::vector<std::string_view> all(std::string_view name) const {
        return all_attributes(attributes, name);
    }
    bool has(std::string_view name) const { return find(name).has_value(); }
    bool operator==(const MediaDescription&) const = default;
};

struct SessionDescription {
    int version = 0; // v=; only 0 exists
    Origin origin;
    std::string session_name = "-";         // s=; "" is serialized as "s= " (§5.3)
    std::optional<std::string> information; // i=
    std::optional<std::string> uri;         // u=
    std::vector<std::string> emails;        // e=
    std::vector<std::string> phones;        // p=
    std::optional<Connection> connection;   // c=
    std::vector<Bandwidth> bandwidths;
    std::vector<Timing> timings;           // t= (+ r=); empty only if the input had none
    std::optional<std::string> time_zones; // z=
    std::optional<std::string> key;        // k=
    std::vector<OtherLine> other_lines;
    std::vector<Attribute> attributes;
    std::vector<MediaDescription> media;

    std::optional<std::string_view> find(std::string_view name) const {
        return find_attribute(attributes, name);
    }
    std::vector<std::string_view> all(std::string_view name) const {
        return all_attributes(attributes, name);
    }
    bool has(std::string_view name) const { return find(name).has_value(); }
    bool operator==(const SessionDescription&) const = default;
};

base::Result<SessionDescription> parse(std::string_view text);
std::string serialize(const SessionDescription& sd);

// ---- Typed accessors ------------------------------------------------------------------------
// Session-level attributes apply to every m-section that does not carry its own (RFC 8839 §5.4
// ice-ufrag/ice-pwd, RFC 8122 §5 fingerprint, RFC 4145 setup): look in `m` first, then in `sd`.
std::optional<std::string_view> find_effective(const SessionDescription& sd,
                                               const MediaDescription& m, std::string_view name);
// All occurrences at media level, or if there are none, all at session level.
std::vector<std::string_view> all_effective(const SessionDescription& sd, const MediaDescription& m,
                                            std::string_view name);

// a=group:<semantics> <id>... (RFC 5888).
struct Group {
    std::string semantics;
    std::vector<std::string> mids;
    bool operator==(const Group&) const = default;
};
std::vector<Group> groups(const SessionDescription& sd);
// The mids of the first a=group:BUNDLE (RFC 8843); empty if there is none.
std::vector<std::string> bundle_mids(const SessionDescription& sd);

// a=mid (RFC 5888 §4).
std::optional<std::string_view> mid(const MediaDescription& m);
// a=ice-ufrag / a=ice-pwd, media level then session level (RFC 8839 §5.4).
std::optional<std::string_view> ice_ufrag(const SessionDescription& sd, const MediaDescription& m);
std::optional<std::string_view> ice_pwd(const SessionDescription& sd, const MediaDescription& m);
// a=ice-options tokens, media level then session level (RFC 8839 §5.6).
std::vector<std::string> ice_options(const SessionDescription& sd, const MediaDescription& m);
// a=ice-lite is a session-level flag (RFC 8839 §5.3).
bool ice_lite(const SessionDescription& sd);
// a=candidate values (raw; core/sdp/candidate_line.hpp parses the grammar).
std::vector<std::string_view> candidates(const MediaDescription& m);
// a=end-of-candidates at media or session level (RFC 8840 §8.2).
bool end_of_candidates(const SessionDescription& sd, const MediaDescription& m);

// a=fingerprint:<hash-func> <hex pairs> (RFC 8122 §5). The algorithm is lower-cased. One type
// with core/dtls, which checks the peer's certificate against it: the formatting and digest
// sizes live there (no OpenSSL types in that header).
using Fingerprint = dtls::Fingerprint;
// Validates the hex pairs and, for sha-1/224/256/384/512, the digest length. Other algorithms
// (md5, md2, unknown tokens) parse with their bytes; callers decide what they accept.
base::Result<Fingerprint> parse_fingerprint(std::string_view value);
// "sha-256 AB:CD:..." (upper-case hex, as browsers print it).
using dtls::format_fingerprint;
// Digest length in bytes of a hash function we know, 0 otherwise.
inline std::size_t fingerprint_length(std::string_view algorithm) {
    return dtls::fingerprint_digest_size(algorithm);
}

// a=setup (RFC 4145 §4, RFC 8842 §5).
enum class Setup { ActPass, Active, Passive, HoldConn };
std::optional<Setup> parse_setup(std::string_view value);
std::string_view setup_name(Setup s);
std::optional<Setup> setup(const SessionDescription& sd, const MediaDescription& m);

// a=sctp-port (RFC 8841 §5) and a=max-message-size (RFC 8841 §6): nullopt if absent or not a
// number in range.
std::optional<std::uint16_t> sctp_port(const MediaDescription& m);
std::optional<std::uint64_t> max_message_size(const MediaDescription& m);

// a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>] (RFC 8866 §6.6).
struct RtpMap {
    std::uint8_t payload_type = 0;
    std::string encoding;
    std::uint32_t clock_rate = 0;
    std::optional<std::uint16_t> channels;
    bool operator==(const RtpMap&) const = default;
};
base::Result<RtpMap> parse_rtpmap(std::string_view value);
std::vector<RtpMap> rtpmaps(const MediaDescription& m); // malformed lines skipped

// a=fmtp:<pt> <params> (RFC 8866 §6.15); params kept as one string.
struct Fmtp {
    std::uint8_t payload_type = 0;
    std::string params;
    bool operator==(const Fmtp&) const = default;
};
base::Result<Fmtp> parse_fmtp(std::string_view value);
std::vector<Fmtp> fmtps(const MediaDescription& m);

// a=rtcp-fb:<pt|*> <type> [<param>] (RFC 4585 §4.2).
struct RtcpFb {
    std::optional<std::uint8_t> payload_type; // nullopt for "*"
    std::string type;
    std::string param; // "" if none; may contain spaces ("app foo")
    bool operator==(const RtcpFb&) const = default;
};
base::Result<RtcpFb> parse_rtcp_fb(std::string_view value);
std::vector<RtcpFb> rtcp_fbs(const MediaDescription& m);

// a=extmap:<id>[/<direction>] <uri> [<attributes>] (RFC 8285 §8).
struct ExtMap {
    std::uint16_t id = 0;
    std::optional<std::string> direction;
    std::string uri;
    std::string attributes;
    bool operator==(const ExtMap&) const = default;
};
base::Result<ExtMap> parse_extmap(std::string_view value);
std::vector<ExtMap> extmaps(const MediaDescription& m);

// a=ssrc:<ssrc> <attribute>[:<value>] (RFC 5576 §4.1).
struct SsrcAttribute {
    std::uint32_t ssrc = 0;
    std::string attribute;
    std::optional<std::string> value;
    bool operator==(const SsrcAttribute&) const = default;
};
base::Result<SsrcAttribute> parse_ssrc(std::string_view value);
std::vector<SsrcAttribute> ssrcs(const MediaDescription& m);

// a=msid:<stream id> [<track id>] (RFC 8830 §2).
struct Msid {
    std::string stream_id;
    std::optional<std::string> track_id;
    bool operator==(const Msid&) const = default;
};
base::Result<Msid> parse_msid(std::string_view value);
std::vector<Msid> msids(const MediaDescription& m);

// a=rtcp-mux (RFC 5761 §5.1.1).
bool rtcp_mux(const MediaDescription& m);

// sendrecv / sendonly / recvonly / inactive (RFC 8866 §6.7); media level, then session level,
// default sendrecv.
enum class Direction { SendRecv, SendOnly, RecvOnly, Inactive };
Direction direction(const SessionDescription& sd, const MediaDescription& m);

} // namespace rtcat::sdp
