#include "core/sdp/signal.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "core/base/bytes.hpp"
#include "core/base/crc32.hpp"
#include "core/base/printable.hpp"
#include "core/net/address.hpp"
#include "core/sdp/candidate_line.hpp"

namespace rtcat::sdp {
namespace {

// ---- small helpers ---------------------------------------------------------------------------

bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::size_t skip_ws(std::string_view s, std::size_t i = 0) {
    while (i < s.size() && is_ws(s[i]))
        ++i;
    return i;
}

std::string_view trim_ws(std::string_view s) {
    s.remove_prefix(skip_ws(s));
    while (!s.empty() && is_ws(s.back()))
        s.remove_suffix(1);
    return s;
}

// ---- base64url (RFC 4648 §5), no padding -----------------------------------------------------

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(base::ByteView in) {
    std::string out;
    out.reserve((in.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t v =
            (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
        for (int s = 18; s >= 0; s -= 6)
            out.push_back(kB64[(v >> s) & 0x3F]);
    }
    std::size_t rest = in.size() - i;
    if (rest == 1) {
        std::uint32_t v = std::uint32_t{in[i]} << 16;
        out.push_back(kB64[(v >> 18) & 0x3F]);
        out.push_back(kB64[(v >> 12) & 0x3F]);
    } else if (rest == 2) {
        std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8);
        out.push_back(kB64[(v >> 18) & 0x3F]);
        out.push_back(kB64[(v >> 12) & 0x3F]);
        out.push_back(kB64[(v >> 6) & 0x3F]);
    }
    return out;
}

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+') // '+' and '/' tolerated: someone may re-encode with plain base64
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

// `strict` also refuses set bits after the last whole byte, which the encoder never writes: a
// changed last character then never decodes to the same bytes.
std::optional<base::Bytes> base64url_decode(std::string_view s, bool strict) {
    while (!s.empty() && s.back() == '=')
        s.remove_suffix(1);
    if (s.size() % 4 == 1)
        return std::nullopt;
    base::Bytes out;
    out.reserve(s.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        int v = b64_value(c);
        if (v < 0)
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>(acc >> bits));
            acc &= (1u << bits) - 1;
        }
    }
    if (strict && acc != 0)
        return std::nullopt;
    return out;
}

// ---- token codec -----------------------------------------------------------------------------

// Limits of the payload (signal.hpp); the encoder checks each before writing, so it never emits
// a token the decoder would refuse.
constexpr std::size_t kMaxTokenCandidates = 64;
constexpr std::size_t kMaxTokenFingerprints = 4;
constexpr std::size_t kMaxTokenExtensions = 16; // per candidate, after the dropped ones
constexpr std::array<std::string_view, 5> kHashes = {"sha-1", "sha-224", "sha-256", "sha-384",
                                                     "sha-512"};

void put_varint(base::ByteWriter& w, std::uint64_t v) {
    while (v >= 0x80) {
        w.u8(static_cast<std::uint8_t>(v | 0x80));
        v >>= 7;
    }
    w.u8(static_cast<std::uint8_t>(v));
}

void put_str(base::ByteWriter& w, std::string_view s) {
    put_varint(w, s.size());
    w.bytes(s);
}

std::optional<std::uint32_t> get_varint(base::ByteReader& r) {
    std::uint64_t v = 0;
    for (int i = 0; i < 5; ++i) {
        std::uint8_t b = r.u8();
        if (r.failed())
            return std::nullopt;
        v |= std::uint64_t{b & 0x7Fu} << (7 * i);
        if (!(b & 0x80))
            return v <= 0xFFFFFFFFu ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(v))
                                    : std::nullopt;
    }
    return std::nullopt;
}

std::optional<std::string> get_str(base::ByteReader& r) {
    auto n = get_varint(r);
    if (!n)
        return std::nullopt;
    auto b = r.bytes(*n);
    if (r.failed())
        return std::nullopt;
    return std::string(b.begin(), b.end());
}

void put_addr(base::ByteWriter& w, std::string_view a) {
    if (auto ip = net::IpAddr::parse(a); ip && ip->to_string() == a) {
        w.u8(ip->is_v4() ? 4 : 6);
        w.bytes(base::ByteView(ip->data(), ip->size()));
        return;
    }
    w.u8(0);
    put_str(w, a);
}

std::optional<std::string> get_addr(base::ByteReader& r) {
    std::uint8_t kind = r.u8();
    if (r.failed())
        return std::nullopt;
    if (kind == 4) {
        auto b = r.bytes(4);
        if (r.failed())
            return std::nullopt;
        return net::IpAddr::v4(b[0], b[1], b[2], b[3]).to_string();
    }
    if (kind == 6) {
        auto b = r.bytes(16);
        if (r.failed())
            return std::nullopt;
        std::array<std::uint8_t, 16> a{};
        std::copy(b.begin(), b.end(), a.begin());
        return net::IpAddr::v6(a).to_string();
    }
    if (kind == 0)
        return get_str(r);
    return std::nullopt;
}

bool is_decimal_u32(std::string_view s) {
    if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0'))
        return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v <= 0xFFFFFFFFu;
}

// RFC 5888 §4: identification-tag = token (printable ASCII, no spaces).
bool is_token(std::string_view s) {
    for (char ch : s)
        if (ch <= 0x20 || ch >= 0x7f)
            return false;
    return true;
}

std::uint32_t to_u32(std::string_view s) {
    std::uint32_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

bool is_upper(std::string_view s) {
    for (char c : s)
        if (c >= 'a' && c <= 'z')
            return false;
    return true;
}

bool is_lower(std::string_view s) {
    for (char c : s)
        if (c >= 'A' && c <= 'Z')
            return false;
    return true;
}

bool is_dropped_extension(std::string_view name) {
    return std::find(kTokenDroppedExtensions.begin(), kTokenDroppedExtensions.end(), name) !=
           kTokenDroppedExtensions.end();
}

base::Error token_error(std::string_view why) {
    return base::make_error("cannot encode as an {} token: {}", kTokenPrefix, why);
}

base::Error bad_token(std::string_view why) {
    return base::make_error("invalid rtcat token: {}", why);
}

// Its own message: the fix is on the user's side (copy again), not a bug in either rtcat.
base::Error damaged_token() {
    return base::Error{"the token is damaged (a character was changed, lost or added): copy it "
                       "again"};
}

constexpr std::size_t kTokenChecksumBytes = 4;
static_assert(kTokenPrefix.size() == kLegacyTokenPrefix.size());

// ---- JSON object reader ------------------------------------------------------------------------

constexpr int kMaxJsonDepth = 32;

struct JsonReader {
    std::string_view s;
    std::size_t i = 0;

    void ws() { i = skip_ws(s, i); }
    bool eat(char c) {
        ws();
        if (i < s.size() && s[i] == c) {
            ++i;
            return true;
        }
        return false;
    }
    // A string token: returns its decoded content.
    base::Result<std::string> string() {
        ws();
        if (i >= s.size() || s[i] != '"')
            return base::Error{"invalid JSON: expected a string"};
        std::size_t start = ++i;
        while (i < s.size() && s[i] != '"') {
            if (s[i] == '\\')
                ++i;
            ++i;
        }
        if (i >= s.size())
            return base::Error{"invalid JSON: unterminated string"};
        auto body = s.substr(start, i - start);
        ++i;
        return json_unescape(body);
    }
    base::Result<void> skip_value(int depth) {
        if (depth > kMaxJsonDepth)
            return base::Error{"invalid JSON: nested too deeply"};
        ws();
        if (i >= s.size())
            return base::Error{"invalid JSON: expected a value"};
        char c = s[i];
        if (c == '"') {
            auto r = string();
            if (!r)
                return r.error();
            return {};
        }
        if (c == '{' || c == '[') {
            char close = c == '{' ? '}' : ']';
            ++i;
            if (eat(close))
                return {};
            while (true) {
                if (c == '{') {
                    auto k = string();
                    if (!k)
                        return k.error();
                    if (!eat(':'))
                        return base::Error{"invalid JSON: expected ':'"};
                }
                if (auto r = skip_value(depth + 1); !r)
                    return r;
                if (eat(close))
                    return {};
                if (!eat(','))
                    return base::Error{"invalid JSON: expected ',' or a closing bracket"};
            }
        }
        for (std::string_view lit : {"true", "false", "null"})
            if (s.substr(i, lit.size()) == lit) {
                i += lit.size();
                return {};
            }
        // number = [ "-" ] int [ frac ] [ exp ]
        std::size_t start = i;
        if (i < s.size() && s[i] == '-')
            ++i;
        auto digits = [&] {
            std::size_t d = i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9')
                ++i;
            return i > d;
        };
        if (!digits())
            return base::Error{"invalid JSON: unexpected character"};
        if (i < s.size() && s[i] == '.') {
            ++i;
            if (!digits())
                return base::Error{"invalid JSON: bad number"};
        }
        if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
            ++i;
            if (i < s.size() && (s[i] == '+' || s[i] == '-'))
                ++i;
            if (!digits())
                return base::Error{"invalid JSON: bad number"};
        }
        (void)start;
        return {};
    }
};

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::optional<std::uint32_t> hex4(std::string_view s, std::size_t at) {
    if (at + 4 > s.size())
        return std::nullopt;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
        int h = base::hex_value(s[at + k]);
        if (h < 0)
            return std::nullopt;
        v = (v << 4) | static_cast<std::uint32_t>(h);
    }
    return v;
}

base::Result<SignalMessage> decode_json(std::string_view text) {
    JsonReader r{.s = text, .i = 0};
    if (!r.eat('{'))
        return base::Error{"invalid JSON: expected '{'"};
    std::optional<std::string> type, sdp;
    if (!r.eat('}')) {
        while (true) {
            auto key = r.string();
            if (!key)
                return key.error();
            if (!r.eat(':'))
                return base::Error{"invalid JSON: expected ':'"};
            r.ws();
            if (*key == "type" || *key == "sdp") {
                if (r.i >= text.size() || text[r.i] != '"')
                    return base::make_error("JSON signal: \"{}\" must be a string",
                                            base::printable(*key));
                auto v = r.string();
                if (!v)
                    return v.error();
                (*key == "type" ? type : sdp) = std::move(*v);
            } else if (auto skipped = r.skip_value(1); !skipped) {
                return skipped.error();
            }
            if (r.eat('}'))
                break;
            if (!r.eat(','))
                return base::Error{"invalid JSON: expected ',' or '}'"};
        }
    }
    r.ws();
    if (r.i != text.size())
        return base::Error{"invalid JSON: text after the object"};
    if (!type)
        return base::Error{"JSON signal has no \"type\""};
    if (!sdp)
        return base::Error{"JSON signal has no \"sdp\""};
    SignalMessage msg;
    if (*type == "offer")
        msg.type = SdpType::Offer;
    else if (*type == "answer")
        msg.type = SdpType::Answer;
    else
        return base::make_error("unsupported SDP type \"{}\" (expected offer or answer)",
                                base::printable(*type));
    if (auto p = parse(*sdp); !p)
        return base::make_error("SDP in JSON: {}", p.error().message);
    msg.sdp = std::move(*sdp);
    return msg;
}

base::Result<SignalMessage> decode_plain(std::string_view text, std::optional<SdpType> type) {
    if (!type)
        return base::Error{"plain SDP does not say whether it is an offer or an answer"};
    text = trim_ws(text);
    if (auto p = parse(text); !p)
        return p.error();
    bool crlf = text.find("\r\n") != std::string_view::npos;
    SignalMessage msg{.type = *type, .sdp = std::string(text)};
    msg.sdp += crlf ? "\r\n" : "\n";
    return msg;
}

enum class Detected { Plain, Json, Token, NeedMore, Unknown };

Detected detect(std::string_view r, bool eof) {
    if (r.empty())
        return Detected::NeedMore;
    if (r[0] == '{')
        return Detected::Json;
    for (std::string_view prefix : {kTokenPrefix, kLegacyTokenPrefix}) {
        if (r.substr(0, prefix.size()) == prefix)
            return Detected::Token;
        if (r.size() < prefix.size() && prefix.substr(0, r.size()) == r)
            return eof ? Detected::Unknown : Detected::NeedMore;
    }
    if (r[0] == 'v') {
        if (r.size() < 2)
            return eof ? Detected::Unknown : Detected::NeedMore;
        if (r[1] == '=')
            return Detected::Plain;
    }
    return Detected::Unknown;
}

base::Error unknown_input() {
    return base::Error{"unrecognized signaling input: expected SDP (v=0...), JSON "
                       "({\"type\":...,\"sdp\":...}) or an rtcat2: token"};
}

} // namespace

std::string_view signal_format_name(SignalFormat f) {
    switch (f) {
    case SignalFormat::Plain:
        return "plain";
    case SignalFormat::Json:
        return "json";
    case SignalFormat::Token:
        return "token";
    }
    return "plain";
}

std::string json_escape(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() + 16);
    for (char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                out += "\\u00";
                out.push_back(kHex[(c >> 4) & 0xF]);
                out.push_back(kHex[c & 0xF]);
            } else {
                out.push_back(c);
            }
        }
    }
    return out;
}

base::Result<std::string> json_unescape(std::string_view body) {
    std::string out;
    out.reserve(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
        char c = body[i];
        if (static_cast<unsigned char>(c) < 0x20)
            return base::Error{"invalid JSON: control character inside a string"};
        if (c == '"')
            return base::Error{"invalid JSON: unescaped quote inside a string"};
        if (c != '\\') {
            out.push_back(c);
            continue;
        }
        if (++i >= body.size())
            return base::Error{"invalid JSON: string ends in a backslash"};
        switch (body[i]) {
        case '"':
            out.push_back('"');
            break;
        case '\\':
            out.push_back('\\');
            break;
        case '/':
            out.push_back('/');
            break;
        case 'b':
            out.push_back('\b');
            break;
        case 'f':
            out.push_back('\f');
            break;
        case 'n':
            out.push_back('\n');
            break;
        case 'r':
            out.push_back('\r');
            break;
        case 't':
            out.push_back('\t');
            break;
        case 'u': {
            auto cp = hex4(body, i + 1);
            if (!cp)
                return base::Error{"invalid JSON: bad \\u escape"};
            i += 4;
            if (*cp >= 0xDC00 && *cp <= 0xDFFF)
                return base::Error{"invalid JSON: lone low surrogate"};
            if (*cp >= 0xD800 && *cp <= 0xDBFF) {
                if (i + 2 >= body.size() || body[i + 1] != '\\' || body[i + 2] != 'u')
                    return base::Error{"invalid JSON: high surrogate without a low surrogate"};
                auto lo = hex4(body, i + 3);
                if (!lo || *lo < 0xDC00 || *lo > 0xDFFF)
                    return base::Error{"invalid JSON: high surrogate without a low surrogate"};
                i += 6;
                *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*lo - 0xDC00);
            }
            append_utf8(out, *cp);
            break;
        }
        default:
            return base::Error{"invalid JSON: unknown escape"};
        }
    }
    return out;
}

base::Result<std::string> encode_token(const SignalMessage& msg) {
    auto sd = parse(msg.sdp);
    if (!sd)
        return token_error(sd.error().message);
    if (sd->media.size() != 1 || find_datachannel_section(*sd) != 0)
        return token_error("it has sections other than one data channel");
    auto rp = extract_remote(*sd, msg.type);
    if (!rp)
        return token_error(rp.error().message);
    if (msg.type == SdpType::Offer && rp->setup != Setup::ActPass)
        return token_error("an offer must use a=setup:actpass");
    if (!is_token(rp->mid))
        return token_error("a=mid is not a token");
    if (rp->fingerprints.size() > kMaxTokenFingerprints)
        return token_error("too many fingerprints");
    if (rp->candidates.size() > kMaxTokenCandidates)
        return token_error("too many candidates");
    const MediaDescription& m = sd->media[0];

    base::Bytes payload;
    base::ByteWriter w(payload);
    std::uint8_t flags = msg.type == SdpType::Answer ? 1 : 0;
    flags |= static_cast<std::uint8_t>((rp->setup == Setup::ActPass  ? 0
                                        : rp->setup == Setup::Active ? 1
                                                                     : 2)
                                       << 1);
    if (rp->end_of_candidates)
        flags |= 1 << 3;
    if (rp->ice_lite)
        flags |= 1 << 4;
    auto opts = ice_options(*sd, m);
    if (std::find(opts.begin(), opts.end(), "trickle") != opts.end())
        flags |= 1 << 5;
    w.u8(flags);
    put_str(w, rp->ice_ufrag);
    put_str(w, rp->ice_pwd);
    put_str(w, rp->mid);
    w.u8(static_cast<std::uint8_t>(rp->fingerprints.size()));
    for (const auto& fp : rp->fingerprints) {
        auto it = std::find(kHashes.begin(), kHashes.end(), fp.algorithm);
        if (it == kHashes.end())
            return token_error("unsupported fingerprint algorithm " +
                               base::printable(fp.algorithm));
        w.u8(static_cast<std::uint8_t>(it - kHashes.begin() + 1));
        w.bytes(fp.value);
    }
    put_varint(w, rp->sctp_port);
    put_varint(w, rp->max_message_size);
    put_varint(w, rp->candidates.size());
    for (const auto& text : rp->candidates) {
        auto c = parse_candidate_line(text);
        if (!c)
            return token_error(c.error().message);
        // One bit carries the transport's case: "udp" and "UDP" come back as written, a mixed
        // "Udp" would come back lower case.
        if (!is_upper(c->transport) && !is_lower(c->transport))
            return token_error("a candidate's transport is in mixed case");
        std::size_t kept = 0;
        for (const auto& e : c->extensions)
            if (!is_dropped_extension(e.first))
                ++kept;
        if (kept > kMaxTokenExtensions)
            return token_error(
                fmt::format("a candidate has more than {} extensions", kMaxTokenExtensions));
        std::uint8_t cf = static_cast<std::uint8_t>(c->type);
        if (c->is_tcp())
            cf |= 1 << 2;
        if (is_upper(c->transport))
            cf |= 1 << 3;
        if (c->tcp_type) {
            std::uint8_t t = *c->tcp_type == "active" ? 1 : *c->tcp_type == "passive" ? 2 : 3;
            cf |= static_cast<std::uint8_t>(t << 4);
        }
        bool related = c->related_address && c->related_port;
        if (related)
            cf |= 1 << 6;
        bool numeric = is_decimal_u32(c->foundation);
        if (numeric)
            cf |= 1 << 7;
        w.u8(cf);
        if (numeric)
            put_varint(w, to_u32(c->foundation));
        else
            put_str(w, c->foundation);
        put_varint(w, c->component);
        w.u32(c->priority);
        put_addr(w, c->address);
        w.u16(c->port);
        if (related) {
            put_addr(w, *c->related_address);
            w.u16(*c->related_port);
        }
        put_varint(w, kept);
        for (const auto& e : c->extensions)
            if (!is_dropped_extension(e.first)) {
                put_str(w, e.first);
                put_str(w, e.second);
            }
    }
    // CRC-32 of the payload, appended least significant byte first: with the reflected CRC
    // that makes payload+CRC one codeword, in which every error burst of up to 32 bits, so any
    // one changed character (6 bits in at most two bytes), is detected (core/base/crc32.hpp).
    std::uint32_t crc = base::crc32(payload);
    for (std::size_t k = 0; k < kTokenChecksumBytes; ++k)
        payload.push_back(static_cast<std::uint8_t>(crc >> (8 * k)));
    std::string token = std::string(kTokenPrefix) + base64url_encode(payload);
    if (token.size() > kMaxTokenSignalBytes)
        return token_error(fmt::format("it would be longer than {} bytes", kMaxTokenSignalBytes));
    // The checks above mirror the decoder's limits one by one; decoding what we wrote makes sure
    // no limit added later to one side only can put an unreadable token on a user's screen.
    if (auto back = decode_token(token); !back)
        return token_error(back.error().message);
    return token;
}

namespace {

// The payload after the prefix (and checksum), as laid out in signal.hpp.
base::Result<SignalMessage> decode_payload(base::ByteView payload) {
    base::ByteReader r(payload);
    SignalMessage msg;
    LocalParams p;
    std::uint8_t flags = r.u8();
    msg.type = (flags & 1) ? SdpType::Answer : SdpType::Offer;
    switch ((flags >> 1) & 3) {
    case 0:
        p.setup = Setup::ActPass;
        break;
    case 1:
        p.setup = Setup::Active;
        break;
    case 2:
        p.setup = Setup::Passive;
        break;
    default:
        return bad_token("bad setup role");
    }
    if ((msg.type == SdpType::Offer) != (p.setup == Setup::ActPass))
        return bad_token("setup role does not fit the type");
    p.end_of_candidates = flags & (1 << 3);
    p.ice_lite = flags & (1 << 4);
    p.ice_trickle = flags & (1 << 5);
    auto ufrag = get_str(r);
    auto pwd = get_str(r);
    auto mid_s = get_str(r);
    if (!ufrag || !pwd || !mid_s)
        return bad_token("truncated");
    p.ice_ufrag = std::move(*ufrag);
    p.ice_pwd = std::move(*pwd);
    p.mid = std::move(*mid_s);
    if (!is_token(p.mid))
        return bad_token("mid is not a token");
    std::uint8_t nfp = r.u8();
    if (r.failed() || nfp == 0 || nfp > kMaxTokenFingerprints)
        return bad_token("bad fingerprint count");
    std::vector<Fingerprint> fps;
    for (std::uint8_t k = 0; k < nfp; ++k) {
        std::uint8_t h = r.u8();
        if (r.failed() || h == 0 || h > kHashes.size())
            return bad_token("bad fingerprint hash");
        Fingerprint fp{.algorithm = std::string(kHashes[h - 1u]), .value = {}};
        auto b = r.bytes(fingerprint_length(fp.algorithm));
        if (r.failed())
            return bad_token("truncated");
        fp.value.assign(b.begin(), b.end());
        fps.push_back(std::move(fp));
    }
    p.fingerprint = fps[0];
    auto port = get_varint(r);
    auto mms = get_varint(r);
    auto ncand = get_varint(r);
    if (!port || !mms || !ncand || *port > 65535)
        return bad_token("truncated");
    if (*ncand > kMaxTokenCandidates)
        return bad_token("too many candidates");
    p.sctp_port = static_cast<std::uint16_t>(*port);
    p.max_message_size = *mms;
    for (std::uint32_t k = 0; k < *ncand; ++k) {
        CandidateLine c;
        std::uint8_t cf = r.u8();
        c.type = static_cast<CandidateType>(cf & 3);
        c.transport = (cf & (1 << 2)) ? "tcp" : "udp";
        if (cf & (1 << 3))
            c.transport = (cf & (1 << 2)) ? "TCP" : "UDP";
        static constexpr std::array<std::string_view, 3> kTcpTypes = {"active", "passive", "so"};
        if (auto t = (cf >> 4) & 3)
            c.tcp_type = std::string(kTcpTypes[static_cast<std::size_t>(t - 1)]);
        if (cf & (1 << 7)) {
            auto f = get_varint(r);
            if (!f)
                return bad_token("truncated");
            c.foundation = std::to_string(*f);
        } else {
            auto f = get_str(r);
            if (!f)
                return bad_token("truncated");
            c.foundation = std::move(*f);
        }
        auto comp = get_varint(r);
        if (!comp || *comp > 256)
            return bad_token("bad candidate component");
        c.component = static_cast<std::uint16_t>(*comp);
        c.priority = r.u32();
        auto addr = get_addr(r);
        if (!addr)
            return bad_token("bad candidate address");
        c.address = std::move(*addr);
        c.port = r.u16();
        if (cf & (1 << 6)) {
            auto ra = get_addr(r);
            if (!ra)
                return bad_token("bad related address");
            c.related_address = std::move(*ra);
            c.related_port = r.u16();
        }
        auto next = get_varint(r);
        if (!next || *next > kMaxTokenExtensions)
            return bad_token("bad candidate extensions");
        for (std::uint32_t e = 0; e < *next; ++e) {
            auto key = get_str(r);
            auto val = get_str(r);
            if (!key || !val)
                return bad_token("truncated");
            c.extensions.emplace_back(std::move(*key), std::move(*val));
        }
        if (r.failed())
            return bad_token("truncated");
        // What we write must be what the ICE module will read back.
        std::string text = format_candidate_line(c);
        auto back = parse_candidate_line(text);
        if (!back)
            return bad_token(back.error().message);
        if (!(*back == c))
            return bad_token("candidate fields do not survive formatting");
        p.candidates.push_back(std::move(text));
    }
    if (r.failed() || !r.empty())
        return bad_token(r.failed() ? "truncated" : "trailing bytes");
    // A stable o= session id derived from the fingerprint (the token carries none).
    std::uint64_t id = 0;
    for (std::size_t k = 0; k < 8 && k < p.fingerprint.value.size(); ++k)
        id = (id << 8) | p.fingerprint.value[k];
    p.session_id = id & 0x7FFFFFFFFFFFFFFFull;
    SessionDescription sd = make_description(p, msg.type);
    auto& attrs = sd.media[0].attributes;
    auto at = std::find_if(attrs.begin(), attrs.end(),
                           [](const Attribute& a) { return a.name == "fingerprint"; });
    for (std::size_t k = 1; k < fps.size(); ++k)
        at = attrs.insert(at + 1,
                          Attribute{.name = "fingerprint", .value = format_fingerprint(fps[k])});
    msg.sdp = serialize(sd);
    // The rebuilt text must satisfy the same checks a received description does.
    auto again = parse(msg.sdp);
    if (!again)
        return bad_token(again.error().message);
    if (auto ok = extract_remote(*again, msg.type); !ok)
        return bad_token(ok.error().message);
    return msg;
}

} // namespace

base::Result<SignalMessage> decode_token(std::string_view token) {
    token = trim_ws(token);
    const bool checked = token.substr(0, kTokenPrefix.size()) == kTokenPrefix;
    if (!checked && token.substr(0, kLegacyTokenPrefix.size()) != kLegacyTokenPrefix)
        return bad_token(fmt::format("missing the {} prefix", kTokenPrefix));
    if (token.size() > kMaxTokenSignalBytes)
        return bad_token("too long");
    std::string_view body = token.substr(kTokenPrefix.size());
    if (!checked) {
        // Printed by rtcat builds before the checksum: read as they always were.
        auto payload = base64url_decode(body, false);
        if (!payload)
            return bad_token("not base64url");
        return decode_payload(*payload);
    }
    // Any damage that base64 itself shows (a character outside the alphabet, a length no
    // encoder writes) is the same mistake as a failed checksum, and gets the same message.
    auto payload = base64url_decode(body, true);
    if (!payload || payload->size() < kTokenChecksumBytes)
        return damaged_token();
    std::size_t n = payload->size() - kTokenChecksumBytes;
    std::uint32_t stored = 0;
    for (std::size_t k = 0; k < kTokenChecksumBytes; ++k)
        stored |= std::uint32_t{(*payload)[n + k]} << (8 * k);
    if (base::crc32(base::ByteView(payload->data(), n)) != stored)
        return damaged_token();
    return decode_payload(base::ByteView(payload->data(), n));
}

base::Result<std::string> encode_signal(const SignalMessage& msg, SignalFormat format) {
    switch (format) {
    case SignalFormat::Plain: {
        std::string out(trim_ws(msg.sdp));
        out += "\r\n\r\n";
        return out;
    }
    case SignalFormat::Json:
        return std::string("{\"type\":\"") + std::string(sdp_type_name(msg.type)) +
               "\",\"sdp\":\"" + json_escape(msg.sdp) + "\"}\n";
    case SignalFormat::Token: {
        auto t = encode_token(msg);
        if (!t)
            return t.error();
        return *t + "\n";
    }
    }
    return base::Error{"unknown signal format"};
}

base::Result<std::optional<Framed>> frame_signal(std::string_view buffered, bool eof) {
    std::size_t start = skip_ws(buffered);
    std::string_view r = buffered.substr(start);
    switch (detect(r, eof)) {
    case Detected::NeedMore:
        return std::optional<Framed>();
    case Detected::Unknown:
        return unknown_input();
    case Detected::Json: {
        bool in_string = false, escaped = false;
        int depth = 0;
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (i >= kMaxJsonSignalBytes)
                return base::make_error("JSON signal larger than {} bytes", kMaxJsonSignalBytes);
            char c = r[i];
            if (in_string) {
                if (escaped)
                    escaped = false;
                else if (c == '\\')
                    escaped = true;
                else if (c == '"')
                    in_string = false;
                continue;
            }
            if (c == '"') {
                in_string = true;
            } else if (c == '{' || c == '[') {
                if (++depth > kMaxJsonDepth)
                    return base::Error{"invalid JSON: nested too deeply"};
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return std::optional<Framed>(
                        Framed{.consumed = start + i + 1, .format = SignalFormat::Json});
            }
        }
        if (eof)
            return base::Error{"JSON signal cut short by the end of input"};
        return std::optional<Framed>();
    }
    case Detected::Token: {
        auto nl = r.find('\n');
        if (nl == std::string_view::npos) {
            if (r.size() > kMaxTokenSignalBytes)
                return base::make_error("token longer than {} bytes", kMaxTokenSignalBytes);
            if (!eof)
                return std::optional<Framed>();
            return std::optional<Framed>(
                Framed{.consumed = buffered.size(), .format = SignalFormat::Token});
        }
        if (nl > kMaxTokenSignalBytes)
            return base::make_error("token longer than {} bytes", kMaxTokenSignalBytes);
        return std::optional<Framed>(
            Framed{.consumed = start + nl + 1, .format = SignalFormat::Token});
    }
    case Detected::Plain: {
        std::size_t pos = 0;
        while (true) {
            auto nl = r.find('\n', pos);
            if (nl == std::string_view::npos) {
                if (r.size() > kMaxSdpBytes)
                    return base::make_error("SDP larger than {} bytes", kMaxSdpBytes);
                if (!eof)
                    return std::optional<Framed>();
                return std::optional<Framed>(
                    Framed{.consumed = buffered.size(), .format = SignalFormat::Plain});
            }
            if (nl > kMaxSdpBytes)
                return base::make_error("SDP larger than {} bytes", kMaxSdpBytes);
            std::string_view line = r.substr(pos, nl - pos);
            bool blank = true;
            for (char c : line)
                if (!is_ws(c))
                    blank = false;
            if (blank)
                return std::optional<Framed>(
                    Framed{.consumed = start + nl + 1, .format = SignalFormat::Plain});
            pos = nl + 1;
        }
    }
    }
    return unknown_input();
}

base::Result<SignalMessage> decode_signal(std::string_view one_message,
                                          std::optional<SdpType> plain_type) {
    std::string_view r = trim_ws(one_message);
    switch (detect(r, true)) {
    case Detected::Json:
        if (r.size() > kMaxJsonSignalBytes)
            return base::make_error("JSON signal larger than {} bytes", kMaxJsonSignalBytes);
        return decode_json(r);
    case Detected::Token:
        return decode_token(r);
    case Detected::Plain:
        return decode_plain(r, plain_type);
    case Detected::NeedMore:
        return base::Error{"empty signaling input"};
    case Detected::Unknown:
        break;
    }
    return unknown_input();
}

} // namespace rtcat::sdp
