// Netlink requests from a given network namespace: a batch or a request sent in one sendmsg()
// with every answer collected, and a GET dump read to its end. Used with NETLINK_NETFILTER (an
// nf_tables transaction: BATCH_BEGIN, the messages, BATCH_END) and NETLINK_ROUTE (an address).
// The caller builds the bytes; this file only knows netlink framing, so it stays small and
// testable without Node.
//
// The kernel handles a request inside sendmsg() (an nf_tables batch is committed or aborted
// there): when it returns, every ack and error is already queued on the socket, so reading
// until the queue is empty collects all of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace interpose {

// One NLMSG_ERROR the kernel sent back: error 0 is an ack, otherwise a positive errno.
struct NetlinkReply {
  uint32_t seq = 0;
  int error = 0;
  std::string message;  // the extended ack's text (NLMSGERR_ATTR_MSG), when the kernel gave one
};

struct BatchOutcome {
  // 0 when the batch reached the kernel and its replies were read; otherwise the errno of the
  // system call named in `syscall` (socket, setns, sendmsg, recv …).
  int sysError = 0;
  std::string syscall;
  std::vector<NetlinkReply> replies;
};

// Sends `batch` (complete nlmsghdr-framed messages) on a socket of `protocol` (NETLINK_ROUTE,
// NETLINK_NETFILTER …) in the network namespace bound at `netnsPath` (a /run/netns/NAME or
// /proc/PID/ns/net file), or in the caller's when it is empty. The calling thread's own
// namespace never changes: a short-lived thread enters the namespace only to create the
// socket, which stays bound to that namespace.
BatchOutcome SendNetlink(int protocol, const uint8_t* batch, size_t length, const std::string& netnsPath);

struct DumpOutcome {
  int sysError = 0;  // as in BatchOutcome; also the kernel's error for the request, if any
  std::string syscall;
  std::vector<uint8_t> messages;  // every reply message before NLMSG_DONE, framed as received
};

// Sends one dump request (an nlmsghdr-framed GET with NLM_F_DUMP) and collects the replies up
// to NLMSG_DONE; ETIMEDOUT ("recv") when no answer comes within 5 seconds. Reading the tables a namespace holds this way takes well under a millisecond,
// where an `nft list` process takes several.
DumpOutcome DumpNetlink(int protocol, const uint8_t* request, size_t length, const std::string& netnsPath);

// The cookie of the network namespace at `netnsPath` ('' for the caller's): a 64-bit number
// the kernel gives each namespace once per boot and never reuses, unlike its inode
// (SO_NETNS_COOKIE, Linux >= 5.14). Returns 0 and sets *cookie, or the errno of the failing
// call (ENOPROTOOPT on older kernels) with *syscall naming it.
int NamespaceCookie(const std::string& netnsPath, uint64_t* cookie, const char** syscall);

}  // namespace interpose
