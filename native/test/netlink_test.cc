// netlink/netlink_socket.* against the kernel, under ASan + UBSan (INTERPOSE_SANITIZE_TESTS):
// the test moves itself into a fresh network namespace first (unshare), so it touches no table
// of the host. Covers a committed batch and its ack, a refused batch and its error, a dump of
// one table and of two thousand (several datagrams), a batch larger than the default socket
// buffer, entering a namespace by path, a NETLINK_ROUTE request, the namespace cookie, a
// missing namespace, and malformed input. Needs root;
// prints "netlink_test ok" on success.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "netlink/netlink_socket.h"

namespace {

// Builds framed messages with an nfgenmsg header, the way src/kernel/netlink-writer.ts does.
class Batch {
 public:
  size_t Begin(uint16_t type, uint16_t flags, uint32_t seq, uint8_t family, uint16_t resId = 0) {
    size_t start = bytes_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    Append(&h, sizeof h);
    nfgenmsg g{};
    g.nfgen_family = family;
    g.version = NFNETLINK_V0;
    g.res_id = htons(resId);
    Append(&g, sizeof g);
    return start;
  }
  void End(size_t start) {
    uint32_t len = static_cast<uint32_t>(bytes_.size() - start);
    std::memcpy(bytes_.data() + start, &len, sizeof len);
  }
  void String(uint16_t type, const std::string& s) {
    nlattr a{};
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + s.size() + 1);
    a.nla_type = type;
    Append(&a, sizeof a);
    Append(s.c_str(), s.size() + 1);
    while (bytes_.size() % 4) bytes_.push_back(0);
  }
  void Framing(uint16_t type, uint32_t seq) { End(Begin(type, NLM_F_REQUEST, seq, AF_UNSPEC, NFNL_SUBSYS_NFTABLES)); }
  void Table(const std::string& name, uint16_t flags, uint32_t seq) {
    size_t m = Begin((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE, NLM_F_REQUEST | flags, seq, NFPROTO_INET);
    String(NFTA_TABLE_NAME, name);
    End(m);
  }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  void Append(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  std::vector<uint8_t> bytes_;
};

std::vector<std::string> TableNames(const std::string& netns) {
  Batch req;
  req.End(req.Begin((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, NLM_F_REQUEST | NLM_F_DUMP, 1, NFPROTO_INET));
  interpose::DumpOutcome dump = interpose::DumpNetlink(NETLINK_NETFILTER, req.data(), req.size(), netns);
  CHECK(dump.sysError == 0);
  std::vector<std::string> names;
  size_t at = 0;
  while (at + NLMSG_HDRLEN <= dump.messages.size()) {
    nlmsghdr h;
    std::memcpy(&h, dump.messages.data() + at, sizeof h);
    if (h.nlmsg_len < NLMSG_HDRLEN || at + h.nlmsg_len > dump.messages.size()) break;
    size_t a = at + NLMSG_HDRLEN + sizeof(nfgenmsg);
    while (a + NLA_HDRLEN <= at + h.nlmsg_len) {
      nlattr attr;
      std::memcpy(&attr, dump.messages.data() + a, sizeof attr);
      if (attr.nla_len < NLA_HDRLEN) break;
      if ((attr.nla_type & NLA_TYPE_MASK) == NFTA_TABLE_NAME) {
        const char* s = reinterpret_cast<const char*>(dump.messages.data() + a + NLA_HDRLEN);
        names.emplace_back(s, strnlen(s, attr.nla_len - NLA_HDRLEN));
      }
      a += NLA_ALIGN(attr.nla_len);
    }
    at += NLMSG_ALIGN(h.nlmsg_len);
  }
  return names;
}

void CommittedBatchIsAcked() {
  Batch b;
  b.Framing(NFNL_MSG_BATCH_BEGIN, 1);
  b.Table("t", NLM_F_CREATE | NLM_F_ACK, 2);
  b.Framing(NFNL_MSG_BATCH_END, 3);
  interpose::BatchOutcome out = interpose::SendNetlink(NETLINK_NETFILTER, b.data(), b.size(), "");
  CHECK(out.sysError == 0);
  CHECK(out.replies.size() == 1);
  CHECK(!out.replies.empty() && out.replies[0].seq == 2 && out.replies[0].error == 0);
  std::vector<std::string> names = TableNames("");
  CHECK(names.size() == 1 && names[0] == "t");
}

void RefusedBatchNamesTheMessage() {
  Batch b;
  b.Framing(NFNL_MSG_BATCH_BEGIN, 10);
  b.Table("u", NLM_F_CREATE, 11);
  b.Table("t", NLM_F_CREATE | NLM_F_EXCL, 12);  // exists: EEXIST, and "u" is not created
  b.Framing(NFNL_MSG_BATCH_END, 13);
  interpose::BatchOutcome out = interpose::SendNetlink(NETLINK_NETFILTER, b.data(), b.size(), "");
  CHECK(out.sysError == 0);
  bool found = false;
  for (const auto& r : out.replies) found = found || (r.seq == 12 && r.error == EEXIST);
  CHECK(found);
  CHECK(TableNames("").size() == 1);
}

void LargeBatchAndLargeDump() {
  // About 80 KiB of messages (over the default send buffer), and a dump of 2,001 tables.
  Batch b;
  b.Framing(NFNL_MSG_BATCH_BEGIN, 100);
  for (int i = 0; i < 2000; i++) b.Table("many-" + std::to_string(i), NLM_F_CREATE | (i == 1999 ? NLM_F_ACK : 0), 101 + i);
  b.Framing(NFNL_MSG_BATCH_END, 3000);
  interpose::BatchOutcome out = interpose::SendNetlink(NETLINK_NETFILTER, b.data(), b.size(), "/proc/self/ns/net");
  CHECK(out.sysError == 0);
  CHECK(out.replies.size() == 1 && out.replies[0].error == 0);
  CHECK(TableNames("/proc/self/ns/net").size() == 2001);
}

// The same socket code on NETLINK_ROUTE: ::6/128 on lo is added (ack), then refused (EEXIST).
void RouteRequestOnTheSameCode() {
  struct {
    nlmsghdr h;
    ifaddrmsg ifa;
    nlattr local_hdr;
    in6_addr local;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = RTM_NEWADDR;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  req.h.nlmsg_seq = 7;
  req.ifa.ifa_family = AF_INET6;
  req.ifa.ifa_prefixlen = 128;
  req.ifa.ifa_index = 1;  // lo
  req.local_hdr.nla_len = NLA_HDRLEN + sizeof(in6_addr);
  req.local_hdr.nla_type = IFA_LOCAL;
  req.local.s6_addr[15] = 6;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&req);
  interpose::BatchOutcome first = interpose::SendNetlink(NETLINK_ROUTE, bytes, sizeof req, "");
  CHECK(first.sysError == 0 && first.replies.size() == 1 && first.replies[0].seq == 7 && first.replies[0].error == 0);
  interpose::BatchOutcome again = interpose::SendNetlink(NETLINK_ROUTE, bytes, sizeof req, "");
  CHECK(again.sysError == 0 && again.replies.size() == 1 && again.replies[0].error == EEXIST);
}

// The namespace cookie: the same for the same namespace by either path, absent for a missing one.
void NamespaceCookies() {
  uint64_t here = 0;
  uint64_t byPath = 0;
  const char* syscall = "";
  CHECK(interpose::NamespaceCookie("", &here, &syscall) == 0 && here != 0);
  CHECK(interpose::NamespaceCookie("/proc/self/ns/net", &byPath, &syscall) == 0 && byPath == here);
  uint64_t none = 0;
  CHECK(interpose::NamespaceCookie("/run/netns/interpose-netlink-test-missing", &none, &syscall) == ENOENT);
  CHECK(std::string(syscall) == "open");
}

void BadNamespaceAndMalformedInput() {
  Batch b;
  b.Framing(NFNL_MSG_BATCH_BEGIN, 1);
  b.Framing(NFNL_MSG_BATCH_END, 2);
  interpose::BatchOutcome out = interpose::SendNetlink(NETLINK_NETFILTER, b.data(), b.size(), "/run/netns/interpose-netlink-test-missing");
  CHECK(out.sysError == ENOENT && out.syscall == "open");
  // A message whose length runs past the end: the kernel ignores or refuses it; no crash here.
  uint8_t garbage[24] = {0xff, 0xff, 0, 0, 0x10, 0, 1, 0};
  interpose::BatchOutcome bad = interpose::SendNetlink(NETLINK_NETFILTER, garbage, sizeof garbage, "");
  CHECK(bad.sysError == 0 || bad.syscall == "sendmsg");
  // A request too short to be one: the kernel never answers; the dump gives up, it does not hang.
  interpose::DumpOutcome dump = interpose::DumpNetlink(NETLINK_NETFILTER, garbage, 8, "");
  CHECK(dump.sysError == ETIMEDOUT && dump.syscall == "recv");
}

}  // namespace

int main() {
  if (unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "netlink_test: unshare(CLONE_NEWNET) failed (%s): needs root\n", std::strerror(errno));
    return 2;
  }
  CommittedBatchIsAcked();
  RefusedBatchNamesTheMessage();
  LargeBatchAndLargeDump();
  RouteRequestOnTheSameCode();
  NamespaceCookies();
  BadNamespaceAndMalformedInput();
  if (check_failures) {
    std::fprintf(stderr, "netlink_test: %d check(s) failed\n", check_failures);
    return 1;
  }
  std::printf("netlink_test ok\n");
  return 0;
}
