// Socket options Node cannot set itself, on a raw fd. Plain C++; no Node types.
#pragma once

#include <cstdint>

namespace interpose {

/**
 * IP_TRANSPARENT (family 4) or IPV6_TRANSPARENT (family 6) = 1, so a TPROXY listener can
 * accept connections addressed to non-local addresses. Needs CAP_NET_ADMIN (or
 * CAP_NET_RAW). Returns 0 or an errno; `*syscall` names the call.
 */
int setTransparent(int fd, int family, const char** syscall);

/** SO_MARK = mark (needs CAP_NET_ADMIN). Returns 0 or an errno; `*syscall` names the call. */
int setMark(int fd, uint32_t mark, const char** syscall);

}  // namespace interpose
