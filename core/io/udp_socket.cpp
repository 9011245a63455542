#include "core/io/udp_socket.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/udp.h> // SOL_UDP, UDP_SEGMENT, UDP_GRO
#include <sys/socket.h>

#include <fmt/format.h>

#include "core/base/log.hpp"
#include "core/io/sockaddr.hpp"
#include "core/io/sys_error.hpp"

namespace rtcat::io {

namespace {

constexpr std::string_view kLog = "io";

// The largest UDP payload is 65527 bytes (IPv6 without jumbograms), so a 64 KiB slot never
// truncates; MSG_TRUNC is still checked.
constexpr std::size_t kSlotSize = 65536;
// Room for SO_RXQ_OVFL (u32), IPV6_PKTINFO (in6_pktinfo) and UDP_GRO (int), with slack.
constexpr std::size_t kControlSize = 128;
static_assert(CMSG_SPACE(sizeof(std::uint32_t)) + CMSG_SPACE(sizeof(in6_pktinfo)) +
                  CMSG_SPACE(sizeof(int)) <=
              kControlSize);
// A GSO send's one control message: UDP_SEGMENT with the segment size as a u16 (udp(7)).
constexpr std::size_t kSegmentControlSize = CMSG_SPACE(sizeof(std::uint16_t));

// With IP_RECVERR (and for connected sockets without it) an ICMP error is also stored in
// sk_err, which the *next* send or receive returns once instead of doing its work (udp(7)).
// That call's datagram was neither sent nor received, so it is retried; the details stay in
// the error queue for read_error(). A synchronous error of the same kind fails the retry too.
bool is_async_error(int err) {
    switch (err) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENONET:
    case ENOPROTOOPT:
    case EPROTO:
    case EMSGSIZE:
    case EACCES:
    case EOPNOTSUPP:
        return true;
    default:
        return false;
    }
}
// sk_err holds one value, so one retry clears it; a second covers an ICMP racing the first.
constexpr int kAsyncRetries = 2;

// The sockaddr to send to `dest` from a socket of the given kind; 0 if it cannot reach it.
socklen_t destination_sockaddr(bool v6, bool v6only, const net::SocketAddr& dest,
                               sockaddr_storage& out) {
    if (!v6)
        return dest.ip().is_v4() ? to_sockaddr(dest, out) : 0;
    if (dest.ip().is_v4() && v6only)
        return 0;
    return to_sockaddr_v6(dest, out);
}

int get_int_option(int fd, int level, int name) {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, level, name, &value, &len) != 0)
        return 0;
    return value;
}

std::string icmp_description(const sock_extended_err& ee) {
    if (ee.ee_origin == SO_EE_ORIGIN_LOCAL)
        return "local error";
    if (ee.ee_origin == SO_EE_ORIGIN_ICMP) {
        switch (ee.ee_type) {
        case 3: // RFC 792 destination unreachable
            switch (ee.ee_code) {
            case 0:
                return "ICMP network unreachable";
            case 1:
                return "ICMP host unreachable";
            case 2:
                return "ICMP protocol unreachable";
            case 3:
                return "ICMP port unreachable";
            case 4:
                return fmt::format("ICMP fragmentation needed (MTU {})", ee.ee_info);
            case 9:
            case 10:
            case 13:
                return "ICMP administratively prohibited";
            default:
                return fmt::format("ICMP destination unreachable (code {})", ee.ee_code);
            }
        case 11:
            return "ICMP time exceeded";
        case 12:
            return "ICMP parameter problem";
        default:
            return fmt::format("ICMP type {} code {}", ee.ee_type, ee.ee_code);
        }
    }
    if (ee.ee_origin == SO_EE_ORIGIN_ICMP6) {
        switch (ee.ee_type) {
        case 1: // RFC 4443 destination unreachable
            switch (ee.ee_code) {
            case 0:
                return "ICMPv6 no route to destination";
            case 1:
                return "ICMPv6 administratively prohibited";
            case 3:
                return "ICMPv6 address unreachable";
            case 4:
                return "ICMPv6 port unreachable";
            default:
                return fmt::format("ICMPv6 destination unreachable (code {})", ee.ee_code);
            }
        case 2:
            return fmt::format("ICMPv6 packet too big (MTU {})", ee.ee_info);
        case 3:
            return "ICMPv6 time exceeded";
        case 4:
            return "ICMPv6 parameter problem";
        default:
            return fmt::format("ICMPv6 type {} code {}", ee.ee_type, ee.ee_code);
        }
    }
    return fmt::format("error origin {}", ee.ee_origin);
}

} // namespace

struct UdpSocket::RecvScratch {
    // A coalesced (GRO) receive is at most 64 KiB too, so the slot size holds for it as well.
    std::unique_ptr<std::uint8_t[]> payload =
        std::make_unique_for_overwrite<std::uint8_t[]>(kMaxBatch * kSlotSize);
    std::array<mmsghdr, kMaxBatch> headers{};
    std::array<iovec, kMaxBatch> iovs{};
    std::array<sockaddr_storage, kMaxBatch> names{};
    alignas(cmsghdr) std::array<std::array<std::uint8_t, kControlSize>, kMaxBatch> control{};
};

// One sendmmsg call: a message per run of datagrams, an iovec per datagram. Copying a run into
// one buffer instead was measured (loopback, 32 x 1200 bytes per GSO send, sender CPU time):
// ~5.5 against ~6.0 us per send, ~16 ns per datagram or 0.3% of a data-channel sender's CPU,
// not worth a 64 KiB staging copy.
struct UdpSocket::SendScratch {
    static constexpr std::size_t kMaxIov = kMaxBatch * kMaxGsoSegments;
    std::array<mmsghdr, kMaxBatch> headers{};
    std::array<sockaddr_storage, kMaxBatch> names{};
    std::array<std::size_t, kMaxBatch> datagrams{}; // transmits carried by each message
    alignas(cmsghdr) std::array<std::array<std::uint8_t, kSegmentControlSize>, kMaxBatch> control{};
    std::array<iovec, kMaxIov> iovs{};
};

namespace {

// How many transmits from batch[first] on can go as one GSO send: same destination, the size
// of the first (non-zero), the last possibly shorter; within the kernel's limits (udp(7):
// every segment but the last is gso_size bytes).
std::size_t gso_run_length(std::span<const net::Transmit> batch, std::size_t first,
                           std::size_t limit) {
    const net::Transmit& head = batch[first];
    const std::size_t size = head.payload.size();
    if (size == 0)
        return 1;
    const std::size_t cap =
        std::min({limit, UdpSocket::kMaxGsoSegments, UdpSocket::kMaxGsoBytes / size});
    std::size_t n = 1;
    std::size_t bytes = size;
    while (n < cap && first + n < batch.size()) {
        const net::Transmit& t = batch[first + n];
        const std::size_t s = t.payload.size();
        if (s == 0 || s > size || bytes + s > UdpSocket::kMaxGsoBytes ||
            t.destination != head.destination)
            break;
        bytes += s;
        ++n;
        if (s < size)
            break; // a shorter one ends the run
    }
    return n;
}

} // namespace

UdpSocket::UdpSocket(UdpSocket&&) noexcept = default;
UdpSocket& UdpSocket::operator=(UdpSocket&&) noexcept = default;
UdpSocket::~UdpSocket() {
    if (fd_ && (offload_.gso_sends > 0 || offload_.gro_receives > 0 || offload_.gso_fallbacks > 0))
        RTCAT_DEBUG(kLog,
                    "{}: {} GSO sends carried {} datagrams, {} refused; {} GRO receives carried {}",
                    local_.to_string(), offload_.gso_sends, offload_.gso_datagrams,
                    offload_.gso_fallbacks, offload_.gro_receives, offload_.gro_datagrams);
}

base::Result<UdpSocket> UdpSocket::bind(const net::SocketAddr& local, const UdpOptions& options) {
    const bool v6 = local.ip().is_v6();
    UniqueFd fd(
        ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
    if (!fd)
        return sys_error(fmt::format("create UDP socket for {}", local.to_string()), errno);

    const bool wildcard = local.ip().is_unspecified();
    struct Option {
        bool wanted;
        int level;
        int name;
        int value;
        const char* what;
    };
    const Option socket_options[] = {
        {v6, IPPROTO_IPV6, IPV6_V6ONLY, options.v6only ? 1 : 0, "IPV6_V6ONLY"},
        {options.reuse_addr, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"},
        {options.rcvbuf > 0, SOL_SOCKET, SO_RCVBUF, options.rcvbuf, "SO_RCVBUF"},
        {options.sndbuf > 0, SOL_SOCKET, SO_SNDBUF, options.sndbuf, "SO_SNDBUF"},
        // Without IP_RECVERR an unconnected UDP socket never hears of ICMP errors (ip(7)).
        // IPv4 traffic on a dual-stack socket follows the IPv4 option, so those set both.
        {!v6 || !options.v6only, IPPROTO_IP, IP_RECVERR, 1, "IP_RECVERR"},
        {v6, IPPROTO_IPV6, IPV6_RECVERR, 1, "IPV6_RECVERR"},
        {true, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL"},
        // A wildcard-bound socket's own address does not say which address a datagram
        // reached; packet info does (IPV6_PKTINFO also covers IPv4 on a dual-stack socket).
        {wildcard && !v6, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO"},
        {wildcard && v6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO"},
    };
    for (const Option& o : socket_options) {
        if (!o.wanted)
            continue;
        if (::setsockopt(fd.get(), o.level, o.name, &o.value, sizeof o.value) != 0)
            return sys_error(fmt::format("setsockopt {} on {}", o.what, local.to_string()), errno);
    }

    sockaddr_storage ss{};
    socklen_t len = to_sockaddr(local, ss);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0)
        return sys_error(fmt::format("bind UDP {}", local.to_string()), errno);
    len = sizeof ss;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return sys_error(fmt::format("getsockname after binding {}", local.to_string()), errno);
    auto bound = from_sockaddr(ss, len);
    if (!bound)
        return base::make_error("getsockname after binding {}: unexpected address family",
                                local.to_string());

    // Offload is optional: a kernel without it (ENOPROTOOPT) gets the plain paths. UDP_SEGMENT
    // set to 0 only probes for it; each GSO send names its segment size in a control message.
    const int off = 0;
    const int on = 1;
    const bool gso =
        options.gso && ::setsockopt(fd.get(), SOL_UDP, UDP_SEGMENT, &off, sizeof off) == 0;
    const int gso_err = errno;
    const bool gro = options.gro && ::setsockopt(fd.get(), SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
    const int gro_err = errno;

    UdpSocket s;
    s.gso_ = gso;
    s.gro_ = gro;
    s.fd_ = std::move(fd);
    s.local_ = *bound;
    s.v6_ = v6;
    s.v6only_ = options.v6only;
    s.wildcard_ = wildcard;
    s.buffers_.rcvbuf = get_int_option(s.fd(), SOL_SOCKET, SO_RCVBUF) / 2;
    s.buffers_.sndbuf = get_int_option(s.fd(), SOL_SOCKET, SO_SNDBUF) / 2;
    if (options.rcvbuf > s.buffers_.rcvbuf || options.sndbuf > s.buffers_.sndbuf) {
        RTCAT_DEBUG(kLog,
                    "{}: kernel limited socket buffers to rcvbuf {} (asked {}), sndbuf {} (asked "
                    "{}); raise net.core.rmem_max/wmem_max for more",
                    s.local_.to_string(), s.buffers_.rcvbuf, options.rcvbuf, s.buffers_.sndbuf,
                    options.sndbuf);
    }
    RTCAT_INFO(kLog, "{}: UDP GSO {}, GRO {}", s.local_.to_string(),
               gso ? "on" : (options.gso ? "refused (" + errno_text(gso_err) + ")" : "off"),
               gro ? "on" : (options.gro ? "refused (" + errno_text(gro_err) + ")" : "off"));
    return s;
}

base::Error UdpSocket::family_mismatch(const net::SocketAddr& destination) const {
    return base::make_error("send to {}: socket {} is {}", destination.to_string(),
                            local_.to_string(), v6_ ? "IPv6-only" : "IPv4");
}

base::Result<SendStatus> UdpSocket::send_to(base::ByteView payload,
                                            const net::SocketAddr& destination) {
    sockaddr_storage ss{};
    const socklen_t len = destination_sockaddr(v6_, v6only_, destination, ss);
    if (len == 0)
        return family_mismatch(destination);
    int retries = 0;
    for (;;) {
        if (::sendto(fd(), payload.data(), payload.size(), 0,
                     reinterpret_cast<const sockaddr*>(&ss), len) >= 0)
            return SendStatus::Sent;
        const int err = errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK)
            return SendStatus::WouldBlock;
        if (err == ENOBUFS) {
            // The queue discipline dropped it: plain UDP loss, which the kernel would hide
            // without IP_RECVERR.
            ++local_drops_;
            return SendStatus::Sent;
        }
        if (is_async_error(err) && retries++ < kAsyncRetries)
            continue;
        return sys_error(fmt::format("send to {}", destination.to_string()), err);
    }
}

void UdpSocket::disable_gso(int err) {
    gso_ = false;
    ++offload_.gso_fallbacks;
    RTCAT_INFO(kLog,
               "{}: the kernel refused a UDP GSO send ({}): one datagram per send from now on",
               local_.to_string(), errno_text(err));
}

base::Result<std::size_t> UdpSocket::send_batch(std::span<const net::Transmit> batch) {
    if (!send_)
        send_ = std::make_unique<SendScratch>();
    SendScratch& s = *send_;
    std::size_t sent = 0;
    int retries = 0;
    // Set when a GSO send failed for a reason that may belong to one of its datagrams: that
    // run goes one by one once, so the error lands on the datagram that causes it.
    bool split_first = false;
    while (sent < batch.size()) {
        unsigned n = 0;
        std::size_t iov_used = 0;
        std::size_t next = sent;
        while (n < kMaxBatch && next < batch.size() && iov_used < SendScratch::kMaxIov) {
            const net::Transmit& head = batch[next];
            const socklen_t len = destination_sockaddr(v6_, v6only_, head.destination, s.names[n]);
            if (len == 0)
                break;
            const bool plain = !gso_ || (split_first && n == 0);
            const std::size_t run =
                plain ? 1 : gso_run_length(batch, next, SendScratch::kMaxIov - iov_used);
            for (std::size_t k = 0; k < run; ++k) {
                const base::Bytes& payload = batch[next + k].payload;
                // sendmmsg does not write through iov_base; the API just lacks const.
                s.iovs[iov_used + k].iov_base = const_cast<std::uint8_t*>(payload.data());
                s.iovs[iov_used + k].iov_len = payload.size();
            }
            msghdr& h = s.headers[n].msg_hdr;
            h.msg_name = &s.names[n];
            h.msg_namelen = len;
            h.msg_iov = &s.iovs[iov_used];
            h.msg_iovlen = run;
            h.msg_control = nullptr;
            h.msg_controllen = 0;
            h.msg_flags = 0;
            if (run > 1) {
                h.msg_control = s.control[n].data();
                h.msg_controllen = kSegmentControlSize;
                cmsghdr* c = CMSG_FIRSTHDR(&h);
                c->cmsg_level = SOL_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
                const auto segment = static_cast<std::uint16_t>(head.payload.size());
                std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
            }
            s.datagrams[n] = run;
            iov_used += run;
            next += run;
            ++n;
        }
        if (n == 0) {
            if (sent > 0)
                return sent;
            return family_mismatch(batch[sent].destination);
        }
        // A failure after the first message only shortens the count (the errno is lost), so
        // the loop resends from there and sees the error on the first message of that call.
        // A GSO message goes whole or not at all (one skb, udp_send_skb), so counting the
        // datagrams of the messages sent is exact.
        const int r = ::sendmmsg(fd(), s.headers.data(), n, 0);
        if (r > 0) {
            for (int i = 0; i < r; ++i) {
                const std::size_t d = s.datagrams[static_cast<std::size_t>(i)];
                sent += d;
                if (d > 1) {
                    ++offload_.gso_sends;
                    offload_.gso_datagrams += d;
                }
            }
            retries = 0;
            split_first = false;
            continue;
        }
        const int err = r == 0 ? EAGAIN : errno;
        const std::size_t first = s.datagrams[0];
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK)
            return sent;
        if (err == ENOBUFS) {
            // Dropped by the queue discipline, a GSO send as a whole.
            local_drops_ += first;
            sent += first;
            continue;
        }
        if (first > 1 && (err == EIO || err == EINVAL)) {
            // The kernel cannot segment on this path (udp_send_skb: no checksum offload,
            // IPsec, SO_NO_CHECK, segment size above the route's MTU): that does not change.
            disable_gso(err);
            continue;
        }
        if (is_async_error(err) && retries++ < kAsyncRetries)
            continue;
        if (first > 1) {
            split_first = true;
            retries = 0;
            continue;
        }
        if (sent > 0)
            return sent;
        return sys_error(fmt::format("send to {}", batch[sent].destination.to_string()), err);
    }
    return sent;
}

base::Result<std::size_t> UdpSocket::recv_batch(std::vector<net::Datagram>& out, std::size_t max) {
    if (max == 0)
        return std::size_t{0};
    if (!recv_)
        recv_ = std::make_unique<RecvScratch>();
    RecvScratch& s = *recv_;

    std::size_t added = 0;
    int retries = 0;
    while (added < max) {
        // Ask for as many messages as should make up the rest of `max`: with GRO one message
        // may carry dozens of datagrams, and the caller's budget is in datagrams.
        const std::size_t estimate = std::max<std::size_t>(recv_segments_estimate_, 1);
        const std::size_t want =
            std::clamp<std::size_t>((max - added + estimate - 1) / estimate, 1, kMaxBatch);
        for (std::size_t i = 0; i < want; ++i) {
            s.iovs[i].iov_base = s.payload.get() + i * kSlotSize;
            s.iovs[i].iov_len = kSlotSize;
            msghdr& h = s.headers[i].msg_hdr;
            h.msg_name = &s.names[i];
            h.msg_namelen = sizeof s.names[i];
            h.msg_iov = &s.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = s.control[i].data();
            h.msg_controllen = kControlSize;
            h.msg_flags = 0;
        }
        // recvmmsg returns an error from the middle of a batch on the *next* call (it parks
        // it in sk_err), which lands in the async-error retry below.
        const int received =
            ::recvmmsg(fd(), s.headers.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
        if (received < 0) {
            const int err = errno;
            if (err == EINTR)
                continue;
            if (err == EAGAIN || err == EWOULDBLOCK)
                break;
            if (is_async_error(err) && retries++ < kAsyncRetries)
                continue;
            if (added > 0)
                break; // reported again by the next call
            return sys_error(fmt::format("receive on {}", local_.to_string()), err);
        }
        std::size_t datagrams = 0;
        for (int i = 0; i < received; ++i)
            datagrams += take_message(static_cast<std::size_t>(i), out);
        added += datagrams;
        if (received > 0) {
            // Halved at most per call, so one single datagram among coalesced ones does not
            // make the next call ask for kMaxBatch receives of up to kMaxGsoSegments each.
            const std::size_t seen = datagrams / static_cast<std::size_t>(received);
            recv_segments_estimate_ = std::max({seen, recv_segments_estimate_ / 2, std::size_t{1}});
        }
        if (static_cast<std::size_t>(received) < want)
            break; // the queue is empty
    }
    return added;
}

std::size_t UdpSocket::take_message(std::size_t i, std::vector<net::Datagram>& out) {
    RecvScratch& s = *recv_;
    msghdr& h = s.headers[i].msg_hdr;
    net::SocketAddr destination = local_;
    std::size_t segment = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            std::uint32_t drops = 0;
            std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
            kernel_drops_ = drops;
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            in_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof info);
            destination = net::SocketAddr(from_in_addr(info.ipi_addr), local_.port());
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            in6_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof info);
            destination = net::SocketAddr(from_in6_addr(info.ipi6_addr), local_.port());
        } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            // udp(7): the size of each coalesced datagram but the last, which may be shorter.
            int size = 0;
            std::memcpy(&size, CMSG_DATA(c), sizeof size);
            segment = size > 0 ? static_cast<std::size_t>(size) : 0;
        }
    }
    if ((h.msg_flags & MSG_TRUNC) != 0) {
        ++local_drops_;
        return 0;
    }
    auto source = from_sockaddr(s.names[i], h.msg_namelen);
    if (!source)
        return 0;
    const auto* data = static_cast<const std::uint8_t*>(h.msg_iov->iov_base);
    const std::size_t len = s.headers[i].msg_len;
    if (segment == 0 || segment >= len)
        segment = std::max<std::size_t>(len, 1); // one datagram (possibly empty)
    std::size_t count = 0;
    std::size_t offset = 0;
    do {
        const std::size_t size = std::min(segment, len - offset);
        net::Datagram d;
        d.source = *source;
        d.destination = destination;
        d.payload.assign(data + offset, data + offset + size);
        out.push_back(std::move(d));
        offset += size;
        ++count;
    } while (offset < len);
    if (count > 1) {
        ++offload_.gro_receives;
        offload_.gro_datagrams += count;
    }
    return count;
}

std::optional<IcmpError> UdpSocket::read_error() {
    // Entries without an extended error (none are expected) are skipped, within reason.
    for (int attempt = 0; attempt < 8; ++attempt) {
        // The queued copy of the failed datagram is not needed: a short buffer truncates it.
        std::uint8_t payload[64];
        iovec iov{payload, sizeof payload};
        sockaddr_storage name{};
        alignas(cmsghdr) std::array<std::uint8_t, 512> control{};
        msghdr h{};
        h.msg_name = &name;
        h.msg_namelen = sizeof name;
        h.msg_iov = &iov;
        h.msg_iovlen = 1;
        h.msg_control = control.data();
        h.msg_controllen = control.size();
        if (::recvmsg(fd(), &h, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
            const int err = errno;
            if (err == EINTR)
                continue;
            if (err != EAGAIN && err != EWOULDBLOCK)
                RTCAT_DEBUG(kLog, "reading error queue of {}: {}", local_.to_string(),
                            errno_text(err));
            return std::nullopt;
        }
        for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
            const bool v4_err = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
            const bool v6_err = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
            if (!(v4_err || v6_err) || c->cmsg_len < CMSG_LEN(sizeof(sock_extended_err)))
                continue;
            const std::uint8_t* data = CMSG_DATA(c);
            sock_extended_err ee{};
            std::memcpy(&ee, data, sizeof ee);

            IcmpError e;
            if (auto dest = from_sockaddr(name, h.msg_namelen))
                e.destination = *dest;
            e.error = static_cast<int>(ee.ee_errno);
            // SO_EE_OFFENDER: the reporting node's sockaddr follows the struct.
            const std::size_t data_len = c->cmsg_len - CMSG_LEN(0);
            if (data_len > sizeof ee) {
                const auto* offender = reinterpret_cast<const sockaddr*>(data + sizeof ee);
                if (auto r = from_sockaddr(offender, static_cast<socklen_t>(data_len - sizeof ee)))
                    e.reporter = r->ip();
            }
            e.message = fmt::format("{}{} for {}: {}", icmp_description(ee),
                                    e.reporter ? " from " + e.reporter->to_string() : "",
                                    e.destination.to_string(), errno_text(e.error));
            return e;
        }
    }
    return std::nullopt;
}

} // namespace rtcat::io
