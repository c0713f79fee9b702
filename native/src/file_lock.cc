#include "file_lock.h"

#include <cerrno>
#include <sys/file.h>

namespace interpose {

int tryLockExclusive(int fd, bool* locked, const char** syscall) {
  *syscall = "flock(LOCK_EX|LOCK_NB)";
  *locked = false;
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) {
    *locked = true;
    return 0;
  }
  return errno == EWOULDBLOCK ? 0 : errno;
}

}  // namespace interpose
