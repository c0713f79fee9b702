// Reads the destination a connection had before netfilter NAT (REDIRECT/DNAT) rewrote it.
// Plain C++ over the socket API; no Node types.
#pragma once

#include <sys/socket.h>

#include <cstdint>

namespace interpose {

/** The pre-NAT destination of an accepted TCP connection. */
struct OriginalDst {
  int family = 0;       // 4 or 6
  uint8_t addr[16]{};   // network order; IPv4 uses the first 4 bytes
  uint16_t port = 0;    // host order
  int32_t match = -1;   // filled by callers that classify the address (originalDstLookup)
};

/**
 * getsockopt(SO_ORIGINAL_DST) for IPv4 sockets, getsockopt(IP6T_SO_ORIGINAL_DST) for IPv6
 * ones, chosen by the socket's own family (getsockname). An IPv6 socket carrying an
 * IPv4-mapped connection is asked with SO_ORIGINAL_DST, because its conntrack entry is IPv4.
 * Returns 0, or an errno (ENOENT: the connection was not NATed); `*syscall` names the call
 * that failed.
 */
int readOriginalDst(int fd, OriginalDst* out, const char** syscall);

/** readOriginalDst for a socket whose local address (getsockname) the caller already has. */
int readOriginalDstAt(int fd, const sockaddr_storage& local, OriginalDst* out, const char** syscall);

/** Formats out->addr as text (inet_ntop) into buf of at least 46 bytes. */
void formatAddress(const OriginalDst& dst, char* buf, unsigned size);

}  // namespace interpose
