#pragma once
// The SCTP checksum: CRC32c (Castagnoli polynomial, reflected 0x82F63B78, initial value and final
// XOR 0xFFFFFFFF; RFC 9260 §6.8 and Appendix A), with the CPU's crc32 instruction where there is
// one. usrsctp computes it in software, and Debian's build of it costs ~12% of each side's CPU
// at data-channel rates: we compute it on output (stack.cpp) and check it on input
// (association.cpp) instead.

#include <cstddef>
#include <cstdint>

namespace rtcat::sctp {

// CRC32c of `data`, final XOR applied (the value RFC 9260 puts in the common header, stored
// least significant byte first).
std::uint32_t crc32c(const std::uint8_t* data, std::size_t size);

// Writes the checksum of an SCTP packet into its common header (bytes 8..11), computed with that
// field zeroed. Packets shorter than the common header are left alone.
void set_packet_checksum(std::uint8_t* packet, std::size_t size);
// True when the packet's checksum matches its bytes (false for one shorter than the header).
bool packet_checksum_ok(const std::uint8_t* packet, std::size_t size);

} // namespace rtcat::sctp
