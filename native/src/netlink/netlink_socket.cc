#include "netlink/netlink_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace interpose {
namespace {

// Closes a descriptor on every path out.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

BatchOutcome Failed(const char* syscall, int error) {
  BatchOutcome out;
  out.sysError = error;
  out.syscall = syscall;
  return out;
}

int OpenSocket(int protocol) { return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol); }

// The extended ack's message, when the NLMSG_ERROR carries one (NETLINK_EXT_ACK is on).
std::string ExtackMessage(const uint8_t* base, const nlmsghdr& h, const nlmsgerr& err) {
  // With NETLINK_CAP_ACK the failing request is not echoed: the TLVs follow the error header
  // and the original nlmsghdr (NLM_F_CAPPED and NLM_F_ACK_TLVS tell which).
  if (!(h.nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if (!(h.nlmsg_flags & NLM_F_CAPPED)) offset += err.msg.nlmsg_len - NLMSG_HDRLEN;
  while (offset + NLA_HDRLEN <= h.nlmsg_len) {
    nlattr attr;
    std::memcpy(&attr, base + offset, sizeof attr);
    if (attr.nla_len < NLA_HDRLEN || offset + attr.nla_len > h.nlmsg_len) break;
    if ((attr.nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* text = reinterpret_cast<const char*>(base + offset + NLA_HDRLEN);
      return std::string(text, strnlen(text, attr.nla_len - NLA_HDRLEN));
    }
    offset += NLA_ALIGN(attr.nla_len);
  }
  return {};
}

// A netlink socket of `protocol` in the namespace at `netnsPath` ('' for the caller's); on
// failure returns -1 with `error` and `where` set.
int OpenSocketIn(int protocol, const std::string& netnsPath, int* error, const char** where) {
  if (netnsPath.empty()) {
    int fd = OpenSocket(protocol);
    if (fd < 0) {
      *error = errno;
      *where = "socket";
    }
    return fd;
  }
  Fd ns(open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC));
  if (ns.get() < 0) {
    *error = errno;
    *where = "open";
    return -1;
  }
  int fd = -1;
  // setns() changes only the calling thread; this thread exists for that and then ends.
  std::thread enter([&] {
    if (setns(ns.get(), CLONE_NEWNET) != 0) {
      *error = errno;
      *where = "setns";
      return;
    }
    fd = OpenSocket(protocol);
    if (fd < 0) {
      *error = errno;
      *where = "socket";
    }
  });
  enter.join();
  return fd;
}

bool SendAll(int fd, const uint8_t* data, size_t length, int* error) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  iovec iov{const_cast<uint8_t*>(data), length};
  msghdr msg{};
  msg.msg_name = &kernel;
  msg.msg_namelen = sizeof kernel;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t sent;
  do {
    sent = sendmsg(fd, &msg, 0);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    *error = errno;
    return false;
  }
  if (static_cast<size_t>(sent) != length) {
    *error = EMSGSIZE;
    return false;
  }
  return true;
}

}  // namespace

DumpOutcome DumpNetlink(int protocol, const uint8_t* request, size_t length, const std::string& netnsPath) {
  DumpOutcome out;
  const char* where = "socket";
  int error = 0;
  Fd sock(OpenSocketIn(protocol, netnsPath, &error, &where));
  if (sock.get() < 0) {
    out.sysError = error;
    out.syscall = where;
    return out;
  }
  // A request the kernel does not answer (malformed, or not a dump) must not block forever.
  const timeval timeout{5, 0};
  setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (!SendAll(sock.get(), request, length, &error)) {
    out.sysError = error;
    out.syscall = "sendmsg";
    return out;
  }
  // A dump datagram is at most a few pages (the kernel sizes them); 256 KiB holds any.
  std::vector<uint8_t> buffer(1 << 18);
  for (;;) {
    ssize_t got = recv(sock.get(), buffer.data(), buffer.size(), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      out.sysError = (errno == EAGAIN || errno == EWOULDBLOCK) ? ETIMEDOUT : errno;
      out.syscall = "recv";
      return out;
    }
    if (got == 0) return out;
    size_t offset = 0;
    while (offset + NLMSG_HDRLEN <= static_cast<size_t>(got)) {
      nlmsghdr h;
      std::memcpy(&h, buffer.data() + offset, sizeof h);
      if (h.nlmsg_len < NLMSG_HDRLEN || offset + h.nlmsg_len > static_cast<size_t>(got)) return out;
      if (h.nlmsg_type == NLMSG_DONE) return out;
      if (h.nlmsg_type == NLMSG_ERROR) {
        nlmsgerr err{};
        if (h.nlmsg_len >= NLMSG_HDRLEN + sizeof err) std::memcpy(&err, buffer.data() + offset + NLMSG_HDRLEN, sizeof err);
        if (err.error != 0) {
          out.sysError = -err.error;
          out.syscall = "netlink dump";
        }
        return out;
      }
      out.messages.insert(out.messages.end(), buffer.data() + offset, buffer.data() + offset + NLMSG_ALIGN(h.nlmsg_len));
      offset += NLMSG_ALIGN(h.nlmsg_len);
    }
  }
}

int NamespaceCookie(const std::string& netnsPath, uint64_t* cookie, const char** syscall) {
  int error = 0;
  *syscall = "socket";
  Fd sock(OpenSocketIn(NETLINK_ROUTE, netnsPath, &error, syscall));
  if (sock.get() < 0) return error;
  uint64_t value = 0;
  socklen_t len = sizeof value;
  // SO_NETNS_COOKIE is 71 on every architecture; older libc headers lack the name.
  constexpr int kSoNetnsCookie = 71;
  if (getsockopt(sock.get(), SOL_SOCKET, kSoNetnsCookie, &value, &len) != 0) {
    *syscall = "getsockopt";
    return errno;
  }
  *cookie = value;
  return 0;
}

BatchOutcome SendNetlink(int protocol, const uint8_t* batch, size_t length, const std::string& netnsPath) {
  const char* where = "socket";
  int error = 0;
  Fd sock(OpenSocketIn(protocol, netnsPath, &error, &where));
  if (sock.get() < 0) return Failed(where, error);

  const int on = 1;
  // Errors carry the kernel's reason as text, and do not echo the failing request back (a
  // set-element message can be 64 KiB, and the reply queue would fill with copies).
  setsockopt(sock.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
  setsockopt(sock.get(), SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
  // The whole batch goes in one sendmsg(): the send buffer must hold it (the FORCE variants
  // pass the sysctl limits, which needs CAP_NET_ADMIN, as does nf_tables itself).
  const int sndbuf = static_cast<int>(length > (1u << 30) ? (1u << 30) : length) + 65536;
  if (setsockopt(sock.get(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0) {
    setsockopt(sock.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  }
  const int rcvbuf = 4 << 20;
  if (setsockopt(sock.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
    setsockopt(sock.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }

  if (!SendAll(sock.get(), batch, length, &error)) return Failed("sendmsg", error);

  BatchOutcome out;
  std::vector<uint8_t> buffer(1 << 16);
  for (;;) {
    ssize_t got = recv(sock.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      out.sysError = errno;  // ENOBUFS: replies were lost; the caller cannot tell the outcome
      out.syscall = "recv";
      break;
    }
    size_t offset = 0;
    while (offset + NLMSG_HDRLEN <= static_cast<size_t>(got)) {
      // Headers are copied out rather than cast in place: no alignment or aliasing assumptions.
      nlmsghdr h;
      std::memcpy(&h, buffer.data() + offset, sizeof h);
      if (h.nlmsg_len < NLMSG_HDRLEN || offset + h.nlmsg_len > static_cast<size_t>(got)) break;
      if (h.nlmsg_type == NLMSG_ERROR && h.nlmsg_len >= NLMSG_HDRLEN + sizeof(nlmsgerr)) {
        nlmsgerr err;
        std::memcpy(&err, buffer.data() + offset + NLMSG_HDRLEN, sizeof err);
        NetlinkReply reply;
        reply.seq = err.msg.nlmsg_seq;
        reply.error = -err.error;
        reply.message = ExtackMessage(buffer.data() + offset, h, err);
        out.replies.push_back(std::move(reply));
      }
      offset += NLMSG_ALIGN(h.nlmsg_len);
    }
  }
  return out;
}

}  // namespace interpose
