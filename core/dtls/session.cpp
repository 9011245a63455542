#include "core/dtls/session.hpp"

#include <algorithm>
#include <cstring>
#include <deque>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/time.h>

#include "core/base/check.hpp"
#include "core/base/log.hpp"
#include "core/dtls/openssl_glue.hpp"

// Timers
// ------
// libssl keeps its DTLS retransmission deadline as a wall-clock `struct timeval` and reads
// the system clock itself, while a sans-IO machine only knows the `now` it is given (virtual
// in tests, the monotonic clock in the driver). We keep our own deadline and make libssl's
// clock irrelevant:
//  * DTLS_set_timer_cb chooses every timeout (initial_retransmit, doubling, kMaxRetransmit),
//    so we know the duration libssl just armed.
//  * libssl announces every (re)arm and stop to its read BIO with
//    BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT, passing a pointer to its own deadline. Our BIO records
//    `now + duration` as our deadline and pushes libssl's copy a year ahead ("parks" it), so
//    libssl never fires on its own (it checks its clock inside SSL_read and friends).
//  * handle_timeout(now) past our deadline sets libssl's deadline to the distant past and
//    calls DTLSv1_handle_timeout, which retransmits and re-arms through the two hooks above.
// Limits: this relies on OpenSSL 1.1.1-3.1 passing the address of its live deadline to the
// BIO (checked against 3.0's d1_lib.c; 3.2 passes a copy). On newer libraries, or if a forced
// expiry is ever not honoured (DTLSv1_handle_timeout returns 0), the session falls back to
// libssl's own clock: deadlines then come from DTLSv1_get_timeout and retransmissions happen
// in real time only, which is right in production and wrong only on virtual time.

namespace rtcat::dtls {
namespace {

// --- Tunables and protocol constants -----------------------------------------------------
// RFC 8827 §6.5 / RFC 8842: ECDHE with ECDSA certificates and AEAD suites only.
// ChaCha20-Poly1305 last: libsrtp and the hardware here favour AES.
constexpr const char* kCipherList = "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256";
// RFC 5764 §4.1.2 + RFC 7714 §14.2: GCM first (libsrtp on NSS is 4x faster with it).
constexpr const char* kSrtpProfiles = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";
constexpr std::size_t kRecordHeader = 13;            // RFC 6347 §4.1
constexpr std::size_t kMaxRecordBody = 16384 + 2048; // RFC 6347 §4.1 / RFC 5246 §6.2.3
constexpr std::size_t kMaxPlaintext = 16384;         // SSL3_RT_MAX_PLAIN_LENGTH
// OpenSSL refuses an MTU below 256 - 48 (dtls1_link_min_mtu minus its worst overhead).
constexpr std::size_t kMinMtu = 256;
constexpr std::size_t kMaxMtu = 65507; // largest UDP payload over IPv4
// How far libssl's own deadline is parked (see Timers).
constexpr time_t kParkSeconds = 365L * 24 * 3600;

enum : std::uint8_t {
    kChangeCipherSpec = 20,
    kAlert = 21,
    kHandshake = 22,
    kApplicationData = 23,
};

bool certificate_alert(int description) {
    switch (description) {
    case 42: // bad_certificate
    case 43: // unsupported_certificate
    case 44: // certificate_revoked
    case 45: // certificate_expired
    case 46: // certificate_unknown
    case 48: // unknown_ca
    case 49: // access_denied
    case 51: // decrypt_error: the CertificateVerify signature did not check out
        return true;
    default:
        return false;
    }
}

bool certificate_error(unsigned long err) {
    if (ERR_GET_LIB(err) != ERR_LIB_SSL)
        return false;
    switch (ERR_GET_REASON(err)) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_NO_CERTIFICATES_RETURNED:
    case SSL_R_BAD_SIGNATURE:
    case SSL_R_WRONG_CERTIFICATE_TYPE:
        return true;
    default:
        return false;
    }
}

// SSL_get_error() needs an empty error queue before each call (other OpenSSL users may leave
// entries behind). ERR_clear_error() walks all 16 slots; peeking first is cheaper on the data
// path, where the queue is almost always empty.
void clear_errors() {
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

struct CtxDeleter {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
    void operator()(SSL* s) const { SSL_free(s); }
};

enum class State { Handshaking, Connected, Closed, Failed };

} // namespace

struct Session::Impl {
    SessionConfig config;
    // Declared before `ssl`: the SSL must go first.
    std::unique_ptr<SSL_CTX, CtxDeleter> ctx;
    std::unique_ptr<SSL, SslDeleter> ssl; // owns the BIO
    State state = State::Handshaking;
    base::Instant now{};

    // The datagram being fed (read by the BIO, valid during one handle_receive only).
    const std::uint8_t* in_data = nullptr;
    std::size_t in_len = 0;

    // Records written by libssl are packed into `pending` until the next would overflow the
    // MTU or libssl flushes; every input ends by flushing.
    base::Bytes pending;
    std::deque<base::Bytes> outbox;
    std::deque<Event> events;

    // Timers (see the top of this file).
    bool virtual_timer = true;
    timeval* libssl_deadline = nullptr;
    base::Duration armed{0};
    base::Instant deadline = base::kNever;

    // Peer authentication.
    bool verified = false;
    bool fingerprint_mismatch = false;
    std::optional<Fingerprint> peer_fp;
    std::optional<Fingerprint> presented_fp; // what a mismatching peer showed (sha-256)
    int alert_in = -1;
    bool alert_in_fatal = false;

    std::size_t max_app_payload = 0;
    std::size_t overhead = kRecordOverhead;
    Stats stats;
    base::Bytes scratch;

    ~Impl() {
        // Members after `ssl` are destroyed before it: detach the BIO first so nothing libssl
        // does while freeing can reach them.
        if (ssl)
            BIO_set_data(SSL_get_rbio(ssl.get()), nullptr);
        ssl.reset();
    }

    void fail(std::string reason, bool security);
    void fail_from_openssl(std::string_view during);
    bool setup();
    void drive_handshake();
    void on_handshake_done();
    std::uint64_t read_records();
    void flush_pending();
    void finish_input();
    void on_write(const std::uint8_t* data, std::size_t len);
    int on_read(std::uint8_t* buf, std::size_t size);
    void on_timer_armed(timeval* tv);
    unsigned int next_timeout_us(unsigned int previous_us);
};

namespace {

Session::Impl* impl_of(const SSL* ssl) {
    return static_cast<Session::Impl*>(SSL_get_ex_data(ssl, 0));
}

// --- The datagram BIO ----------------------------------------------------------------------
// OpenSSL 3.0 has no memory BIO with datagram semantics: a write must become one datagram and
// a read must return one datagram. Reads hand out the current datagram (whole records only,
// see on_read), writes go to Impl::on_write. BIO_CTRL_WPENDING/FLUSH let libssl pack several
// handshake records into one datagram (dtls1_do_write sizes fragments by the space left).

int bio_write(BIO* bio, const char* data, int len) {
    BIO_clear_retry_flags(bio);
    auto* impl = static_cast<Session::Impl*>(BIO_get_data(bio));
    if (len <= 0 || impl == nullptr)
        return 0;
    impl->on_write(reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(len));
    return len;
}

int bio_read(BIO* bio, char* buf, int size) {
    BIO_clear_retry_flags(bio);
    auto* impl = static_cast<Session::Impl*>(BIO_get_data(bio));
    if (size <= 0 || impl == nullptr)
        return 0;
    const int n =
        impl->on_read(reinterpret_cast<std::uint8_t*>(buf), static_cast<std::size_t>(size));
    if (n == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    return n;
}

long bio_ctrl(BIO* bio, int cmd, long /*num*/, void* ptr) {
    auto* impl = static_cast<Session::Impl*>(BIO_get_data(bio));
    if (impl == nullptr)
        return 0;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        impl->flush_pending();
        return 1;
    case BIO_CTRL_WPENDING:
        return static_cast<long>(impl->pending.size());
    case BIO_CTRL_PENDING:
        return static_cast<long>(impl->in_len);
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
        return static_cast<long>(impl->config.mtu);
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
        return 0; // our MTU is already the UDP payload
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
        impl->on_timer_armed(static_cast<timeval*>(ptr));
        return 1;
    default:
        return 0;
    }
}

int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
}

int bio_destroy(BIO* bio) {
    BIO_set_data(bio, nullptr);
    return 1;
}

BIO_METHOD* datagram_bio_method() {
    // Created once and kept for the process (BIO methods are immutable and shareable).
    static BIO_METHOD* const method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rtcat-dtls");
        RTCAT_CHECK(m != nullptr, "BIO_meth_new failed");
        BIO_meth_set_write(m, bio_write);
        BIO_meth_set_read(m, bio_read);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        BIO_meth_set_destroy(m, bio_destroy);
        return m;
    }();
    return method;
}

// --- libssl callbacks ----------------------------------------------------------------------

unsigned int timer_cb(SSL* ssl, unsigned int previous_us) {
    return impl_of(ssl)->next_timeout_us(previous_us);
}

void keylog_cb(const SSL* ssl, const char* line) {
    if (auto* impl = impl_of(ssl); impl != nullptr && impl->config.keylog)
        impl->config.keylog(line);
}

void info_cb(const SSL* ssl, int where, int ret) {
    if ((where & SSL_CB_READ_ALERT) != 0) {
        auto* impl = impl_of(ssl);
        impl->alert_in = ret & 0xff;
        impl->alert_in_fatal = (ret >> 8) == SSL3_AL_FATAL;
    }
}

// Replaces chain verification: WebRTC certificates are self-signed and authenticated by the
// fingerprint from signaling alone (RFC 8827 §6.5). Returning 0 makes libssl fail the
// handshake with a bad_certificate alert before it accepts anything else from the peer.
int verify_cb(X509_STORE_CTX* store, void* arg) {
    auto* impl = static_cast<Session::Impl*>(arg);
    X509* cert = X509_STORE_CTX_get0_cert(store);
    if (cert == nullptr) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    for (const auto& want : impl->config.remote_fingerprints) {
        Fingerprint got = compute_fingerprint(cert, want.algorithm);
        if (!got.value.empty() && got.value.size() == want.value.size() &&
            CRYPTO_memcmp(got.value.data(), want.value.data(), got.value.size()) == 0) {
            impl->verified = true;
            impl->peer_fp = std::move(got);
            return 1;
        }
    }
    impl->fingerprint_mismatch = true;
    impl->presented_fp = compute_fingerprint(cert, "sha-256");
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
}

std::string validate(const SessionConfig& c) {
    if (!c.certificate.valid())
        return "no local certificate";
    if (c.remote_fingerprints.empty())
        return "no remote fingerprint to authenticate the peer with";
    for (const auto& fp : c.remote_fingerprints) {
        const std::size_t n = fingerprint_digest_size(fp.algorithm);
        if (n == 0 || n != fp.value.size())
            return "unusable remote fingerprint '" + format_fingerprint(fp) + "'";
    }
    return {};
}

} // namespace

// --- Impl ------------------------------------------------------------------------------------

void Session::Impl::fail(std::string reason, bool security) {
    if (state == State::Failed)
        return;
    state = State::Failed;
    deadline = base::kNever;
    RTCAT_DEBUG("dtls", "failed{}: {}", security ? " (security)" : "", reason);
    events.emplace_back(event::Failed{std::move(reason), security});
}

void Session::Impl::fail_from_openssl(std::string_view during) {
    const unsigned long err = ERR_peek_error();
    bool security = fingerprint_mismatch || certificate_error(err) ||
                    (alert_in >= 0 && alert_in_fatal && certificate_alert(alert_in));
    std::string reason;
    if (fingerprint_mismatch) {
        reason = "peer certificate matches no remote fingerprint (it presented " +
                 (presented_fp ? format_fingerprint(*presented_fp) : std::string("?")) + ")";
    } else if (alert_in >= 0 && alert_in_fatal) {
        reason = std::string("peer sent fatal alert: ") + SSL_alert_desc_string_long(alert_in);
    } else {
        reason = std::string(during) + ": " + openssl_error_text();
    }
    clear_errors();
    fail(std::move(reason), security);
}

bool Session::Impl::setup() {
    ctx.reset(SSL_CTX_new(DTLS_method()));
    if (!ctx)
        return false;
    SSL_CTX* c = ctx.get();
    const auto* cert = config.certificate.impl();
    // DTLS 1.2 only (RFC 8842 §5 asks for 1.2 or later; OpenSSL 3.0 has no DTLS 1.3).
    if (SSL_CTX_set_min_proto_version(c, DTLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c, DTLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(c, kCipherList) != 1 || SSL_CTX_set1_groups_list(c, kGroups) != 1 ||
        SSL_CTX_use_certificate(c, cert->x509.get()) != 1 ||
        SSL_CTX_use_PrivateKey(c, cert->key.get()) != 1 || SSL_CTX_check_private_key(c) != 1)
        return false;
    // Trap: returns 0 on success.
    if (config.offer_srtp && SSL_CTX_set_tlsext_use_srtp(c, kSrtpProfiles) != 0)
        return false;
    // No resumption, tickets or renegotiation: one handshake per session, path MTU is ours.
    SSL_CTX_set_options(c, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    // RFC 8827 §6.5: both ends authenticate; the server demands a client certificate.
    int mode = SSL_VERIFY_PEER;
    if (config.role == Role::Server)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c, mode, nullptr);
    SSL_CTX_set_cert_verify_callback(c, verify_cb, this);
    if (config.keylog)
        SSL_CTX_set_keylog_callback(c, keylog_cb);

    ssl.reset(SSL_new(c));
    if (!ssl)
        return false;
    SSL* s = ssl.get();
    if (SSL_set_ex_data(s, 0, this) != 1)
        return false;
    BIO* bio = BIO_new(datagram_bio_method());
    if (bio == nullptr)
        return false;
    BIO_set_data(bio, this);
    SSL_set_bio(s, bio, bio); // one reference, owned by the SSL
    SSL_set_info_callback(s, info_cb);
    DTLS_set_timer_cb(s, timer_cb);
    // Trap: returns the MTU set (not 1), 0 when refused.
    if (SSL_set_mtu(s, static_cast<long>(config.mtu)) <= 0)
        return false;
    if (config.role == Role::Client)
        SSL_set_connect_state(s);
    else
        SSL_set_accept_state(s);
    return true;
}

unsigned int Session::Impl::next_timeout_us(unsigned int previous_us) {
    const auto initial =
        std::clamp(config.initial_retransmit, base::Duration(1000), kMaxRetransmit);
    // RFC 6347 §4.2.4.1: double on each expiry, up to a ceiling.
    const auto next =
        previous_us == 0
            ? initial
            : std::min(base::Duration(2 * static_cast<std::int64_t>(previous_us)), kMaxRetransmit);
    armed = next;
    return static_cast<unsigned int>(next.count());
}

void Session::Impl::on_timer_armed(timeval* tv) {
    if (!virtual_timer)
        return;
    if (tv == nullptr || (tv->tv_sec == 0 && tv->tv_usec == 0)) {
        libssl_deadline = nullptr; // stopped
        deadline = base::kNever;
        return;
    }
    libssl_deadline = tv;
    deadline = now + armed;
    tv->tv_sec += kParkSeconds;
}

void Session::Impl::on_write(const std::uint8_t* data, std::size_t len) {
    ++stats.records_out;
    if (!pending.empty() && pending.size() + len > config.mtu)
        flush_pending();
    if (pending.capacity() == 0)
        pending.reserve(state == State::Connected ? len : config.mtu);
    pending.insert(pending.end(), data, data + len);
}

int Session::Impl::on_read(std::uint8_t* buf, std::size_t size) {
    if (in_len == 0)
        return 0;
    // Hand out whole records only, as many as fit: a datagram larger than libssl's read
    // buffer is then read in pieces instead of being truncated mid-record.
    std::size_t take = 0;
    while (take + kRecordHeader <= in_len) {
        const std::size_t body = (std::size_t{in_data[take + 11]} << 8) | in_data[take + 12];
        const std::size_t rec = kRecordHeader + body;
        if (take + rec > size)
            break;
        take += rec;
    }
    if (take == 0) // a single record larger than the buffer: libssl drops it
        take = std::min(size, in_len);
    std::memcpy(buf, in_data, take);
    in_data += take;
    in_len -= take;
    return static_cast<int>(take);
}

void Session::Impl::flush_pending() {
    if (pending.empty())
        return;
    outbox.push_back(std::move(pending));
    pending = base::Bytes();
}

void Session::Impl::finish_input() {
    flush_pending();
    if (!virtual_timer && state == State::Handshaking && ssl) {
        timeval tv{};
        if (DTLSv1_get_timeout(ssl.get(), &tv) == 1)
            deadline =
                now + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
        else
            deadline = base::kNever;
    }
}

void Session::Impl::drive_handshake() {
    clear_errors();
    const int r = SSL_do_handshake(ssl.get());
    if (r == 1) {
        on_handshake_done();
        return;
    }
    const int e = SSL_get_error(ssl.get(), r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return;
    if (e == SSL_ERROR_ZERO_RETURN) {
        fail("peer closed the connection during the handshake", false);
        return;
    }
    fail_from_openssl("handshake");
}

void Session::Impl::on_handshake_done() {
    // The verify callback has run (SSL_VERIFY_PEER); check again that it approved this very
    // certificate, so no path through libssl can connect us to an unauthenticated peer.
    X509* peer = SSL_get0_peer_certificate(ssl.get());
    bool ok = verified && peer != nullptr && peer_fp.has_value();
    if (ok) {
        const Fingerprint again = compute_fingerprint(peer, peer_fp->algorithm);
        ok = again == *peer_fp;
    }
    if (!ok) {
        SSL_shutdown(ssl.get());
        fail("peer certificate was not verified against the remote fingerprints", true);
        return;
    }
    state = State::Connected;
    deadline = base::kNever; // a final flight is re-sent on the peer's retransmission only
    max_app_payload = DTLS_get_data_mtu(ssl.get());
    overhead = max_app_payload < config.mtu ? config.mtu - max_app_payload : kRecordOverhead;
    event::Connected ev;
    ev.cipher = SSL_get_cipher_name(ssl.get());
    if (const SRTP_PROTECTION_PROFILE* p = SSL_get_selected_srtp_profile(ssl.get()))
        ev.srtp_profile = p->name;
    ev.version = SSL_get_version(ssl.get());
    RTCAT_DEBUG("dtls", "connected: {} {} srtp={}", ev.version, ev.cipher, ev.srtp_profile);
    events.emplace_back(std::move(ev));
}

std::uint64_t Session::Impl::read_records() {
    std::uint64_t delivered = 0;
    if (scratch.size() < kMaxPlaintext)
        scratch.resize(kMaxPlaintext);
    clear_errors(); // once: successful reads and WANT_READ leave the queue empty
    while (state == State::Connected) {
        std::size_t got = 0;
        const int r = SSL_read_ex(ssl.get(), scratch.data(), scratch.size(), &got);
        if (r == 1) {
            events.emplace_back(event::Data{
                base::Bytes(scratch.begin(), scratch.begin() + static_cast<long>(got))});
            ++delivered;
            continue;
        }
        const int e = SSL_get_error(ssl.get(), r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            // close_notify (RFC 5246 §7.2.1): answer with ours and stop.
            state = State::Closed;
            deadline = base::kNever;
            clear_errors();
            SSL_shutdown(ssl.get());
            events.emplace_back(event::Closed{});
            break;
        }
        fail_from_openssl("read");
    }
    return delivered;
}

// --- Session ---------------------------------------------------------------------------------

Session::Session(SessionConfig config, base::Instant now) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.config = std::move(config);
    m.now = now;
    if (std::string bad = validate(m.config); !bad.empty()) {
        m.fail("configuration: " + bad, true);
        return;
    }
    m.config.mtu = std::clamp(m.config.mtu, kMinMtu, kMaxMtu);
    m.virtual_timer = OpenSSL_version_num() < 0x30200000L;
    clear_errors();
    if (!m.setup()) {
        m.ssl.reset();
        m.fail("setting up OpenSSL: " + openssl_error_text(), false);
        return;
    }
    if (m.config.role == Role::Client)
        m.drive_handshake(); // ClientHello
    m.finish_input();
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::handle_receive(std::span<const std::uint8_t> datagram, base::Instant now) {
    Impl& m = *impl_;
    m.now = now;
    if (m.state == State::Closed || m.state == State::Failed) {
        ++m.stats.ignored;
        return;
    }
    // Frame the records (RFC 6347 §4.1) before libssl sees them: anything that is not a DTLS
    // record is dropped and counted here, and libssl only gets the well-framed prefix.
    base::ByteReader r(datagram);
    std::size_t valid = 0;
    std::uint64_t records = 0;
    std::uint64_t app_records = 0;
    while (r.remaining() >= kRecordHeader) {
        const std::uint8_t type = r.u8();
        const std::uint8_t major = r.u8();
        r.skip(9); // minor version, epoch, sequence number
        const std::size_t len = r.u16();
        if (type < kChangeCipherSpec || type > kApplicationData || major != 0xfe ||
            len > kMaxRecordBody || len > r.remaining())
            break;
        r.skip(len);
        valid = r.position();
        ++records;
        if (type == kApplicationData)
            ++app_records;
    }
    if (valid < datagram.size())
        ++m.stats.bad_records;
    if (records == 0)
        return;
    m.stats.records_in += records;

    m.in_data = datagram.data();
    m.in_len = valid;
    const bool was_connected = m.state == State::Connected;
    if (m.state == State::Handshaking)
        m.drive_handshake();
    std::uint64_t delivered = 0;
    if (m.state == State::Connected)
        delivered = m.read_records();
    // Once connected, every application record should decrypt into one Data event; the rest
    // failed authentication or were replays (libssl drops those silently, RFC 6347 §4.1.2.7).
    // During the handshake libssl may hold next-epoch records back, so nothing is counted.
    if (was_connected && app_records > delivered)
        m.stats.bad_records += app_records - delivered;
    m.in_data = nullptr;
    m.in_len = 0;
    m.finish_input();
}

void Session::handle_timeout(base::Instant now) {
    Impl& m = *impl_;
    m.now = now;
    if (m.state != State::Handshaking || !m.ssl)
        return;
    if (m.virtual_timer) {
        if (m.libssl_deadline == nullptr || now < m.deadline)
            return;
        // Expire libssl's parked deadline (see Timers) so DTLSv1_handle_timeout acts now.
        m.libssl_deadline->tv_sec = 1;
        m.libssl_deadline->tv_usec = 0;
    }
    clear_errors();
    const long r = DTLSv1_handle_timeout(m.ssl.get());
    if (r > 0) {
        ++m.stats.retransmits;
    } else if (r < 0) {
        // Too many timeouts (DTLS1_TMO_ALERT_COUNT) or a fatal error while retransmitting.
        m.fail_from_openssl("handshake timed out");
    } else if (m.virtual_timer) {
        RTCAT_WARN("dtls", "OpenSSL ignored a forced DTLS timer expiry; using its own clock");
        m.virtual_timer = false;
    }
    m.finish_input();
}

base::Result<void> Session::send(std::span<const std::uint8_t> data) {
    Impl& m = *impl_;
    if (m.state != State::Connected)
        return base::make_error("dtls: not connected");
    if (data.empty())
        return base::make_error("dtls: empty record");
    if (data.size() > m.max_app_payload)
        return base::make_error("dtls: {} bytes exceed the largest record payload ({})",
                                data.size(), m.max_app_payload);
    clear_errors();
    std::size_t written = 0;
    if (SSL_write_ex(m.ssl.get(), data.data(), data.size(), &written) != 1) {
        const int e = SSL_get_error(m.ssl.get(), 0);
        std::string why = openssl_error_text();
        if (e == SSL_ERROR_SSL)
            m.fail("write: " + why, false);
        m.flush_pending();
        return base::make_error("dtls: write failed: {}", why);
    }
    m.flush_pending();
    return {};
}

std::optional<base::Bytes> Session::poll_transmit() {
    Impl& m = *impl_;
    if (m.outbox.empty())
        return std::nullopt;
    base::Bytes out = std::move(m.outbox.front());
    m.outbox.pop_front();
    return out;
}

std::optional<Event> Session::poll_event() {
    Impl& m = *impl_;
    if (m.events.empty())
        return std::nullopt;
    Event ev = std::move(m.events.front());
    m.events.pop_front();
    return ev;
}

base::Instant Session::poll_timeout() const {
    return impl_->state == State::Handshaking ? impl_->deadline : base::kNever;
}

void Session::close() {
    Impl& m = *impl_;
    if (m.state == State::Connected) {
        clear_errors();
        SSL_shutdown(m.ssl.get()); // close_notify (RFC 5246 §7.2.1)
        clear_errors();
        m.flush_pending();
    }
    // During the handshake libssl will not send close_notify (SSL_R_SHUTDOWN_WHILE_IN_INIT):
    // we just go quiet and let the peer time out.
    if (m.state == State::Connected || m.state == State::Handshaking) {
        m.state = State::Closed;
        m.deadline = base::kNever;
    }
}

bool Session::connected() const {
    return impl_->state == State::Connected;
}
bool Session::closed() const {
    return impl_->state == State::Closed || impl_->state == State::Failed;
}
bool Session::failed() const {
    return impl_->state == State::Failed;
}

base::Result<base::Bytes> Session::export_keying_material(std::string_view label,
                                                          std::size_t len) const {
    const Impl& m = *impl_;
    if (m.state != State::Connected)
        return base::make_error("dtls: keying material needs a connected session");
    base::Bytes out(len);
    clear_errors();
    if (SSL_export_keying_material(m.ssl.get(), out.data(), len, label.data(), label.size(),
                                   nullptr, 0, 0) != 1)
        return base::make_error("dtls: exporter failed: {}", openssl_error_text());
    return out;
}

std::optional<Fingerprint> Session::peer_fingerprint() const {
    return impl_->verified ? impl_->peer_fp : std::nullopt;
}

Session::Stats Session::stats() const {
    return impl_->stats;
}

std::size_t Session::max_app_payload() const {
    return impl_->state == State::Connected ? impl_->max_app_payload : 0;
}

std::size_t Session::record_overhead() const {
    return impl_->overhead;
}

} // namespace rtcat::dtls
