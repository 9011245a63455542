#pragma once
// Randomness for protocol identifiers (transaction ids, tie-breakers, ICE credentials).
// Cryptographically strong (OpenSSL RAND_bytes): transaction ids are a security measure
// against off-path spoofing (RFC 8489 §6.3.1).

#include <cstdint>
#include <span>

namespace rtcat::base {

void random_bytes(std::span<std::uint8_t> out);
std::uint64_t random_u64();

} // namespace rtcat::base
