#include "core/stun/message.hpp"

#include <algorithm>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/base/check.hpp"
#include "core/base/crc32.hpp"
#include "core/base/random.hpp"

namespace rtcat::stun {

namespace {

using base::ByteReader;
using base::Bytes;
using base::ByteView;
using base::ByteWriter;

constexpr std::size_t kSha1Len = 20;
constexpr std::size_t kSha256Len = 32;

// RFC 8489 §5: the class bits C0/C1 sit at bits 4 and 8 of the type, splitting the method.
std::uint16_t message_type(std::uint16_t method, std::uint8_t cls) {
    return static_cast<std::uint16_t>((method & 0x000F) | ((method & 0x0070) << 1) |
                                      ((method & 0x0F80) << 2) | ((cls & 1) << 4) |
                                      ((cls & 2) << 7));
}

std::uint16_t type_method(std::uint16_t t) {
    return static_cast<std::uint16_t>((t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2));
}

std::uint8_t type_class(std::uint16_t t) {
    return static_cast<std::uint8_t>(((t >> 4) & 1) | ((t >> 7) & 2));
}

std::size_t padded(std::size_t n) {
    return (n + 3) & ~std::size_t{3};
}

void hmac(bool sha256, const Bytes& key, ByteView a, ByteView b, std::uint8_t* out) {
    // Two-part input: the header with a patched length, then the rest of the message.
    const EVP_MD* md = sha256 ? EVP_sha256() : EVP_sha1();
    unsigned len = 0;
    Bytes joined;
    joined.reserve(a.size() + b.size());
    joined.insert(joined.end(), a.begin(), a.end());
    joined.insert(joined.end(), b.begin(), b.end());
    RTCAT_CHECK(HMAC(md, key.data(), static_cast<int>(key.size()), joined.data(), joined.size(),
                     out, &len) != nullptr,
                "HMAC failed");
}

Bytes digest(const EVP_MD* md, std::string_view data) {
    Bytes out(static_cast<std::size_t>(EVP_MD_get_size(md)));
    unsigned len = 0;
    RTCAT_CHECK(EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) == 1,
                "EVP_Digest failed");
    out.resize(len);
    return out;
}

std::uint32_t xor_port_mask() {
    return kMagicCookie >> 16;
}

std::optional<net::SocketAddr> parse_address(ByteView v, bool xored, const TransactionId& tid) {
    ByteReader r(v);
    r.u8(); // reserved; RFC 8489 §14.1 says ignore on receipt
    std::uint8_t family = r.u8();
    std::uint16_t port = r.u16();
    if (xored)
        port = static_cast<std::uint16_t>(port ^ xor_port_mask());
    if (family == 0x01) {
        auto raw = r.bytes(4);
        if (r.failed() || !r.empty())
            return std::nullopt;
        std::array<std::uint8_t, 4> b{};
        std::copy(raw.begin(), raw.end(), b.begin());
        if (xored) {
            for (int i = 0; i < 4; ++i)
                b[i] ^= static_cast<std::uint8_t>(kMagicCookie >> (24 - 8 * i));
        }
        return net::SocketAddr(net::IpAddr::v4(b), port);
    }
    if (family == 0x02) {
        auto raw = r.bytes(16);
        if (r.failed() || !r.empty())
            return std::nullopt;
        std::array<std::uint8_t, 16> b{};
        std::copy(raw.begin(), raw.end(), b.begin());
        if (xored) {
            for (int i = 0; i < 4; ++i)
                b[i] ^= static_cast<std::uint8_t>(kMagicCookie >> (24 - 8 * i));
            for (int i = 0; i < 12; ++i)
                b[4 + i] ^= tid[i];
        }
        return net::SocketAddr(net::IpAddr::v6(b), port);
    }
    return std::nullopt;
}

Bytes encode_address(const net::SocketAddr& a, bool xored, const TransactionId& tid) {
    Bytes v;
    ByteWriter w(v);
    w.u8(0);
    w.u8(a.ip().is_v4() ? 0x01 : 0x02);
    std::uint16_t port = a.port();
    if (xored)
        port = static_cast<std::uint16_t>(port ^ xor_port_mask());
    w.u16(port);
    if (a.ip().is_v4()) {
        auto b = a.ip().v4_bytes();
        for (int i = 0; i < 4; ++i) {
            if (xored)
                b[i] ^= static_cast<std::uint8_t>(kMagicCookie >> (24 - 8 * i));
            w.u8(b[i]);
        }
    } else {
        auto b = a.ip().v6_bytes();
        if (xored) {
            for (int i = 0; i < 4; ++i)
                b[i] ^= static_cast<std::uint8_t>(kMagicCookie >> (24 - 8 * i));
            for (int i = 0; i < 12; ++i)
                b[4 + i] ^= tid[i];
        }
        w.bytes(ByteView(b));
    }
    return v;
}

bool is_trailer(std::uint16_t type) {
    return type == attr::MessageIntegrity || type == attr::MessageIntegritySha256 ||
           type == attr::Fingerprint;
}

} // namespace

TransactionId new_transaction_id() {
    TransactionId tid;
    base::random_bytes(tid);
    return tid;
}

std::string_view method_name(Method m) {
    switch (m) {
    case Method::Binding:
        return "Binding";
    case Method::Allocate:
        return "Allocate";
    case Method::Refresh:
        return "Refresh";
    case Method::Send:
        return "Send";
    case Method::Data:
        return "Data";
    case Method::CreatePermission:
        return "CreatePermission";
    case Method::ChannelBind:
        return "ChannelBind";
    }
    return "Unknown";
}

std::string_view class_name(Class c) {
    switch (c) {
    case Class::Request:
        return "request";
    case Class::Indication:
        return "indication";
    case Class::Success:
        return "success response";
    case Class::Error:
        return "error response";
    }
    return "?";
}

namespace attr {

namespace {
struct Entry {
    std::uint16_t type;
    std::string_view name;
};
constexpr Entry kKnown[] = {
    {MappedAddress, "MAPPED-ADDRESS"},
    {ChangeRequest, "CHANGE-REQUEST"},
    {Username, "USERNAME"},
    {MessageIntegrity, "MESSAGE-INTEGRITY"},
    {ErrorCode, "ERROR-CODE"},
    {UnknownAttributes, "UNKNOWN-ATTRIBUTES"},
    {ChannelNumber, "CHANNEL-NUMBER"},
    {Lifetime, "LIFETIME"},
    {XorPeerAddress, "XOR-PEER-ADDRESS"},
    {Data, "DATA"},
    {Realm, "REALM"},
    {Nonce, "NONCE"},
    {XorRelayedAddress, "XOR-RELAYED-ADDRESS"},
    {RequestedAddressFamily, "REQUESTED-ADDRESS-FAMILY"},
    {EvenPort, "EVEN-PORT"},
    {RequestedTransport, "REQUESTED-TRANSPORT"},
    {DontFragment, "DONT-FRAGMENT"},
    {MessageIntegritySha256, "MESSAGE-INTEGRITY-SHA256"},
    {PasswordAlgorithm, "PASSWORD-ALGORITHM"},
    {Userhash, "USERHASH"},
    {XorMappedAddress, "XOR-MAPPED-ADDRESS"},
    {ReservationToken, "RESERVATION-TOKEN"},
    {Priority, "PRIORITY"},
    {UseCandidate, "USE-CANDIDATE"},
    {Padding, "PADDING"},
    {ResponsePort, "RESPONSE-PORT"},
    {PasswordAlgorithms, "PASSWORD-ALGORITHMS"},
    {AlternateDomain, "ALTERNATE-DOMAIN"},
    {Software, "SOFTWARE"},
    {AlternateServer, "ALTERNATE-SERVER"},
    {CacheTimeout, "CACHE-TIMEOUT"},
    {Fingerprint, "FINGERPRINT"},
    {IceControlled, "ICE-CONTROLLED"},
    {IceControlling, "ICE-CONTROLLING"},
    {ResponseOrigin, "RESPONSE-ORIGIN"},
    {OtherAddress, "OTHER-ADDRESS"},
};
} // namespace

bool is_known(std::uint16_t type) {
    return !name(type).empty();
}

std::string_view name(std::uint16_t type) {
    for (const auto& e : kKnown)
        if (e.type == type)
            return e.name;
    return {};
}

} // namespace attr

Message Message::request(Method method) {
    return Message(method, Class::Request, new_transaction_id());
}

Message Message::indication(Method method) {
    return Message(method, Class::Indication, new_transaction_id());
}

Message Message::success_for(const Message& request) {
    return Message(request.method(), Class::Success, request.transaction_id());
}

Message Message::error_for(const Message& request, int code, std::string_view reason) {
    Message m(request.method(), Class::Error, request.transaction_id());
    m.add_error_code(code, reason);
    return m;
}

void Message::add_raw(std::uint16_t type, ByteView value) {
    attrs_.push_back(RawAttribute{type, Bytes(value.begin(), value.end())});
}

void Message::add_string(std::uint16_t type, std::string_view value) {
    attrs_.push_back(RawAttribute{type, Bytes(value.begin(), value.end())});
}

void Message::add_u32(std::uint16_t type, std::uint32_t value) {
    Bytes v;
    ByteWriter(v).u32(value);
    attrs_.push_back(RawAttribute{type, std::move(v)});
}

void Message::add_u64(std::uint16_t type, std::uint64_t value) {
    Bytes v;
    ByteWriter(v).u64(value);
    attrs_.push_back(RawAttribute{type, std::move(v)});
}

void Message::add_flag(std::uint16_t type) {
    attrs_.push_back(RawAttribute{type, {}});
}

void Message::add_address(std::uint16_t type, const net::SocketAddr& addr) {
    attrs_.push_back(RawAttribute{type, encode_address(addr, false, tid_)});
}

void Message::add_xor_address(std::uint16_t type, const net::SocketAddr& addr) {
    attrs_.push_back(RawAttribute{type, encode_address(addr, true, tid_)});
}

void Message::add_error_code(int code, std::string_view reason) {
    RTCAT_CHECK(code >= 300 && code <= 699, "ERROR-CODE outside 300..699");
    Bytes v;
    ByteWriter w(v);
    w.u16(0);
    w.u8(static_cast<std::uint8_t>(code / 100));
    w.u8(static_cast<std::uint8_t>(code % 100));
    w.bytes(reason);
    attrs_.push_back(RawAttribute{attr::ErrorCode, std::move(v)});
}

void Message::add_unknown_attributes(const std::vector<std::uint16_t>& types) {
    Bytes v;
    ByteWriter w(v);
    for (auto t : types)
        w.u16(t);
    attrs_.push_back(RawAttribute{attr::UnknownAttributes, std::move(v)});
}

void Message::add_change_request(bool change_ip, bool change_port) {
    add_u32(attr::ChangeRequest, (change_ip ? 0x4u : 0u) | (change_port ? 0x2u : 0u));
}

void Message::add_requested_transport(std::uint8_t protocol) {
    add_u32(attr::RequestedTransport, std::uint32_t{protocol} << 24);
}

void Message::add_channel_number(std::uint16_t channel) {
    add_u32(attr::ChannelNumber, std::uint32_t{channel} << 16);
}

void Message::add_password_algorithm(PasswordAlgorithm alg) {
    Bytes v;
    ByteWriter w(v);
    w.u16(static_cast<std::uint16_t>(alg));
    w.u16(0); // MD5 and SHA-256 take no parameters
    attrs_.push_back(RawAttribute{attr::PasswordAlgorithm, std::move(v)});
}

void Message::add_password_algorithms(const std::vector<PasswordAlgorithm>& algs) {
    Bytes v;
    ByteWriter w(v);
    for (auto a : algs) {
        w.u16(static_cast<std::uint16_t>(a));
        w.u16(0);
    }
    attrs_.push_back(RawAttribute{attr::PasswordAlgorithms, std::move(v)});
}

const RawAttribute* Message::find(std::uint16_t type) const {
    for (const auto& a : attrs_)
        if (a.type == type)
            return &a;
    return nullptr;
}

std::optional<std::string> Message::get_string(std::uint16_t type) const {
    const auto* a = find(type);
    if (!a)
        return std::nullopt;
    return std::string(a->value.begin(), a->value.end());
}

std::optional<std::uint32_t> Message::get_u32(std::uint16_t type) const {
    const auto* a = find(type);
    if (!a || a->value.size() != 4)
        return std::nullopt;
    return ByteReader(a->value).u32();
}

std::optional<std::uint64_t> Message::get_u64(std::uint16_t type) const {
    const auto* a = find(type);
    if (!a || a->value.size() != 8)
        return std::nullopt;
    return ByteReader(a->value).u64();
}

std::optional<net::SocketAddr> Message::get_address(std::uint16_t type) const {
    const auto* a = find(type);
    if (!a)
        return std::nullopt;
    return parse_address(a->value, false, tid_);
}

std::optional<net::SocketAddr> Message::get_xor_address(std::uint16_t type) const {
    const auto* a = find(type);
    if (!a)
        return std::nullopt;
    return parse_address(a->value, true, tid_);
}

std::optional<net::SocketAddr> Message::mapped_address() const {
    if (auto x = get_xor_address(attr::XorMappedAddress))
        return x;
    return get_address(attr::MappedAddress);
}

std::optional<ErrorCode> Message::error_code() const {
    const auto* a = find(attr::ErrorCode);
    if (!a)
        return std::nullopt;
    ByteReader r(a->value);
    r.u16();
    int cls = r.u8() & 0x07;
    int number = r.u8();
    if (r.failed() || cls < 3 || cls > 6 || number > 99)
        return std::nullopt;
    auto rest = r.rest();
    std::string reason(rest.begin(), rest.end());
    // Some servers (coturn) count NUL padding into the reason phrase.
    while (!reason.empty() && reason.back() == '\0')
        reason.pop_back();
    return ErrorCode{cls * 100 + number, std::move(reason)};
}

std::optional<std::vector<std::uint16_t>> Message::unknown_attributes() const {
    const auto* a = find(attr::UnknownAttributes);
    if (!a || a->value.size() % 2 != 0)
        return std::nullopt;
    std::vector<std::uint16_t> out;
    ByteReader r(a->value);
    while (!r.empty())
        out.push_back(r.u16());
    return out;
}

std::optional<std::pair<bool, bool>> Message::change_request() const {
    auto v = get_u32(attr::ChangeRequest);
    if (!v)
        return std::nullopt;
    return std::pair{(*v & 0x4) != 0, (*v & 0x2) != 0};
}

std::optional<std::uint8_t> Message::requested_transport() const {
    auto v = get_u32(attr::RequestedTransport);
    if (!v)
        return std::nullopt;
    return static_cast<std::uint8_t>(*v >> 24);
}

std::optional<std::uint16_t> Message::channel_number() const {
    auto v = get_u32(attr::ChannelNumber);
    if (!v)
        return std::nullopt;
    return static_cast<std::uint16_t>(*v >> 16);
}

static std::optional<std::vector<PasswordAlgorithm>> parse_algorithms(ByteView v) {
    std::vector<PasswordAlgorithm> out;
    ByteReader r(v);
    while (!r.empty()) {
        auto alg = r.u16();
        auto len = r.u16();
        r.skip(padded(len));
        if (r.failed())
            return std::nullopt;
        out.push_back(static_cast<PasswordAlgorithm>(alg));
    }
    return out;
}

std::optional<PasswordAlgorithm> Message::password_algorithm() const {
    const auto* a = find(attr::PasswordAlgorithm);
    if (!a)
        return std::nullopt;
    auto algs = parse_algorithms(a->value);
    if (!algs || algs->size() != 1)
        return std::nullopt;
    return algs->front();
}

std::optional<std::vector<PasswordAlgorithm>> Message::password_algorithms() const {
    const auto* a = find(attr::PasswordAlgorithms);
    if (!a)
        return std::nullopt;
    return parse_algorithms(a->value);
}

std::vector<std::uint16_t> Message::unknown_comprehension_required() const {
    std::vector<std::uint16_t> out;
    for (const auto& a : attrs_)
        if (attr::comprehension_required(a.type) && !attr::is_known(a.type) &&
            std::find(out.begin(), out.end(), a.type) == out.end())
            out.push_back(a.type);
    return out;
}

Bytes encode(const Message& message, const EncodeOptions& options) {
    Bytes out;
    out.reserve(kHeaderSize + 128);
    ByteWriter w(out);
    w.u16(message_type(message.method_number(), static_cast<std::uint8_t>(message.cls())));
    w.u16(0); // patched below
    w.u32(kMagicCookie);
    w.bytes(ByteView(message.transaction_id()));
    for (const auto& a : message.attributes()) {
        if (is_trailer(a.type))
            continue; // recomputed from options, never copied stale
        RTCAT_CHECK(a.value.size() <= 0xFFFF, "STUN attribute too long");
        w.u16(a.type);
        w.u16(static_cast<std::uint16_t>(a.value.size()));
        w.bytes(a.value);
        w.zeros(padded(a.value.size()) - a.value.size());
    }
    if (options.integrity_key) {
        // RFC 8489 §14.5/§14.6: the length field covers up to and including this attribute.
        std::size_t mac_len = options.sha256 ? kSha256Len : kSha1Len;
        std::size_t body_end = out.size();
        w.patch_u16(2, static_cast<std::uint16_t>(body_end - kHeaderSize + 4 + mac_len));
        std::uint8_t mac[kSha256Len];
        hmac(options.sha256, *options.integrity_key, ByteView(out.data(), body_end), {}, mac);
        w.u16(options.sha256 ? attr::MessageIntegritySha256 : attr::MessageIntegrity);
        w.u16(static_cast<std::uint16_t>(mac_len));
        w.bytes(ByteView(mac, mac_len));
    }
    if (options.fingerprint) {
        w.patch_u16(2, static_cast<std::uint16_t>(out.size() - kHeaderSize + 8));
        std::uint32_t crc = base::crc32(out) ^ kFingerprintXor;
        w.u16(attr::Fingerprint);
        w.u16(4);
        w.u32(crc);
    }
    w.patch_u16(2, static_cast<std::uint16_t>(out.size() - kHeaderSize));
    return out;
}

bool looks_like_stun(ByteView d) {
    if (d.size() < kHeaderSize || (d[0] & 0xC0) != 0)
        return false;
    ByteReader r(d);
    r.u16();
    std::uint16_t len = r.u16();
    return r.u32() == kMagicCookie && len % 4 == 0 && kHeaderSize + len == d.size();
}

base::Result<Message> decode(ByteView d) {
    if (d.size() < kHeaderSize)
        return base::make_error("STUN message too short ({} bytes)", d.size());
    ByteReader r(d);
    std::uint16_t type = r.u16();
    std::uint16_t length = r.u16();
    std::uint32_t cookie = r.u32();
    if ((type & 0xC000) != 0)
        return base::make_error("not a STUN message (top bits of type set)");
    if (cookie != kMagicCookie)
        return base::make_error("bad magic cookie 0x{:08x}", cookie);
    if (length % 4 != 0)
        return base::make_error("STUN length {} is not a multiple of 4", length);
    if (kHeaderSize + length != d.size())
        return base::make_error("STUN length {} does not match the datagram ({} bytes)", length,
                                d.size());
    TransactionId tid;
    auto tid_bytes = r.bytes(12);
    std::copy(tid_bytes.begin(), tid_bytes.end(), tid.begin());
    Message m(static_cast<Method>(type_method(type)), static_cast<Class>(type_class(type)), tid);

    bool seen_mi = false, seen_mi256 = false;
    while (!r.empty()) {
        std::size_t at = r.position();
        std::uint16_t at_type = r.u16();
        std::uint16_t at_len = r.u16();
        auto value = r.bytes(at_len);
        r.skip(padded(at_len) - at_len);
        if (r.failed())
            return base::make_error("attribute 0x{:04x} at offset {} overruns the message", at_type,
                                    at);
        if (at_type == attr::Fingerprint) {
            if (!r.empty())
                return base::make_error("FINGERPRINT is not the last attribute");
            if (at_len != 4)
                return base::make_error("FINGERPRINT has length {}", at_len);
            // CRC over everything before the attribute, with the length field as sent
            // (which already covers the fingerprint).
            std::uint32_t want = base::crc32(d.first(at)) ^ kFingerprintXor;
            std::uint32_t got = ByteReader(value).u32();
            if (want != got)
                return base::make_error("FINGERPRINT mismatch (0x{:08x}, expected 0x{:08x})", got,
                                        want);
            m.add_raw(at_type, value);
            break;
        }
        if (seen_mi256 || (seen_mi && at_type != attr::MessageIntegritySha256))
            continue; // RFC 8489 §14.5/§14.6: attributes after integrity are ignored
        if (at_type == attr::MessageIntegrity) {
            if (at_len != kSha1Len)
                return base::make_error("MESSAGE-INTEGRITY has length {}", at_len);
            seen_mi = true;
        } else if (at_type == attr::MessageIntegritySha256) {
            if (at_len < 16 || at_len > kSha256Len || at_len % 4 != 0)
                return base::make_error("MESSAGE-INTEGRITY-SHA256 has length {}", at_len);
            seen_mi256 = true;
        }
        m.add_raw(at_type, value);
    }
    return m;
}

IntegrityResult check_integrity(ByteView d, const Bytes& key) {
    if (d.size() < kHeaderSize)
        return IntegrityResult::Absent;
    ByteReader r(d);
    r.skip(kHeaderSize);
    std::size_t mi_at = 0, mi_len = 0, mi256_at = 0, mi256_len = 0;
    while (!r.empty()) {
        std::size_t at = r.position();
        std::uint16_t t = r.u16();
        std::uint16_t len = r.u16();
        r.skip(padded(len));
        if (r.failed())
            return IntegrityResult::Invalid;
        if (t == attr::MessageIntegrity && mi_at == 0 && mi256_at == 0) {
            mi_at = at;
            mi_len = len;
        } else if (t == attr::MessageIntegritySha256 && mi256_at == 0) {
            mi256_at = at;
            mi256_len = len;
        }
    }
    bool sha256 = mi256_at != 0;
    std::size_t at = sha256 ? mi256_at : mi_at;
    if (at == 0)
        return IntegrityResult::Absent;
    std::size_t mac_len = sha256 ? mi256_len : mi_len;
    if (at + 4 + mac_len > d.size() || (sha256 && (mac_len < 16 || mac_len > kSha256Len)) ||
        (!sha256 && mac_len != kSha1Len))
        return IntegrityResult::Invalid;
    std::uint8_t header[kHeaderSize];
    std::memcpy(header, d.data(), kHeaderSize);
    auto len = static_cast<std::uint16_t>(at - kHeaderSize + 4 + mac_len);
    header[2] = static_cast<std::uint8_t>(len >> 8);
    header[3] = static_cast<std::uint8_t>(len);
    std::uint8_t mac[kSha256Len];
    hmac(sha256, key, ByteView(header, kHeaderSize), d.subspan(kHeaderSize, at - kHeaderSize), mac);
    // Constant-time compare: integrity failures must not leak how many bytes matched.
    return CRYPTO_memcmp(mac, d.data() + at + 4, mac_len) == 0 ? IntegrityResult::Valid
                                                               : IntegrityResult::Invalid;
}

Bytes short_term_key(std::string_view password) {
    return Bytes(password.begin(), password.end());
}

Bytes long_term_key(std::string_view username, std::string_view realm, std::string_view password,
                    PasswordAlgorithm alg) {
    std::string input;
    input.reserve(username.size() + realm.size() + password.size() + 2);
    input.append(username).append(":").append(realm).append(":").append(password);
    return digest(alg == PasswordAlgorithm::Sha256 ? EVP_sha256() : EVP_md5(), input);
}

std::optional<ChannelData> parse_channel_data(ByteView d) {
    ByteReader r(d);
    std::uint16_t channel = r.u16();
    std::uint16_t len = r.u16();
    if (r.failed() || channel < kMinChannel || channel > kMaxChannel)
        return std::nullopt;
    // RFC 8656 §12.5: over UDP the padding may be absent; anything beyond it is bogus.
    if (len > r.remaining() || r.remaining() > padded(len))
        return std::nullopt;
    return ChannelData{channel, r.bytes(len)};
}

Bytes encode_channel_data(std::uint16_t channel, ByteView data) {
    RTCAT_CHECK(channel >= kMinChannel && channel <= kMaxChannel, "channel number out of range");
    RTCAT_CHECK(data.size() <= 0xFFFF, "ChannelData too long");
    Bytes out;
    out.reserve(4 + padded(data.size()));
    ByteWriter w(out);
    w.u16(channel);
    w.u16(static_cast<std::uint16_t>(data.size()));
    w.bytes(data);
    w.zeros(padded(data.size()) - data.size());
    return out;
}

} // namespace rtcat::stun
