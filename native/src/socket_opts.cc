#include "socket_opts.h"

#include <cerrno>
#include <netinet/in.h>
#include <sys/socket.h>

namespace interpose {

int setTransparent(int fd, int family, const char** syscall) {
  const int on = 1;
  int rc;
  if (family == 4) {
    *syscall = "setsockopt(IP_TRANSPARENT)";
    rc = setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof on);
  } else {
    *syscall = "setsockopt(IPV6_TRANSPARENT)";
    rc = setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on, sizeof on);
  }
  return rc == 0 ? 0 : errno;
}

int setMark(int fd, uint32_t mark, const char** syscall) {
  *syscall = "setsockopt(SO_MARK)";
  return setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0 ? 0 : errno;
}

}  // namespace interpose
