#pragma once
// The unit every machine receives and transmits: one UDP payload and its addresses.

#include "core/base/bytes.hpp"
#include "core/base/time.hpp"
#include "core/net/address.hpp"

namespace rtcat::net {

struct Datagram {
    SocketAddr source;
    SocketAddr destination;
    base::Bytes payload;
};

// What a machine asks its driver to send. `source` selects the local socket (unspecified
// address: any socket of the destination's family).
struct Transmit {
    SocketAddr source;
    SocketAddr destination;
    base::Bytes payload;
};

} // namespace rtcat::net
