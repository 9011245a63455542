#include "core/io/udp_socket.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <linux/errqueue.h>
#include <netinet/in.h>
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
// Room for SO_RXQ_OVFL (u32) and IPV6_PKTINFO (in6_pktinfo), with slack.
constexpr std::size_t kControlSize = 128;
static_assert(CMSG_SPACE(sizeof(std::uint32_t)) + CMSG_SPACE(sizeof(in6_pktinfo)) <= kControlSize);

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
    std::unique_ptr<std::uint8_t[]> payload =
        std::make_unique_for_overwrite<std::uint8_t[]>(kMaxBatch * kSlotSize);
    std::array<mmsghdr, kMaxBatch> headers{};
    std::array<iovec, kMaxBatch> iovs{};
    std::array<sockaddr_storage, kMaxBatch> names{};
    alignas(cmsghdr) std::array<std::array<std::uint8_t, kControlSize>, kMaxBatch> control{};
};

UdpSocket::UdpSocket(UdpSocket&&) noexcept = default;
UdpSocket& UdpSocket::operator=(UdpSocket&&) noexcept = default;
UdpSocket::~UdpSocket() = default;

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

    UdpSocket s;
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

base::Result<std::size_t> UdpSocket::send_batch(std::span<const net::Transmit> batch) {
    std::size_t sent = 0;
    int retries = 0;
    while (sent < batch.size()) {
        std::array<mmsghdr, kMaxBatch> headers{};
        std::array<iovec, kMaxBatch> iovs{};
        std::array<sockaddr_storage, kMaxBatch> names{};
        unsigned n = 0;
        for (; n < kMaxBatch && sent + n < batch.size(); ++n) {
            const net::Transmit& t = batch[sent + n];
            const socklen_t len = destination_sockaddr(v6_, v6only_, t.destination, names[n]);
            if (len == 0)
                break;
            // sendmmsg does not write through iov_base; the API just lacks const.
            iovs[n].iov_base = const_cast<std::uint8_t*>(t.payload.data());
            iovs[n].iov_len = t.payload.size();
            msghdr& h = headers[n].msg_hdr;
            h.msg_name = &names[n];
            h.msg_namelen = len;
            h.msg_iov = &iovs[n];
            h.msg_iovlen = 1;
        }
        if (n == 0) {
            if (sent > 0)
                return sent;
            return family_mismatch(batch[sent].destination);
        }
        // A failure after the first message only shortens the count (the errno is lost), so
        // the loop resends from there and sees the error on the first message of that call.
        const int r = ::sendmmsg(fd(), headers.data(), n, 0);
        if (r > 0) {
            sent += static_cast<std::size_t>(r);
            retries = 0;
            continue;
        }
        const int err = r == 0 ? EAGAIN : errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK)
            return sent;
        if (err == ENOBUFS) {
            ++local_drops_;
            ++sent;
            continue;
        }
        if (is_async_error(err) && retries++ < kAsyncRetries)
            continue;
        if (sent > 0)
            return sent;
        return sys_error(fmt::format("send to {}", batch[sent].destination.to_string()), err);
    }
    return sent;
}

base::Result<std::size_t> UdpSocket::recv_batch(std::vector<net::Datagram>& out, std::size_t max) {
    max = std::min(max, kMaxBatch);
    if (max == 0)
        return std::size_t{0};
    if (!recv_)
        recv_ = std::make_unique<RecvScratch>();
    RecvScratch& s = *recv_;

    int received = 0;
    int retries = 0;
    for (;;) {
        for (std::size_t i = 0; i < max; ++i) {
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
        received =
            ::recvmmsg(fd(), s.headers.data(), static_cast<unsigned>(max), MSG_DONTWAIT, nullptr);
        if (received >= 0)
            break;
        const int err = errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK)
            return std::size_t{0};
        if (is_async_error(err) && retries++ < kAsyncRetries)
            continue;
        return sys_error(fmt::format("receive on {}", local_.to_string()), err);
    }

    std::size_t added = 0;
    for (int i = 0; i < received; ++i) {
        msghdr& h = s.headers[static_cast<std::size_t>(i)].msg_hdr;
        net::SocketAddr destination = local_;
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
            }
        }
        if ((h.msg_flags & MSG_TRUNC) != 0) {
            ++local_drops_;
            continue;
        }
        auto source = from_sockaddr(s.names[static_cast<std::size_t>(i)], h.msg_namelen);
        if (!source)
            continue;
        const auto* data = static_cast<const std::uint8_t*>(h.msg_iov->iov_base);
        net::Datagram d;
        d.source = *source;
        d.destination = destination;
        d.payload.assign(data, data + s.headers[static_cast<std::size_t>(i)].msg_len);
        out.push_back(std::move(d));
        ++added;
    }
    return added;
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
