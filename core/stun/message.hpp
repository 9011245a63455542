#pragma once
// STUN message codec (RFC 8489) with the attributes of ICE (RFC 8445), NAT behaviour
// discovery (RFC 5780) and TURN (RFC 8656). A Message is a value: method, class,
// transaction id and an ordered list of raw attributes with typed accessors. Integrity and
// FINGERPRINT are computed by encode() and checked against the raw bytes (check_integrity),
// because they cover the exact bytes on the wire.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/base/result.hpp"
#include "core/net/address.hpp"

namespace rtcat::stun {

inline constexpr std::uint32_t kMagicCookie = 0x2112A442;
inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::uint32_t kFingerprintXor = 0x5354554e;

using TransactionId = std::array<std::uint8_t, 12>;
TransactionId new_transaction_id();

enum class Method : std::uint16_t {
    Binding = 0x001,
    Allocate = 0x003,
    Refresh = 0x004,
    Send = 0x006,
    Data = 0x007,
    CreatePermission = 0x008,
    ChannelBind = 0x009,
};

enum class Class : std::uint8_t { Request = 0, Indication = 1, Success = 2, Error = 3 };

std::string_view method_name(Method m);
std::string_view class_name(Class c);

// Attribute type numbers (IANA "STUN Attributes" registry).
namespace attr {
inline constexpr std::uint16_t MappedAddress = 0x0001;
inline constexpr std::uint16_t ChangeRequest = 0x0003; // RFC 5780
inline constexpr std::uint16_t Username = 0x0006;
inline constexpr std::uint16_t MessageIntegrity = 0x0008;
inline constexpr std::uint16_t ErrorCode = 0x0009;
inline constexpr std::uint16_t UnknownAttributes = 0x000A;
inline constexpr std::uint16_t ChannelNumber = 0x000C;
inline constexpr std::uint16_t Lifetime = 0x000D;
inline constexpr std::uint16_t XorPeerAddress = 0x0012;
inline constexpr std::uint16_t Data = 0x0013;
inline constexpr std::uint16_t Realm = 0x0014;
inline constexpr std::uint16_t Nonce = 0x0015;
inline constexpr std::uint16_t XorRelayedAddress = 0x0016;
inline constexpr std::uint16_t RequestedAddressFamily = 0x0017;
inline constexpr std::uint16_t EvenPort = 0x0018;
inline constexpr std::uint16_t RequestedTransport = 0x0019;
inline constexpr std::uint16_t DontFragment = 0x001A;
inline constexpr std::uint16_t MessageIntegritySha256 = 0x001C;
inline constexpr std::uint16_t PasswordAlgorithm = 0x001D;
inline constexpr std::uint16_t Userhash = 0x001E;
inline constexpr std::uint16_t XorMappedAddress = 0x0020;
inline constexpr std::uint16_t ReservationToken = 0x0022;
inline constexpr std::uint16_t Priority = 0x0024;
inline constexpr std::uint16_t UseCandidate = 0x0025;
inline constexpr std::uint16_t Padding = 0x0026;      // RFC 5780
inline constexpr std::uint16_t ResponsePort = 0x0027; // RFC 5780
inline constexpr std::uint16_t PasswordAlgorithms = 0x8002;
inline constexpr std::uint16_t AlternateDomain = 0x8003;
inline constexpr std::uint16_t Software = 0x8022;
inline constexpr std::uint16_t AlternateServer = 0x8023;
inline constexpr std::uint16_t CacheTimeout = 0x8027;
inline constexpr std::uint16_t Fingerprint = 0x8028;
inline constexpr std::uint16_t IceControlled = 0x8029;
inline constexpr std::uint16_t IceControlling = 0x802A;
inline constexpr std::uint16_t ResponseOrigin = 0x802B; // RFC 5780
inline constexpr std::uint16_t OtherAddress = 0x802C;   // RFC 5780

// Comprehension-required range is 0x0000-0x7FFF (RFC 8489 §14).
inline constexpr bool comprehension_required(std::uint16_t type) {
    return type < 0x8000;
}
// Types this codec understands (a comprehension-required type outside this set is reported).
bool is_known(std::uint16_t type);
std::string_view name(std::uint16_t type); // "XOR-MAPPED-ADDRESS", or "" when unknown
} // namespace attr

// Password algorithms (RFC 8489 §18.5).
enum class PasswordAlgorithm : std::uint16_t { Md5 = 0x0001, Sha256 = 0x0002 };

struct ErrorCode {
    int code = 0; // 300..699
    std::string reason;
};

struct RawAttribute {
    std::uint16_t type = 0;
    base::Bytes value; // without padding
};

class Message {
public:
    Message() = default;
    Message(Method method, Class cls, const TransactionId& tid)
        : method_(method), class_(cls), tid_(tid) {}
    // A request/indication with a fresh random transaction id.
    static Message request(Method method);
    static Message indication(Method method);
    // A success or error response echoing the request's method and transaction id.
    static Message success_for(const Message& request);
    static Message error_for(const Message& request, int code, std::string_view reason);

    Method method() const { return method_; }
    Class cls() const { return class_; }
    const TransactionId& transaction_id() const { return tid_; }
    // The raw 12-bit method number (a Method value may be outside the enum when parsed).
    std::uint16_t method_number() const { return static_cast<std::uint16_t>(method_); }

    // --- building (appends in order; MESSAGE-INTEGRITY and FINGERPRINT are added by encode) ---
    void add_raw(std::uint16_t type, base::ByteView value);
    void add_string(std::uint16_t type, std::string_view value);
    void add_u32(std::uint16_t type, std::uint32_t value);
    void add_u64(std::uint16_t type, std::uint64_t value);
    void add_flag(std::uint16_t type); // zero-length (USE-CANDIDATE, DONT-FRAGMENT)
    void add_address(std::uint16_t type, const net::SocketAddr& addr);     // MAPPED-ADDRESS style
    void add_xor_address(std::uint16_t type, const net::SocketAddr& addr); // XOR-* style
    void add_error_code(int code, std::string_view reason);
    void add_unknown_attributes(const std::vector<std::uint16_t>& types);
    void add_change_request(bool change_ip, bool change_port);
    void add_requested_transport(std::uint8_t protocol); // 17 = UDP
    void add_channel_number(std::uint16_t channel);
    void add_password_algorithm(PasswordAlgorithm alg);
    void add_password_algorithms(const std::vector<PasswordAlgorithm>& algs);

    // --- reading (first occurrence wins, RFC 8489 §14) ---
    const std::vector<RawAttribute>& attributes() const { return attrs_; }
    const RawAttribute* find(std::uint16_t type) const;
    bool has(std::uint16_t type) const { return find(type) != nullptr; }
    std::optional<std::string> get_string(std::uint16_t type) const;
    std::optional<std::uint32_t> get_u32(std::uint16_t type) const;
    std::optional<std::uint64_t> get_u64(std::uint16_t type) const;
    std::optional<net::SocketAddr> get_address(std::uint16_t type) const;
    std::optional<net::SocketAddr> get_xor_address(std::uint16_t type) const;
    // XOR-MAPPED-ADDRESS, falling back to MAPPED-ADDRESS (RFC 3489 servers).
    std::optional<net::SocketAddr> mapped_address() const;
    std::optional<ErrorCode> error_code() const;
    std::optional<std::vector<std::uint16_t>> unknown_attributes() const;
    std::optional<std::pair<bool, bool>> change_request() const; // (ip, port)
    std::optional<std::uint8_t> requested_transport() const;
    std::optional<std::uint16_t> channel_number() const;
    std::optional<PasswordAlgorithm> password_algorithm() const;
    std::optional<std::vector<PasswordAlgorithm>> password_algorithms() const;
    // Comprehension-required types this codec does not know (RFC 8489 §6.3: a request with
    // any gets 420; a response with any is discarded).
    std::vector<std::uint16_t> unknown_comprehension_required() const;

private:
    Method method_ = Method::Binding;
    Class class_ = Class::Request;
    TransactionId tid_{};
    std::vector<RawAttribute> attrs_;
};

struct EncodeOptions {
    // When non-null, adds MESSAGE-INTEGRITY (or -SHA256) keyed with this key.
    const base::Bytes* integrity_key = nullptr;
    bool sha256 = false;
    bool fingerprint = false;
};

base::Bytes encode(const Message& message, const EncodeOptions& options = {});

// Header sanity only (two zero bits, magic cookie, length multiple of 4 that fits).
bool looks_like_stun(base::ByteView datagram);

// Parses one STUN message. Rejects bad headers, truncated or overlong attributes, a
// FINGERPRINT that does not match or is not last, and attributes after MESSAGE-INTEGRITY
// other than MESSAGE-INTEGRITY-SHA256/FINGERPRINT (RFC 8489 §14.5: those are ignored, so
// they are dropped from the parsed message).
base::Result<Message> decode(base::ByteView datagram);

enum class IntegrityResult { Absent, Valid, Invalid };
// Verifies MESSAGE-INTEGRITY-SHA256 when present, else MESSAGE-INTEGRITY, over the raw bytes.
IntegrityResult check_integrity(base::ByteView datagram, const base::Bytes& key);

// Keys (RFC 8489 §9.1.3, §9.2.2). Passwords are used as given (OpaqueString profile without
// normalisation; callers pass already-prepared strings).
base::Bytes short_term_key(std::string_view password);
base::Bytes long_term_key(std::string_view username, std::string_view realm,
                          std::string_view password,
                          PasswordAlgorithm alg = PasswordAlgorithm::Md5);

// ChannelData (RFC 8656 §12.4): channel numbers 0x4000-0x4FFF.
struct ChannelData {
    std::uint16_t channel = 0;
    base::ByteView data;
};
inline constexpr std::uint16_t kMinChannel = 0x4000;
inline constexpr std::uint16_t kMaxChannel = 0x4FFF;
std::optional<ChannelData> parse_channel_data(base::ByteView datagram);
// Padded to a multiple of 4 (required over TCP, harmless over UDP).
base::Bytes encode_channel_data(std::uint16_t channel, base::ByteView data);

} // namespace rtcat::stun
