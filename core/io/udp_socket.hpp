#pragma once
// A non-blocking UDP socket for the event loop: batched send/receive (sendmmsg/recvmmsg) with
// UDP segmentation offload both ways (GSO on send, GRO on receive, udp(7)), ICMP errors through
// the error queue (IP_RECVERR), and the kernel's receive-drop counter (SO_RXQ_OVFL). No sockaddr
// types in this header.

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
    // UDP_SEGMENT (Linux >= 4.18): send_batch hands a run of equal-sized datagrams for one
    // destination to the kernel as one send, which splits it into datagrams as late as possible
    // (on loopback: at the receiving socket). Most of the kernel's per-datagram cost is per
    // send call. false: never (as on a kernel that refuses it; tests force the plain path).
    bool gso = true;
    // UDP_GRO (Linux >= 5.0): the kernel may hand several datagrams of one flow to one receive
    // (on loopback: a GSO send arrives whole); recv_batch splits them again. Without it a GSO
    // sender's burst costs the receiver one queued datagram each, as before. false: never.
    bool gro = true;
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

// What segmentation offload did on one socket, for tests and logs.
struct OffloadStats {
    std::uint64_t gso_sends = 0;     // sends that carried more than one datagram
    std::uint64_t gso_datagrams = 0; // datagrams those sends carried
    std::uint64_t gro_receives = 0;  // receives that the kernel had coalesced
    std::uint64_t gro_datagrams = 0; // datagrams split out of them
    std::uint64_t gso_fallbacks = 0; // GSO sends the kernel refused, resent one by one
};

enum class SendStatus {
    Sent,
    // The socket's send buffer is full: wait for POLLOUT and send again.
    WouldBlock,
};

class UdpSocket {
public:
    // Messages per sendmmsg/recvmmsg call (with offload one message carries several datagrams).
    static constexpr std::size_t kMaxBatch = 32;
    // Most datagrams in one GSO send: the kernel refuses more than UDP_MAX_SEGMENTS with EINVAL
    // (include/linux/udp.h: 64, raised to 128 in later kernels; 64 works everywhere).
    static constexpr std::size_t kMaxGsoSegments = 64;
    // Most payload bytes in one GSO send: a GSO packet with its Ethernet, IPv6 and UDP headers
    // must fit the 64 KiB a device takes as one unit (gso_max_size, GSO_LEGACY_MAX_SIZE; lo's
    // too). A larger one is still sent, but segmented in software before the device, so a GRO
    // receiver gets single datagrams (measured on loopback, Linux 6.18: IPv4 65488 bytes arrive
    // whole, 65500 do not; IPv6 65000 whole, 65487 not). 1200-byte datagrams: 54 per send.
    static constexpr std::size_t kMaxGsoBytes = 65536 - 14 - 40 - 8;

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
    // With GSO a run of consecutive transmits to one destination whose payloads have one size
    // (the last may be shorter) goes as one send of at most kMaxGsoSegments datagrams and
    // kMaxGsoBytes; such a send goes whole or not at all, so the count stays exact. If the
    // kernel refuses a GSO send (EIO, EINVAL: no checksum offload, IPsec, SO_NO_CHECK, a
    // segment larger than the route's MTU), GSO is switched off for this socket and the
    // datagrams are sent one by one.
    base::Result<std::size_t> send_batch(std::span<const net::Transmit> batch);

    // Appends about `max` received datagrams to `out` and returns how many; 0 when nothing is
    // queued, fewer than `max` only when the queue was drained. With GRO one receive carries up
    // to kMaxGsoSegments datagrams and is never split across calls; the kernel is asked for as
    // many receives as should make up `max` at the datagrams per receive seen lately, so a call
    // can return more than `max` (at worst kMaxBatch receives' worth). `destination` is the
    // address the datagram was sent to (the local address, or the packet's own destination on
    // a socket bound to a wildcard).
    base::Result<std::size_t> recv_batch(std::vector<net::Datagram>& out, std::size_t max);

    // Takes one entry from the socket's error queue; nullopt when it is empty. Call it while
    // the poller reports has_error() for this socket.
    std::optional<IcmpError> read_error();

    // Datagrams the kernel dropped because the receive buffer was full, as of the latest
    // datagram received (the kernel reports the count only on datagrams queued after a drop).
    // With GRO a coalesced receive that is dropped counts once, however many datagrams it held
    // (sk_drops counts socket buffers, __udp_enqueue_schedule_skb).
    std::uint64_t kernel_drops() const { return kernel_drops_; }
    // Datagrams discarded locally: larger than the receive slot, or refused by the outgoing
    // queue (ENOBUFS, which the kernel hides unless IP_RECVERR is on, as it is here).
    std::uint64_t local_drops() const { return local_drops_; }

    // Whether sends and receives use segmentation offload now (UdpOptions asked for it and the
    // kernel accepted; GSO also turns off after a refused send).
    bool gso_active() const { return gso_; }
    bool gro_active() const { return gro_; }
    const OffloadStats& offload_stats() const { return offload_; }

private:
    struct RecvScratch;
    struct SendScratch;

    UdpSocket() = default;
    base::Error family_mismatch(const net::SocketAddr& destination) const;
    void disable_gso(int err);
    // Appends the datagrams of received message i of the scratch (several when coalesced).
    std::size_t take_message(std::size_t i, std::vector<net::Datagram>& out);

    UniqueFd fd_;
    net::SocketAddr local_;
    BufferSizes buffers_;
    bool v6_ = false;
    bool v6only_ = true;
    bool wildcard_ = false; // bound to 0.0.0.0 or ::: destinations come from IP(V6)_PKTINFO
    std::uint64_t kernel_drops_ = 0;
    std::uint64_t local_drops_ = 0;
    bool gso_ = false;
    bool gro_ = false;
    OffloadStats offload_;
    // Datagrams per coalesced receive lately, to size the next recvmmsg (recv_batch).
    std::size_t recv_segments_estimate_ = 1;
    std::unique_ptr<RecvScratch> recv_;
    std::unique_ptr<SendScratch> send_;
};

} // namespace rtcat::io
