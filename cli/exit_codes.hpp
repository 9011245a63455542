#pragma once
// Exit codes, one per failure class, so scripts can tell them apart. Documented in rtcat(1).

namespace rtcat::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;       // internal or unclassified error
inline constexpr int kExitUsage = 2;         // bad command line or bad input
inline constexpr int kExitUnreachable = 3;   // no server/peer reachable; connectivity failed
inline constexpr int kExitTimeout = 4;       // --timeout expired before the work finished
inline constexpr int kExitSecurity = 5;      // DTLS/fingerprint failure
inline constexpr int kExitAuth = 6;          // TURN authentication failed
inline constexpr int kExitTransfer = 7;      // transfer or verification failed
inline constexpr int kExitPartial = 8;       // some servers answered, others did not
inline constexpr int kExitInterrupted = 130; // SIGINT or SIGTERM

} // namespace rtcat::cli
