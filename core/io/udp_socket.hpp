#pragma once
// A non-blocking UDP socket for the event loop: batched send/receive (sendmmsg/recvmmsg),
// ICMP errors through the error queue (IP_RECVERR), and the kernel's receive-drop counter
// (SO_RXQ_OVFL). No sockaddr types in this header.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/base/bytes.hpp"
#include "core/base/result.hpp"
#include "core/io/fd.hpp"
#include "core/net/address.hpp"
#include "core/net/datagram.hpp"

namespace rtcat::io {

struct UdpOptions {
    // SO_RCVBUF / SO_SNDBUF request in bytes; <= 0 keeps the kernel default. The default
    // (~208 KiB) overflows at data-channel rates (DESIGN.md §6); the kernel clamps requests to
    // net.core.rmem_max / wmem_max, so check UdpSocket::buffer_sizes().
    int rcvbuf = 4 * 1024 * 1024;
    int sndbuf = 4 * 1024 * 1024;
    // IPv6 binds only: false makes a dual-stack socket that also carries IPv4 (reported as
    // plain IPv4 addresses, never ::ffff:a.b.c.d).
    bool v6only = true;
    bool reuse_addr = false;
};

// What the kernel granted, in the units of UdpOptions. (getsockopt reports twice this: the
// kernel doubles the request to cover its bookkeeping, socket(7).)
struct BufferSizes {
    int rcvbuf = 0;
    int sndbuf = 0;
};

// An error reported by ICMP (or a local error such as EMSGSIZE) for a datagram sent earlier.
struct IcmpError {
    net::SocketAddr destination;         // where the failed datagram was sent
    int error = 0;                       // errno: ECONNREFUSED, EHOSTUNREACH, EMSGSIZE, ...
    std::string message;                 // human-readable, names the ICMP type and the destination
    std::optional<net::IpAddr> reporter; // who sent the ICMP (a router, or the peer itself)
};

enum class SendStatus {
    Sent,
    // The socket's send buffer is full: wait for POLLOUT and send again.
    WouldBlock,
};

class UdpSocket {
public:
    // Datagrams per sendmmsg/recvmmsg call.
    static constexpr std::size_t kMaxBatch = 32;

    static base::Result<UdpSocket> bind(const net::SocketAddr& local,
                                        const UdpOptions& options = {});

    UdpSocket(UdpSocket&&) noexcept;
    UdpSocket& operator=(UdpSocket&&) noexcept;
    ~UdpSocket();

    // The bound address, with the port the kernel chose when bound to port 0.
    const net::SocketAddr& local_address() const { return local_; }
    const BufferSizes& buffer_sizes() const { return buffers_; }
    int fd() const { return fd_.get(); }

    // Errors that earlier ICMP messages left pending on the socket (ECONNREFUSED, ...) do not
    // fail this call: they are consumed and the send retried; read_error() still reports them.
    base::Result<SendStatus> send_to(base::ByteView payload, const net::SocketAddr& destination);

    // Sends batch[0..] in order (Transmit::source is ignored) and returns how many went; fewer
    // than batch.size() means the send buffer filled (wait for POLLOUT) or a later datagram
    // failed. An error is returned only when batch[0] itself cannot be sent: the caller can
    // drop it and continue with the rest.
    base::Result<std::size_t> send_batch(std::span<const net::Transmit> batch);

    // Appends up to `max` (at most kMaxBatch) received datagrams to `out` and returns how many;
    // 0 when nothing is queued. `destination` is the address the datagram was sent to (the
    // local address, or the packet's own destination on a socket bound to a wildcard).
    base::Result<std::size_t> recv_batch(std::vector<net::Datagram>& out, std::size_t max);

    // Takes one entry from the socket's error queue; nullopt when it is empty. Call it while
    // the poller reports has_error() for this socket.
    std::optional<IcmpError> read_error();

    // Datagrams the kernel dropped because the receive buffer was full, as of the latest
    // datagram received (the kernel reports the count only on datagrams queued after a drop).
    std::uint64_t kernel_drops() const { return kernel_drops_; }
    // Datagrams discarded locally: larger than the receive slot, or refused by the outgoing
    // queue (ENOBUFS, which the kernel hides unless IP_RECVERR is on, as it is here).
    std::uint64_t local_drops() const { return local_drops_; }

private:
    struct RecvScratch;

    UdpSocket() = default;
    base::Error family_mismatch(const net::SocketAddr& destination) const;

    UniqueFd fd_;
    net::SocketAddr local_;
    BufferSizes buffers_;
    bool v6_ = false;
    bool v6only_ = true;
    bool wildcard_ = false; // bound to 0.0.0.0 or ::: destinations come from IP(V6)_PKTINFO
    std::uint64_t kernel_drops_ = 0;
    std::uint64_t local_drops_ = 0;
    std::unique_ptr<RecvScratch> recv_;
};

} // namespace rtcat::io
