#include "netns_proc_file.h"

#include <cerrno>
#include <fcntl.h>
#include <sched.h>
#include <thread>
#include <unistd.h>

namespace interpose {
namespace {

// Closes a descriptor when it goes out of scope.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() {
    if (fd_ >= 0) close(fd_);
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads `path` to its end or `limit` bytes; returns 0 or an errno.
int ReadBounded(const std::string& path, size_t limit, std::string* content) {
  OwnedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno;
  char buffer[4096];
  while (content->size() < limit) {
    const size_t want = limit - content->size() < sizeof buffer ? limit - content->size() : sizeof buffer;
    const ssize_t n = read(fd.get(), buffer, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    content->append(buffer, static_cast<size_t>(n));
  }
  return 0;
}

}  // namespace

int ReadProcNetIn(const std::string& netnsPath, const std::string& name, size_t limit, std::string* content,
                  const char** syscall) {
  *syscall = "open";
  OwnedFd ns(open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC));
  if (ns.get() < 0) return errno;
  int error = 0;
  // setns() changes only the calling thread, and /proc/thread-self/net shows that thread's
  // namespace: this thread exists to enter it, read, and end.
  std::thread reader([&] {
    if (setns(ns.get(), CLONE_NEWNET) != 0) {
      error = errno;
      *syscall = "setns";
      return;
    }
    error = ReadBounded("/proc/thread-self/net/" + name, limit, content);
    if (error != 0) *syscall = "read";
  });
  reader.join();
  return error;
}

}  // namespace interpose
