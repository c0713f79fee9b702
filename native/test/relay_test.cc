// The splice relay's contract, on real TCP sockets over loopback, built with ASan + UBSan
// (see CMakeLists.txt, INTERPOSE_SANITIZE_TESTS): bytes both ways, half-close, the sniffed
// head and an early FIN, reset propagation, idle timeout, abort, first-bytes capture, its own
// listener (accept, connect upstream, refused upstream, release, close with reset), and
// shutting the relay down with connections still open. Prints "relay_test ok" on success.
// Needs root: it runs in a network namespace of its own (see enterFreshNetns).
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "check.h"
#include "relay/splice_relay.h"

using interpose::relay::Accepted;
using interpose::relay::ConnectTarget;
using interpose::relay::EndFlag;
using interpose::relay::RelayDone;
using interpose::relay::RelayRequest;
using interpose::relay::SpliceRelay;

namespace {

int listener = -1;
sockaddr_in listen_addr{};

void setTimeouts(int fd) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A connected loopback pair: [0] the connecting end, [1] the accepted end.
void tcpPair(int out[2]) {
  out[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(out[0], reinterpret_cast<sockaddr*>(&listen_addr), sizeof listen_addr) != 0) {
    std::perror("connect");
    std::exit(2);
  }
  out[1] = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (out[1] < 0) {
    std::perror("accept");
    std::exit(2);
  }
  setTimeouts(out[0]);
  setTimeouts(out[1]);
}

struct Completions {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<RelayDone> done;
  std::vector<Accepted> accepted;

  void pushAccepted(Accepted&& a) {
    std::lock_guard<std::mutex> lock(mutex);
    accepted.push_back(std::move(a));
    cv.notify_all();
  }

  bool nextAccepted(Accepted* out) {
    std::unique_lock<std::mutex> lock(mutex);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return !accepted.empty(); })) return false;
    *out = accepted.front();
    accepted.erase(accepted.begin());
    return true;
  }

  void push(RelayDone&& d) {
    std::lock_guard<std::mutex> lock(mutex);
    done.push_back(std::move(d));
    cv.notify_all();
  }

  bool waitFor(uint32_t id, RelayDone* out) {
    std::unique_lock<std::mutex> lock(mutex);
    const bool ok = cv.wait_for(lock, std::chrono::seconds(5), [&] {
      for (auto& d : done) {
        if (d.id == id) return true;
      }
      return false;
    });
    if (!ok) return false;
    for (auto& d : done) {
      if (d.id == id) *out = d;
    }
    return true;
  }
};

// client ↔ relay ↔ server. The relay's own descriptors are closed here, as the JS side does.
struct Path {
  int client = -1;
  int server = -1;
};

Path relayed(SpliceRelay& relay, uint32_t id, const std::string& head = "", bool down_ended = false,
             uint32_t idle_ms = 0, uint32_t capture = 0) {
  int down[2];
  int up[2];
  tcpPair(down);
  tcpPair(up);
  RelayRequest r;
  r.id = id;
  r.down_fd = down[1];
  r.up_fd = up[0];
  r.head = head;
  r.down_ended = down_ended;
  r.idle_ms = idle_ms;
  r.capture = capture;
  CHECK(relay.add(std::move(r)) == 0);
  close(down[1]);
  close(up[0]);
  return {down[0], up[1]};
}

bool writeAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly n bytes (or until EOF/error); returns what arrived.
std::string readN(int fd, size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    const ssize_t r = recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// 0 at EOF, -errno on error, else the number of bytes that came instead of EOF.
ssize_t readEof(int fd) {
  char c;
  const ssize_t r = recv(fd, &c, 1, 0);
  return r < 0 ? -errno : r;
}

std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>((i * 131 + seed) & 0xff);
  return s;
}

void bytesAndHalfClose(SpliceRelay& relay, Completions& done) {
  Path p = relayed(relay, 1);
  const std::string up_data = pattern(3 << 20, 7);
  const std::string down_data = pattern(2 << 20, 11);
  // Megabytes do not fit in the socket buffers: write from a thread while reading.
  std::string got_up;
  {
    std::thread writer([&] { CHECK(writeAll(p.client, up_data)); });
    got_up = readN(p.server, up_data.size());
    writer.join();
  }
  CHECK(got_up == up_data);
  // The client half-closes; the server still answers.
  shutdown(p.client, SHUT_WR);
  CHECK(readEof(p.server) == 0);
  {
    std::thread writer([&] { CHECK(writeAll(p.server, down_data)); });
    CHECK(readN(p.client, down_data.size()) == down_data);
    writer.join();
  }
  shutdown(p.server, SHUT_WR);
  CHECK(readEof(p.client) == 0);
  RelayDone d;
  CHECK(done.waitFor(1, &d));
  CHECK(d.flag == EndFlag::kNone);
  CHECK(d.down_to_up == up_data.size());
  CHECK(d.up_to_down == down_data.size());
  close(p.client);
  close(p.server);
}

void headAndEarlyFin(SpliceRelay& relay, Completions& done) {
  Path p = relayed(relay, 2, "sniffed-head", true);
  CHECK(readN(p.server, 12) == "sniffed-head");
  CHECK(readEof(p.server) == 0);
  CHECK(writeAll(p.server, "answer"));
  CHECK(readN(p.client, 6) == "answer");
  shutdown(p.server, SHUT_WR);
  CHECK(readEof(p.client) == 0);
  RelayDone d;
  CHECK(done.waitFor(2, &d));
  CHECK(d.flag == EndFlag::kNone);
  CHECK(d.down_to_up == 0);  // the head is the caller's to count
  CHECK(d.up_to_down == 6);
  close(p.client);
  close(p.server);
}

void resetPropagates(SpliceRelay& relay, Completions& done) {
  Path p = relayed(relay, 3);
  CHECK(writeAll(p.client, "x"));
  CHECK(readN(p.server, 1) == "x");
  const linger lg{1, 0};
  setsockopt(p.client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(p.client);
  CHECK(readEof(p.server) == -ECONNRESET);
  RelayDone d;
  CHECK(done.waitFor(3, &d));
  CHECK(d.flag == EndFlag::kDownstreamReset);
  close(p.server);
}

void idleTimeout(SpliceRelay& relay, Completions& done) {
  Path p = relayed(relay, 4, "", false, 50);
  RelayDone d;
  CHECK(done.waitFor(4, &d));
  CHECK(d.flag == EndFlag::kIdleTimeout);
  CHECK(readEof(p.client) == 0);
  CHECK(readEof(p.server) == 0);
  close(p.client);
  close(p.server);
}

void abortAndCapture(SpliceRelay& relay, Completions& done) {
  Path p = relayed(relay, 5, "", false, 0, 8);
  // Captured because it starts like a TLS handshake record (0x16).
  const std::string hello = "\x16" "123456789abcdef";
  CHECK(writeAll(p.client, hello));
  CHECK(readN(p.server, 16) == hello);
  relay.abort(5);
  relay.abort(999);  // unknown: ignored
  RelayDone d;
  CHECK(done.waitFor(5, &d));
  CHECK(d.flag == EndFlag::kAborted);
  CHECK(d.head == hello.substr(0, 8));
  CHECK(d.down_to_up == 16);
  close(p.client);
  close(p.server);
}

// The relay's own listener: accept, report, then connect / release / close as told.
void acceptAndDecide(SpliceRelay& relay, Completions& done) {
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint16_t port = 0;
  CHECK(relay.listen(7, reinterpret_cast<sockaddr*>(&any), sizeof any, 16, &port) == 0);
  CHECK(port != 0);
  sockaddr_in front = any;
  front.sin_port = htons(port);
  auto dial = [&] {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setTimeouts(fd);
    CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&front), sizeof front) == 0);
    return fd;
  };
  ConnectTarget to_server;
  std::memcpy(&to_server.addr, &listen_addr, sizeof listen_addr);
  to_server.addr_len = sizeof listen_addr;
  to_server.timeout_ms = 2000;

  // A passthrough policy only takes redirected connections; these are not (no NAT here).
  interpose::relay::PassthroughPolicy policy;
  policy.ports.assign(65536, true);  // every port: only the redirect check holds them back
  relay.setPassthrough(7, policy);

  // 1. connect upstream and relay.
  const int client = dial();
  Accepted a;
  CHECK(done.nextAccepted(&a));
  CHECK((a.id & 0x80000000u) != 0);
  CHECK(a.listener_id == 7);
  CHECK(a.dst_error != 0);  // not NATed: no original destination
  CHECK(!a.passthrough);
  CHECK(a.peer_address == "127.0.0.1");
  CHECK(a.local_port == port);
  CHECK(relay.connect(a.id, to_server, 0, 64) == 0);
  CHECK(relay.connect(a.id, to_server, 0, 0) == ENOENT);  // decided already
  const int server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  setTimeouts(server);
  CHECK(writeAll(client, "ping"));
  CHECK(readN(server, 4) == "ping");
  CHECK(writeAll(server, "pong!"));
  CHECK(readN(client, 5) == "pong!");
  shutdown(client, SHUT_WR);
  CHECK(readEof(server) == 0);
  shutdown(server, SHUT_WR);
  CHECK(readEof(client) == 0);
  RelayDone d;
  CHECK(done.waitFor(a.id, &d));
  CHECK(d.flag == EndFlag::kNone);
  CHECK(d.down_to_up == 4 && d.up_to_down == 5);
  CHECK(d.upstream_local == "127.0.0.1" && d.upstream_local_port != 0);
  CHECK(d.head.empty());  // "ping" is not TLS: not captured
  CHECK(d.duration_ms > 0);
  CHECK(a.accepted_at_ms > 1.5e12);  // wall clock, ms since the epoch
  close(client);
  close(server);

  // 2. a refused upstream: UF, and the client is reset.
  const int client2 = dial();
  CHECK(done.nextAccepted(&a));
  ConnectTarget refused = to_server;
  reinterpret_cast<sockaddr_in&>(refused.addr).sin_port = htons(1);  // nothing listens on port 1
  CHECK(relay.connect(a.id, refused, 0, 0) == 0);
  CHECK(done.waitFor(a.id, &d));
  CHECK(d.flag == EndFlag::kConnectFailed);
  CHECK(d.error == ECONNREFUSED);
  CHECK(readEof(client2) == -ECONNRESET);
  close(client2);

  // 3. release: the caller owns the socket.
  const int client3 = dial();
  CHECK(done.nextAccepted(&a));
  const int fd = relay.release(a.id);
  CHECK(fd >= 0);
  CHECK(relay.release(a.id) == -1);
  CHECK(writeAll(client3, "mine"));
  char buf[4];
  CHECK(recv(fd, buf, 4, MSG_WAITALL) == 4);
  close(fd);
  close(client3);

  // 4. closeAccepted with a reset; then stop listening.
  const int client4 = dial();
  CHECK(done.nextAccepted(&a));
  CHECK(relay.closeAccepted(a.id, true));
  CHECK(!relay.closeAccepted(a.id, true));
  CHECK(readEof(client4) == -ECONNRESET);
  close(client4);
  relay.unlisten(7);
}

// Moves the process into a new network namespace with only lo, up. The checks must not depend on
// the host's namespace: where podman or Docker has run, conntrack tracks every connection there,
// and SO_ORIGINAL_DST then answers for connections that were never NATed. A fresh namespace has
// no netfilter rules, so conntrack stays off in it. Runs before any thread exists: threads
// created later inherit the namespace.
bool enterFreshNetns() {
  if (unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "relay_test: unshare(CLONE_NEWNET) failed (%s): needs root\n", std::strerror(errno));
    return false;
  }
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  const bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 &&
                  (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
  if (!up) std::fprintf(stderr, "relay_test: bringing lo up failed (%s)\n", std::strerror(errno));
  if (fd >= 0) close(fd);
  return up;
}

}  // namespace

int main() {
  if (!enterFreshNetns()) return 2;
  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  listen_addr.sin_family = AF_INET;
  listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof listen_addr;
  if (bind(listener, reinterpret_cast<sockaddr*>(&listen_addr), sizeof listen_addr) != 0 ||
      listen(listener, 64) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&listen_addr), &len) != 0) {
    std::perror("listen");
    return 2;
  }
  {
    Completions done;
    SpliceRelay relay([&done](interpose::relay::RelayEvents&& events) {
      for (auto& a : events.accepted) done.pushAccepted(std::move(a));
      for (auto& d : events.done) done.push(std::move(d));
    });
    bytesAndHalfClose(relay, done);
    headAndEarlyFin(relay, done);
    resetPropagates(relay, done);
    idleTimeout(relay, done);
    abortAndCapture(relay, done);
    acceptAndDecide(relay, done);
    // Left open on purpose: the destructor must close it without leaking.
    Path open = relayed(relay, 6);
    CHECK(writeAll(open.client, "still open"));
    CHECK(readN(open.server, 10) == "still open");
    close(open.client);
    close(open.server);
  }
  close(listener);
  if (check_failures != 0) {
    std::fprintf(stderr, "relay_test: %d failures\n", check_failures);
    return 1;
  }
  std::printf("relay_test ok\n");
  return 0;
}
