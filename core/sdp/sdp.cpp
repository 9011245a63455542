#include "core/sdp/sdp.hpp"

#include <algorithm>
#include <charconv>

#include "core/base/bytes.hpp"
#include "core/base/printable.hpp"

namespace rtcat::sdp {
namespace {

struct Line {
    std::size_t number = 0;
    char type = 0;
    std::string_view value;
};

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

std::string_view trim_right(std::string_view s) {
    while (!s.empty() && is_blank(s.back()))
        s.remove_suffix(1);
    return s;
}

std::string_view trim(std::string_view s) {
    s = trim_right(s);
    while (!s.empty() && is_blank(s.front()))
        s.remove_prefix(1);
    return s;
}

// Fields separated by one or more spaces/tabs (RFC 8866 uses one SP; stacks that pad with more
// are tolerated, the serializer writes one).
std::vector<std::string_view> fields(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
            ++i;
        std::size_t start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t')
            ++i;
        if (i > start)
            out.push_back(s.substr(start, i - start));
    }
    return out;
}

template <typename T> std::optional<T> to_number(std::string_view s) {
    T v{};
    if (s.empty())
        return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size())
        return std::nullopt;
    return v;
}

bool is_letter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

base::Error line_error(const Line& l, std::string_view what) {
    return base::make_error("line {}: {}", l.number, what);
}

base::Result<std::vector<Line>> split_lines(std::string_view text) {
    if (text.size() > kMaxSdpBytes)
        return base::make_error("SDP is larger than {} bytes", kMaxSdpBytes);
    std::vector<Line> lines;
    std::size_t number = 0;
    std::size_t pending_blank = 0; // line number of a blank line seen after content
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        std::string_view raw =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++number;
        if (number > kMaxSdpLines)
            return base::make_error("SDP has more than {} lines", kMaxSdpLines);
        if (raw.size() > kMaxSdpLineLength)
            return base::make_error("line {}: longer than {} characters", number,
                                    kMaxSdpLineLength);
        std::string_view s = trim_right(raw);
        if (s.empty()) {
            if (!lines.empty() && pending_blank == 0)
                pending_blank = number;
            continue;
        }
        if (pending_blank != 0)
            return base::make_error("line {}: empty line inside the description", pending_blank);
        Line l{.number = number, .type = 0, .value = {}};
        if (s.size() < 2 || s[1] != '=' || !is_letter(s[0]))
            return line_error(l, "expected <type>=<value>");
        if (s.find('\0') != std::string_view::npos)
            return line_error(l, "contains a NUL byte");
        if (s.find('\r') != std::string_view::npos)
            return line_error(l, "contains a carriage return inside the line");
        l.type = s[0];
        l.value = s.substr(2);
        lines.push_back(l);
    }
    if (lines.empty())
        return base::Error{"empty SDP"};
    return lines;
}

base::Result<Connection> parse_connection(const Line& l) {
    auto f = fields(l.value);
    if (f.size() != 3)
        return line_error(l, "c= needs 3 fields (<nettype> <addrtype> <address>)");
    return Connection{
        .nettype = std::string(f[0]), .addrtype = std::string(f[1]), .address = std::string(f[2])};
}

base::Result<Bandwidth> parse_bandwidth(const Line& l) {
    auto colon = l.value.find(':');
    if (colon == std::string_view::npos || colon == 0)
        return line_error(l, "b= needs <bwtype>:<bandwidth>");
    auto v = to_number<std::uint64_t>(trim(l.value.substr(colon + 1)));
    if (!v)
        return line_error(l, "b= bandwidth is not a number");
    return Bandwidth{.type = std::string(l.value.substr(0, colon)), .value = *v};
}

base::Result<Timing> parse_timing(const Line& l) {
    auto f = fields(l.value);
    if (f.size() != 2)
        return line_error(l, "t= needs 2 fields (<start-time> <stop-time>)");
    auto start = to_number<std::uint64_t>(f[0]);
    auto stop = to_number<std::uint64_t>(f[1]);
    if (!start || !stop)
        return line_error(l, "t= time is not a number");
    return Timing{.start = *start, .stop = *stop, .repeats = {}};
}

base::Result<Attribute> parse_attribute(const Line& l) {
    auto colon = l.value.find(':');
    std::string_view name = l.value.substr(0, colon);
    if (name.empty())
        return line_error(l, "a= needs an attribute name");
    Attribute a{.name = std::string(name), .value = std::nullopt};
    if (colon != std::string_view::npos)
        a.value = std::string(l.value.substr(colon + 1));
    return a;
}

base::Result<MediaDescription> parse_media_line(const Line& l) {
    auto f = fields(l.value);
    if (f.size() < 3)
        return line_error(l, "m= needs <media> <port> <proto> [<fmt>...]");
    MediaDescription m;
    m.media = std::string(f[0]);
    std::string_view port = f[1];
    auto slash = port.find('/');
    auto p = to_number<std::uint32_t>(port.substr(0, slash));
    if (!p)
        return line_error(l, "m= port is not a number");
    if (*p > 65535)
        return line_error(l, "m= port is out of range");
    m.port = static_cast<std::uint16_t>(*p);
    if (slash != std::string_view::npos) {
        auto c = to_number<std::uint16_t>(port.substr(slash + 1));
        if (!c)
            return line_error(l, "m= port count is not a number");
        m.port_count = *c;
    }
    m.proto = std::string(f[2]);
    for (std::size_t i = 3; i < f.size(); ++i)
        m.formats.emplace_back(f[i]);
    return m;
}

std::string_view type_name(char t) {
    switch (t) {
    case 'i':
        return "i=";
    case 'u':
        return "u=";
    case 'c':
        return "c=";
    case 'z':
        return "z=";
    case 'k':
        return "k=";
    default:
        return "?=";
    }
}

void write_line(std::string& out, char type, std::string_view value) {
    out.push_back(type);
    out.push_back('=');
    out.append(value);
    out.append("\r\n");
}

std::string connection_text(const Connection& c) {
    return c.nettype + " " + c.addrtype + " " + c.address;
}

std::string bandwidth_text(const Bandwidth& b) {
    return b.type + ":" + std::to_string(b.value);
}

void write_attributes(std::string& out, const std::vector<Attribute>& attrs) {
    for (const auto& a : attrs) {
        out.append("a=");
        out.append(a.name);
        if (a.value) {
            out.push_back(':');
            out.append(*a.value);
        }
        out.append("\r\n");
    }
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Splits "<first> <rest>" at the first run of spaces; rest may be empty.
std::pair<std::string_view, std::string_view> split_first(std::string_view s) {
    s = trim(s);
    auto sp = s.find_first_of(" \t");
    if (sp == std::string_view::npos)
        return {s, {}};
    return {s.substr(0, sp), trim(s.substr(sp + 1))};
}

template <typename T, typename F>
std::vector<T> collect(const MediaDescription& m, std::string_view name, F parse_fn) {
    std::vector<T> out;
    for (auto v : m.all(name)) {
        auto r = parse_fn(v);
        if (r)
            out.push_back(std::move(*r));
    }
    return out;
}

} // namespace

std::optional<std::string_view> find_attribute(std::span<const Attribute> attrs,
                                               std::string_view name) {
    for (const auto& a : attrs)
        if (a.name == name)
            return a.value ? std::string_view(*a.value) : std::string_view();
    return std::nullopt;
}

std::vector<std::string_view> all_attributes(std::span<const Attribute> attrs,
                                             std::string_view name) {
    std::vector<std::string_view> out;
    for (const auto& a : attrs)
        if (a.name == name)
            out.push_back(a.value ? std::string_view(*a.value) : std::string_view());
    return out;
}

base::Result<SessionDescription> parse(std::string_view text) {
    auto lines_r = split_lines(text);
    if (!lines_r)
        return lines_r.error();
    const auto& lines = *lines_r;
    SessionDescription sd;
    sd.session_name.clear();

    // RFC 8866 §5: v=, o=, s= open every description, in that order.
    const Line& v = lines[0];
    if (v.type != 'v')
        return line_error(v, "expected v=0 as the first line");
    if (trim(v.value) != "0")
        return line_error(v, "unsupported SDP version (only v=0 exists)");
    // o= and s= follow in that order per §5, but some stacks put c= before s= (sdp-transform's
    // mediaclk fixtures): accept them anywhere before the first m=, exactly once.
    bool have_origin = false, have_name = false;
    auto check_header = [&](const Line* at) -> base::Result<void> {
        if (have_origin && have_name)
            return {};
        std::string_view missing = have_origin ? "s=" : "o=";
        if (at)
            return base::make_error("line {}: m= before the {} line", at->number, missing);
        return base::make_error("missing {} line", missing);
    };
    MediaDescription* m = nullptr;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const Line& l = lines[i];
        if (l.type == 'o' && !m && !have_origin) {
            auto f = fields(l.value);
            if (f.size() != 6)
                return line_error(l, "o= needs 6 fields");
            sd.origin = Origin{.username = std::string(f[0]),
                               .session_id = std::string(f[1]),
                               .session_version = std::string(f[2]),
                               .nettype = std::string(f[3]),
                               .addrtype = std::string(f[4]),
                               .address = std::string(f[5])};
            have_origin = true;
            continue;
        }
        if (l.type == 's' && !m && !have_name) {
            sd.session_name = std::string(l.value);
            have_name = true;
            continue;
        }
        if (l.type == 'v' || l.type == 'o' || l.type == 's')
            return base::make_error("line {}: unexpected {}= line (only one per description)",
                                    l.number, l.type);
        if (l.type == 'm') {
            if (auto ok = check_header(&l); !ok)
                return ok.error();
            auto md = parse_media_line(l);
            if (!md)
                return md.error();
            sd.media.push_back(std::move(*md));
            m = &sd.media.back();
            continue;
        }
        if (l.type == 'a') {
            auto a = parse_attribute(l);
            if (!a)
                return a.error();
            (m ? m->attributes : sd.attributes).push_back(std::move(*a));
            continue;
        }
        if (l.type == 'b') {
            auto b = parse_bandwidth(l);
            if (!b)
                return b.error();
            (m ? m->bandwidths : sd.bandwidths).push_back(std::move(*b));
            continue;
        }
        auto set_once = [&](std::optional<std::string>& slot) -> base::Result<void> {
            if (slot)
                return base::make_error("line {}: more than one {} line", l.number,
                                        type_name(l.type));
            slot = std::string(l.value);
            return {};
        };
        if (m) {
            base::Result<void> r;
            switch (l.type) {
            case 'i':
                r = set_once(m->title);
                break;
            case 'k':
                r = set_once(m->key);
                break;
            case 'c': {
                auto c = parse_connection(l);
                if (!c)
                    return c.error();
                m->connections.push_back(std::move(*c));
                break;
            }
            default:
                m->other_lines.push_back(OtherLine{.type = l.type, .value = std::string(l.value)});
            }
            if (!r)
                return r.error();
            continue;
        }
        base::Result<void> r;
        switch (l.type) {
        case 'i':
            r = set_once(sd.information);
            break;
        case 'u':
            r = set_once(sd.uri);
            break;
        case 'z':
            r = set_once(sd.time_zones);
            break;
        case 'k':
            r = set_once(sd.key);
            break;
        case 'e':
            sd.emails.emplace_back(l.value);
            break;
        case 'p':
            sd.phones.emplace_back(l.value);
            break;
        case 'c': {
            if (sd.connection)
                return line_error(l, "more than one c= line at session level");
            auto c = parse_connection(l);
            if (!c)
                return c.error();
            sd.connection = std::move(*c);
            break;
        }
        case 't': {
            auto t = parse_timing(l);
            if (!t)
                return t.error();
            sd.timings.push_back(std::move(*t));
            break;
        }
        case 'r':
            if (sd.timings.empty())
                return line_error(l, "r= without a preceding t=");
            sd.timings.back().repeats.emplace_back(l.value);
            break;
        default:
            sd.other_lines.push_back(OtherLine{.type = l.type, .value = std::string(l.value)});
        }
        if (!r)
            return r.error();
    }
    if (auto ok = check_header(nullptr); !ok)
        return ok.error();
    return sd;
}

std::string serialize(const SessionDescription& sd) {
    std::string out;
    out.reserve(1024);
    write_line(out, 'v', std::to_string(sd.version));
    const auto& o = sd.origin;
    write_line(out, 'o',
               o.username + " " + o.session_id + " " + o.session_version + " " + o.nettype + " " +
                   o.addrtype + " " + o.address);
    // RFC 8866 §5.3: "s= " (a single space) when there is no name.
    write_line(out, 's', sd.session_name.empty() ? std::string_view(" ") : sd.session_name);
    if (sd.information)
        write_line(out, 'i', *sd.information);
    if (sd.uri)
        write_line(out, 'u', *sd.uri);
    for (const auto& e : sd.emails)
        write_line(out, 'e', e);
    for (const auto& p : sd.phones)
        write_line(out, 'p', p);
    if (sd.connection)
        write_line(out, 'c', connection_text(*sd.connection));
    for (const auto& b : sd.bandwidths)
        write_line(out, 'b', bandwidth_text(b));
    for (const auto& t : sd.timings) {
        write_line(out, 't', std::to_string(t.start) + " " + std::to_string(t.stop));
        for (const auto& r : t.repeats)
            write_line(out, 'r', r);
    }
    if (sd.time_zones)
        write_line(out, 'z', *sd.time_zones);
    if (sd.key)
        write_line(out, 'k', *sd.key);
    for (const auto& x : sd.other_lines)
        write_line(out, x.type, x.value);
    write_attributes(out, sd.attributes);
    for (const auto& m : sd.media) {
        std::string ml = m.media + " " + std::to_string(m.port);
        if (m.port_count)
            ml += "/" + std::to_string(*m.port_count);
        ml += " " + m.proto;
        for (const auto& f : m.formats)
            ml += " " + f;
        write_line(out, 'm', ml);
        if (m.title)
            write_line(out, 'i', *m.title);
        for (const auto& c : m.connections)
            write_line(out, 'c', connection_text(c));
        for (const auto& b : m.bandwidths)
            write_line(out, 'b', bandwidth_text(b));
        if (m.key)
            write_line(out, 'k', *m.key);
        for (const auto& x : m.other_lines)
            write_line(out, x.type, x.value);
        write_attributes(out, m.attributes);
    }
    return out;
}

// ---- Typed accessors ------------------------------------------------------------------------

std::optional<std::string_view> find_effective(const SessionDescription& sd,
                                               const MediaDescription& m, std::string_view name) {
    if (auto v = m.find(name))
        return v;
    return sd.find(name);
}

std::vector<std::string_view> all_effective(const SessionDescription& sd, const MediaDescription& m,
                                            std::string_view name) {
    auto v = m.all(name);
    if (!v.empty())
        return v;
    return sd.all(name);
}

std::vector<Group> groups(const SessionDescription& sd) {
    std::vector<Group> out;
    for (auto v : sd.all("group")) {
        auto f = fields(v);
        if (f.empty())
            continue;
        Group g{.semantics = std::string(f[0]), .mids = {}};
        for (std::size_t i = 1; i < f.size(); ++i)
            g.mids.emplace_back(f[i]);
        out.push_back(std::move(g));
    }
    return out;
}

std::vector<std::string> bundle_mids(const SessionDescription& sd) {
    for (auto& g : groups(sd))
        if (g.semantics == "BUNDLE")
            return std::move(g.mids);
    return {};
}

std::optional<std::string_view> mid(const MediaDescription& m) {
    auto v = m.find("mid");
    if (v)
        return trim(*v);
    return v;
}

std::optional<std::string_view> ice_ufrag(const SessionDescription& sd, const MediaDescription& m) {
    auto v = find_effective(sd, m, "ice-ufrag");
    if (v)
        return trim(*v);
    return v;
}

std::optional<std::string_view> ice_pwd(const SessionDescription& sd, const MediaDescription& m) {
    auto v = find_effective(sd, m, "ice-pwd");
    if (v)
        return trim(*v);
    return v;
}

std::vector<std::string> ice_options(const SessionDescription& sd, const MediaDescription& m) {
    std::vector<std::string> out;
    for (auto v : all_effective(sd, m, "ice-options"))
        for (auto f : fields(v))
            out.emplace_back(f);
    return out;
}

bool ice_lite(const SessionDescription& sd) {
    return sd.has("ice-lite");
}

std::vector<std::string_view> candidates(const MediaDescription& m) {
    return m.all("candidate");
}

bool end_of_candidates(const SessionDescription& sd, const MediaDescription& m) {
    return m.has("end-of-candidates") || sd.has("end-of-candidates");
}

base::Result<Fingerprint> parse_fingerprint(std::string_view value) {
    auto [alg, hex] = split_first(value);
    if (alg.empty() || hex.empty())
        return base::Error{"a=fingerprint needs <hash-function> <fingerprint>"};
    Fingerprint fp{.algorithm = lower(alg), .value = {}};
    // RFC 8122 §5: fingerprint = 2UHEX *(":" 2UHEX); lower case is tolerated (seen in the wild).
    std::size_t i = 0;
    while (true) {
        if (i + 2 > hex.size())
            return base::make_error("a=fingerprint: '{}' is not a list of hex pairs",
                                    base::printable(hex));
        int hi = base::hex_value(hex[i]);
        int lo = base::hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return base::make_error("a=fingerprint: '{}' is not a list of hex pairs",
                                    base::printable(hex));
        fp.value.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
        i += 2;
        if (i == hex.size())
            break;
        if (hex[i] != ':')
            return base::make_error("a=fingerprint: '{}' is not a list of hex pairs",
                                    base::printable(hex));
        ++i;
    }
    std::size_t want = fingerprint_length(fp.algorithm);
    if (want != 0 && fp.value.size() != want)
        return base::make_error("a=fingerprint: {} digest must be {} bytes, got {}",
                                base::printable(fp.algorithm), want, fp.value.size());
    return fp;
}

std::optional<Setup> parse_setup(std::string_view value) {
    std::string v = lower(trim(value));
    if (v == "actpass")
        return Setup::ActPass;
    if (v == "active")
        return Setup::Active;
    if (v == "passive")
        return Setup::Passive;
    if (v == "holdconn")
        return Setup::HoldConn;
    return std::nullopt;
}

std::string_view setup_name(Setup s) {
    switch (s) {
    case Setup::ActPass:
        return "actpass";
    case Setup::Active:
        return "active";
    case Setup::Passive:
        return "passive";
    case Setup::HoldConn:
        return "holdconn";
    }
    return "actpass";
}

std::optional<Setup> setup(const SessionDescription& sd, const MediaDescription& m) {
    auto v = find_effective(sd, m, "setup");
    if (!v)
        return std::nullopt;
    return parse_setup(*v);
}

std::optional<std::uint16_t> sctp_port(const MediaDescription& m) {
    auto v = m.find("sctp-port");
    if (!v)
        return std::nullopt;
    return to_number<std::uint16_t>(trim(*v));
}

std::optional<std::uint64_t> max_message_size(const MediaDescription& m) {
    auto v = m.find("max-message-size");
    if (!v)
        return std::nullopt;
    return to_number<std::uint64_t>(trim(*v));
}

base::Result<RtpMap> parse_rtpmap(std::string_view value) {
    auto [pt_s, rest] = split_first(value);
    auto pt = to_number<std::uint8_t>(pt_s);
    if (!pt || *pt > 127)
        return base::Error{"a=rtpmap: payload type is not a number 0-127"};
    auto s1 = rest.find('/');
    if (s1 == std::string_view::npos || s1 == 0)
        return base::Error{"a=rtpmap needs <encoding>/<clock rate>"};
    RtpMap r{.payload_type = *pt,
             .encoding = std::string(rest.substr(0, s1)),
             .clock_rate = 0,
             .channels = std::nullopt};
    std::string_view after = rest.substr(s1 + 1);
    auto s2 = after.find('/');
    auto rate = to_number<std::uint32_t>(after.substr(0, s2));
    if (!rate)
        return base::Error{"a=rtpmap: clock rate is not a number"};
    r.clock_rate = *rate;
    if (s2 != std::string_view::npos) {
        auto ch = to_number<std::uint16_t>(after.substr(s2 + 1));
        if (!ch)
            return base::Error{"a=rtpmap: channel count is not a number"};
        r.channels = *ch;
    }
    return r;
}

std::vector<RtpMap> rtpmaps(const MediaDescription& m) {
    return collect<RtpMap>(m, "rtpmap", parse_rtpmap);
}

base::Result<Fmtp> parse_fmtp(std::string_view value) {
    auto [pt_s, rest] = split_first(value);
    auto pt = to_number<std::uint8_t>(pt_s);
    if (!pt || *pt > 127)
        return base::Error{"a=fmtp: payload type is not a number 0-127"};
    return Fmtp{.payload_type = *pt, .params = std::string(rest)};
}

std::vector<Fmtp> fmtps(const MediaDescription& m) {
    return collect<Fmtp>(m, "fmtp", parse_fmtp);
}

base::Result<RtcpFb> parse_rtcp_fb(std::string_view value) {
    auto [pt_s, rest] = split_first(value);
    RtcpFb fb;
    if (pt_s != "*") {
        auto pt = to_number<std::uint8_t>(pt_s);
        if (!pt || *pt > 127)
            return base::Error{"a=rtcp-fb: payload type is not a number 0-127 or *"};
        fb.payload_type = *pt;
    }
    auto [type, param] = split_first(rest);
    if (type.empty())
        return base::Error{"a=rtcp-fb needs a feedback type"};
    fb.type = std::string(type);
    fb.param = std::string(param);
    return fb;
}

std::vector<RtcpFb> rtcp_fbs(const MediaDescription& m) {
    return collect<RtcpFb>(m, "rtcp-fb", parse_rtcp_fb);
}

base::Result<ExtMap> parse_extmap(std::string_view value) {
    auto [id_s, rest] = split_first(value);
    ExtMap e;
    auto slash = id_s.find('/');
    auto id = to_number<std::uint16_t>(id_s.substr(0, slash));
    // RFC 8285 §5: 1-14 one-byte, 1-255 two-byte; 4096-4351 were for extmap negotiation.
    if (!id || *id == 0 || *id > 4351)
        return base::Error{"a=extmap: id is not a number 1-4351"};
    e.id = *id;
    if (slash != std::string_view::npos)
        e.direction = std::string(id_s.substr(slash + 1));
    auto [uri, attrs] = split_first(rest);
    if (uri.empty())
        return base::Error{"a=extmap needs a URI"};
    e.uri = std::string(uri);
    e.attributes = std::string(attrs);
    return e;
}

std::vector<ExtMap> extmaps(const MediaDescription& m) {
    return collect<ExtMap>(m, "extmap", parse_extmap);
}

base::Result<SsrcAttribute> parse_ssrc(std::string_view value) {
    auto [ssrc_s, rest] = split_first(value);
    auto ssrc = to_number<std::uint32_t>(ssrc_s);
    if (!ssrc)
        return base::Error{"a=ssrc: SSRC is not a 32-bit number"};
    if (rest.empty())
        return base::Error{"a=ssrc needs an attribute"};
    SsrcAttribute s{.ssrc = *ssrc, .attribute = {}, .value = std::nullopt};
    auto colon = rest.find(':');
    s.attribute = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos)
        s.value = std::string(rest.substr(colon + 1));
    return s;
}

std::vector<SsrcAttribute> ssrcs(const MediaDescription& m) {
    return collect<SsrcAttribute>(m, "ssrc", parse_ssrc);
}

base::Result<Msid> parse_msid(std::string_view value) {
    auto f = fields(value);
    if (f.empty() || f.size() > 2)
        return base::Error{"a=msid needs <stream id> [<track id>]"};
    Msid m{.stream_id = std::string(f[0]), .track_id = std::nullopt};
    if (f.size() == 2)
        m.track_id = std::string(f[1]);
    return m;
}

std::vector<Msid> msids(const MediaDescription& m) {
    return collect<Msid>(m, "msid", parse_msid);
}

bool rtcp_mux(const MediaDescription& m) {
    return m.has("rtcp-mux");
}

Direction direction(const SessionDescription& sd, const MediaDescription& m) {
    auto pick = [](std::span<const Attribute> attrs) -> std::optional<Direction> {
        for (const auto& a : attrs) {
            if (a.name == "sendrecv")
                return Direction::SendRecv;
            if (a.name == "sendonly")
                return Direction::SendOnly;
            if (a.name == "recvonly")
                return Direction::RecvOnly;
            if (a.name == "inactive")
                return Direction::Inactive;
        }
        return std::nullopt;
    };
    if (auto d = pick(m.attributes))
        return *d;
    if (auto d = pick(sd.attributes))
        return *d;
    return Direction::SendRecv;
}

} // namespace rtcat::sdp
