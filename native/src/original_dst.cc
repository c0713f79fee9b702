#include "original_dst.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <sys/socket.h>

// From <linux/netfilter_ipv6/ip6_tables.h>, which drags in the whole ip6tables ABI; the
// option number is fixed kernel ABI (same value as SO_ORIGINAL_DST).
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

namespace interpose {
namespace {

bool isMapped(const in6_addr& a) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.s6_addr, prefix, sizeof prefix) == 0;
}

// The family's fields of an original destination.
void fill(const sockaddr_in& sin, OriginalDst* out) {
  out->family = 4;
  std::memcpy(out->addr, &sin.sin_addr, 4);
  out->port = ntohs(sin.sin_port);
}

void fill(const sockaddr_in6& sin6, OriginalDst* out) {
  out->family = 6;
  std::memcpy(out->addr, &sin6.sin6_addr, 16);
  out->port = ntohs(sin6.sin6_port);
}

// One getsockopt that answers with a socket address (sockaddr_in or sockaddr_in6).
template <typename Sockaddr>
int readAs(int fd, int level, int option, OriginalDst* out) {
  Sockaddr sa{};
  socklen_t len = sizeof sa;
  if (getsockopt(fd, level, option, &sa, &len) != 0) return errno;
  fill(sa, out);
  return 0;
}

}  // namespace

int readOriginalDst(int fd, OriginalDst* out, const char** syscall) {
  sockaddr_storage local{};
  socklen_t localLen = sizeof local;
  *syscall = "getsockname";
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &localLen) != 0) return errno;
  return readOriginalDstAt(fd, local, out, syscall);
}

int readOriginalDstAt(int fd, const sockaddr_storage& local, OriginalDst* out, const char** syscall) {
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) return EAFNOSUPPORT;
  // An IPv4-mapped connection on an IPv6 socket has an IPv4 conntrack entry.
  if (local.ss_family == AF_INET || isMapped(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_addr)) {
    *syscall = "getsockopt(SO_ORIGINAL_DST)";
    return readAs<sockaddr_in>(fd, SOL_IP, SO_ORIGINAL_DST, out);
  }
  *syscall = "getsockopt(IP6T_SO_ORIGINAL_DST)";
  return readAs<sockaddr_in6>(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out);
}

void formatAddress(const OriginalDst& dst, char* buf, unsigned size) {
  if (inet_ntop(dst.family == 4 ? AF_INET : AF_INET6, dst.addr, buf, size) == nullptr) buf[0] = 0;
}

}  // namespace interpose
