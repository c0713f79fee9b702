#include "relay/splice_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <cerrno>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "event_loop_util.h"
#include "original_dst.h"

namespace interpose::relay {

const char* EndFlagText(EndFlag flag) {
  switch (flag) {
    case EndFlag::kNone: return "-";
    case EndFlag::kDownstreamReset: return "DC";
    case EndFlag::kUpstreamReset: return "UC";
    case EndFlag::kIdleTimeout: return "SI";
    case EndFlag::kAborted: return "aborted";
    case EndFlag::kConnectFailed: return "UF";
  }
  return "?";
}

namespace {

// One splice call moves at most a pipe's default capacity (16 pages); a direction reads again
// only once its pipe is empty, which is what bounds the bytes in flight.
constexpr size_t kSpliceChunk = 1 << 16;
// Empty pipes kept for reuse: a short connection then costs no pipe2()/close() pairs.
constexpr size_t kPipePoolMax = 64;
// How often idle timeouts are checked; an idle connection ends within this much of its timeout.
constexpr int kSweepMs = 100;
// Bookkeeping events wait at most this long, or until this many are queued, to be delivered
// together (see RelayEvents).
constexpr uint64_t kBatchMs = 5;
constexpr size_t kBatchMax = 256;

bool isReset(int err) { return err == ECONNRESET || err == EPIPE; }

// Accepted connections get ids with the top bit set; ids the owner picks for add() must not.
constexpr uint32_t kAcceptedIdBit = 0x80000000u;

// What an epoll registration points at (data.ptr); nullptr is the wake-up eventfd.
enum class TagKind { kConnSide, kListener };
struct Tag {
  TagKind kind;
};

struct Listener : Tag {
  Listener() : Tag{TagKind::kListener} {}
  uint32_t id = 0;
  int fd = -1;
  std::shared_ptr<const PassthroughPolicy> policy;  // guarded by Impl::mutex
};

// The original destination as a connect() target.
void toTarget(const OriginalDst& dst, ConnectTarget* t) {
  if (dst.family == 4) {
    auto& in = reinterpret_cast<sockaddr_in&>(t->addr);
    in.sin_family = AF_INET;
    in.sin_port = htons(dst.port);
    std::memcpy(&in.sin_addr, dst.addr, 4);
    t->addr_len = sizeof(sockaddr_in);
  } else {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(t->addr);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(dst.port);
    std::memcpy(&in6.sin6_addr, dst.addr, 16);
    t->addr_len = sizeof(sockaddr_in6);
  }
}

struct Pipe {
  int read_end = -1;
  int write_end = -1;
};

struct Conn;

// A connection's registration: which of its sockets woke.
struct Side : Tag {
  Side() : Tag{TagKind::kConnSide} {}
  Conn* conn = nullptr;
  bool is_down = false;
};

struct Direction {
  int from = -1;
  int to = -1;
  Pipe pipe;
  size_t in_pipe = 0;        // bytes spliced into the pipe and not yet out of it
  std::string pending;       // user-space bytes still to write: the sniffed head, or a partial send
  size_t pending_off = 0;
  bool spliced = false;      // reads go through the pipe (after a read filled the scratch buffer)
  bool eof = false;          // `from` sent its FIN
  bool shut = false;         // that FIN was forwarded to `to`
  uint64_t bytes = 0;        // bytes read from `from` (recv or splice)
};

struct Conn {
  uint32_t id = 0;
  bool connecting = false;   // waiting for the upstream connect (connect())
  uint64_t connect_deadline = 0;
  std::string upstream_local;
  uint16_t upstream_local_port = 0;
  int down = -1;
  int up = -1;
  Side down_side;
  Side up_side;
  Direction d2u;  // downstream → upstream
  Direction u2d;  // upstream → downstream
  uint32_t idle_ms = 0;
  uint64_t last_active = 0;
  uint64_t started_us = 0;   // accept (accepted connections) or admission (add())
  bool by_policy = false;    // taken by a passthrough policy: counted in Impl::policy_live
  bool sole_owner = false;   // accepted and connected here: no other descriptor for these sockets
  uint32_t capture = 0;
  std::string head;
  bool ended = false;
};

// Outcome of pumping one direction: 0, or the errno and which socket it came from.
struct PumpError {
  int err = 0;
  bool on_from = false;
};

}  // namespace

struct SpliceRelay::Impl {
  EventsCallback on_events;
  RelayEvents outbox;                     // events not delivered yet (relay thread only)
  bool outbox_urgent = false;
  uint64_t outbox_since = 0;
  int epfd = -1;
  int wakefd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};

  std::mutex mutex;                       // guards the queues, `accepted` and `listeners`
  std::vector<RelayRequest> incoming;
  std::vector<std::pair<uint32_t, bool>> aborts;  // id, reset
  std::vector<uint32_t> unlistens;
  struct Waiting {
    int fd;
    uint64_t accepted_us;
  };
  std::unordered_map<uint32_t, Waiting> accepted;          // awaiting the owner's decision
  std::vector<std::unique_ptr<Listener>> listeners;        // freed with the relay
  uint32_t next_accepted = 0;
  std::atomic<uint32_t> owner_connections{0};  // setOwnerConnections()
  uint32_t policy_live = 0;                    // open connections taken by policies (relay thread)

  // Relay-thread state only.
  std::unordered_map<uint32_t, Conn*> conns;
  std::vector<Conn*> graveyard;           // freed after the epoll batch that ended them
  std::vector<Pipe> pipe_pool;
  std::vector<char> scratch = std::vector<char>(16384);  // recv/send buffer of pump()

  explicit Impl(EventsCallback cb) : on_events(std::move(cb)) {}

  void queueEvent(bool urgent) {
    if (outbox.accepted.size() + outbox.done.size() == 1) outbox_since = nowMs();
    outbox_urgent = outbox_urgent || urgent;
  }

  void emitAccepted(Accepted&& a, bool urgent) {
    if (!on_events) return;
    outbox.accepted.push_back(std::move(a));
    queueEvent(urgent);
  }

  void emitDone(RelayDone&& d) {
    if (!on_events) return;
    outbox.done.push_back(std::move(d));
    queueEvent(false);
  }

  // Delivers the outbox when something in it is urgent, old enough, or plentiful.
  void flush(uint64_t now) {
    const size_t n = outbox.accepted.size() + outbox.done.size();
    if (n == 0 || !on_events) return;
    if (outbox_urgent || now - outbox_since >= kBatchMs || n >= kBatchMax) {
      RelayEvents out;
      std::swap(out, outbox);
      outbox_urgent = false;
      on_events(std::move(out));
    }
  }

  // epoll_wait's timeout: the next sweep, or sooner when the outbox must go out.
  int waitMs(uint64_t now) const {
    if (outbox.accepted.empty() && outbox.done.empty()) return kSweepMs;
    const uint64_t due = outbox_since + kBatchMs;
    return due <= now ? 0 : static_cast<int>(std::min<uint64_t>(due - now, kSweepMs));
  }

  void wake() {
    const uint64_t one = 1;
    // A full eventfd counter (never in practice) still leaves it readable, which is all we need.
    ssize_t r;
    do {
      r = write(wakefd, &one, sizeof one);
    } while (r < 0 && errno == EINTR);
  }

  bool takePipe(Pipe* p) {
    if (!pipe_pool.empty()) {
      *p = pipe_pool.back();
      pipe_pool.pop_back();
      return true;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    p->read_end = fds[0];
    p->write_end = fds[1];
    return true;
  }

  void releasePipe(Pipe* p, bool empty) {
    if (p->read_end < 0) return;
    if (empty && pipe_pool.size() < kPipePoolMax) {
      pipe_pool.push_back(*p);
    } else {
      close(p->read_end);
      close(p->write_end);
    }
    *p = Pipe{};
  }

  // Moves bytes `from` → `to` until a socket would block (see the header for the rules).
  // A direction starts with recv/send through the scratch buffer, cheaper than splice for the
  // few hundred bytes most connections carry; a read that fills the buffer switches it to
  // splice for the rest of its life (bulk transfers). Either way it reads only when nothing is
  // left to write: at most one buffer or one pipe in flight.
  //
  // `settled`: the event that woke us showed no FIN, hangup or error pending, so a short read
  // means the socket is drained for now; skipping the EAGAIN probe is safe because new data or
  // a FIN arriving later raises a new edge.
  PumpError pump(Conn* c, Direction& d, bool settled, bool* progressed) {
    for (;;) {
      while (d.pending_off < d.pending.size()) {
        const ssize_t n = send(d.to, d.pending.data() + d.pending_off,
                               d.pending.size() - d.pending_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          d.pending_off += static_cast<size_t>(n);
          *progressed = true;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {};
        return {n < 0 ? errno : EPIPE, false};
      }
      if (!d.pending.empty()) {
        d.pending.clear();
        d.pending_off = 0;
      }
      while (d.in_pipe > 0) {
        const ssize_t n = splice(d.pipe.read_end, nullptr, d.to, nullptr, d.in_pipe,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          d.in_pipe -= static_cast<size_t>(n);
          *progressed = true;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {};
        return {n < 0 ? errno : EPIPE, false};
      }
      if (d.eof) {
        if (!d.shut) {
          // When the other direction has finished already, the pair is about to be closed and
          // close() sends this FIN anyway: one shutdown() fewer per connection. ENOTCONN from
          // shutdown means the peer is already gone; the other direction will see why.
          Direction& other = &d == &c->d2u ? c->u2d : c->d2u;
          if (!(other.eof && other.shut)) shutdown(d.to, SHUT_WR);
          d.shut = true;
          *progressed = true;
        }
        return {};
      }
      ssize_t n;
      if (d.spliced) {
        // The pipe is empty here, so EAGAIN can only mean the socket has nothing to read.
        n = splice(d.from, nullptr, d.pipe.write_end, nullptr, kSpliceChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) d.in_pipe = static_cast<size_t>(n);
      } else {
        n = recv(d.from, scratch.data(), scratch.size(), MSG_DONTWAIT);
        if (n > 0) {
          const size_t got = static_cast<size_t>(n);
          if (&d == &c->d2u && c->capture != 0) keepHead(c, got);
          if (got == scratch.size() && takePipe(&d.pipe)) d.spliced = true;
          ssize_t w = send(d.to, scratch.data(), got, MSG_NOSIGNAL | MSG_DONTWAIT);
          if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return {errno, false};
            w = 0;
          }
          if (static_cast<size_t>(w) < got) d.pending.assign(scratch.data() + w, got - static_cast<size_t>(w));
          if (settled && got < scratch.size() && d.pending.empty()) {
            d.bytes += got;
            *progressed = true;
            return {};
          }
        }
      }
      if (n > 0) {
        d.bytes += static_cast<uint64_t>(n);
        *progressed = true;
        continue;
      }
      if (n == 0) {
        d.eof = true;
        *progressed = true;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
      return {errno, true};
    }
  }

  // The owner wants the client's first bytes to read a TLS SNI from: keep them only when they
  // start a TLS handshake record (0x16), so plain-text connections cost no copy.
  void keepHead(Conn* c, size_t got) {
    if (scratch[0] == 0x16) c->head.assign(scratch.data(), std::min<size_t>(got, c->capture));
    c->capture = 0;
  }

  static bool hasBacklog(const Direction& d) {
    return d.pending_off < d.pending.size() || d.in_pipe > 0 || (d.eof && !d.shut);
  }

  void end(Conn* c, EndFlag flag, int err, int reset_fd) {
    if (c->ended) return;
    c->ended = true;
    // Descriptors dup()ed from the owner's sockets may outlive our close (the owner's copies),
    // and with them their epoll registrations: remove those explicitly. Ours alone go with close().
    if (!c->sole_owner) {
      epoll_ctl(epfd, EPOLL_CTL_DEL, c->down, nullptr);
      if (c->up >= 0) epoll_ctl(epfd, EPOLL_CTL_DEL, c->up, nullptr);
    }
    if (reset_fd >= 0) {
      // SO_LINGER with a zero timeout makes close() send an RST instead of a FIN.
      const linger lg{1, 0};
      setsockopt(reset_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->down);
    if (c->up >= 0) close(c->up);
    releasePipe(&c->d2u.pipe, c->d2u.in_pipe == 0);
    releasePipe(&c->u2d.pipe, c->u2d.in_pipe == 0);
    conns.erase(c->id);
    graveyard.push_back(c);
    if (c->by_policy) policy_live--;
    if (on_events) {
      RelayDone done;
      done.id = c->id;
      done.down_to_up = c->d2u.bytes;
      done.up_to_down = c->u2d.bytes;
      done.flag = flag;
      done.error = err;
      done.head = std::move(c->head);
      done.upstream_local = std::move(c->upstream_local);
      done.upstream_local_port = c->upstream_local_port;
      done.duration_ms = static_cast<double>(nowUs() - c->started_us) / 1000.0;
      emitDone(std::move(done));
    }
  }

  // Handles an epoll event on one of c's sockets (kAllEvents: look at everything). Only the
  // directions the event concerns are pumped: one that reads from a readable socket, one that
  // had bytes waiting for a socket that became writable.
  void service(Conn* c, uint32_t events, bool is_down) {
    if (c->ended) return;
    if (c->connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(c->up, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0) {
        connected(c);
      } else if (err != EINPROGRESS && err != EALREADY) {
        connectFailed(c, err);
      }
      return;
    }
    constexpr uint32_t kReadable = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
    Direction& reads_this = is_down ? c->d2u : c->u2d;
    Direction& writes_this = is_down ? c->u2d : c->d2u;
    const bool pump_reader = (events & kReadable) != 0;
    const bool settled = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0;
    const bool pump_writer = (events & EPOLLOUT) != 0 && hasBacklog(writes_this);
    bool progressed = false;
    PumpError e;
    bool failed_down = false;
    // d2u first, then u2d, each only if this event concerns it.
    const bool do_d2u = &reads_this == &c->d2u ? pump_reader : pump_writer;
    const bool do_u2d = &reads_this == &c->u2d ? pump_reader : pump_writer;
    if (do_d2u) {
      e = pump(c, c->d2u, settled, &progressed);
      failed_down = e.on_from;  // d2u reads the downstream and writes the upstream
    }
    if (e.err == 0 && do_u2d) {
      e = pump(c, c->u2d, settled, &progressed);
      failed_down = !e.on_from;
    }
    if (progressed) c->last_active = nowMs();
    if (e.err != 0) {
      const int other = failed_down ? c->up : c->down;
      end(c, failed_down ? EndFlag::kDownstreamReset : EndFlag::kUpstreamReset, e.err,
          isReset(e.err) ? other : -1);
      return;
    }
    if (c->d2u.shut && c->u2d.shut) end(c, EndFlag::kNone, 0, -1);
  }

  void admit(RelayRequest& r) {
    auto* c = new Conn();
    c->id = r.id;
    c->down = r.down_fd;
    c->up = r.up_fd;
    c->down_side.conn = c;
    c->down_side.is_down = true;
    c->up_side.conn = c;
    c->up_side.is_down = false;
    c->d2u.from = c->down;
    c->d2u.to = c->up;
    c->d2u.pending = std::move(r.head);
    c->d2u.eof = r.down_ended;
    c->u2d.from = c->up;
    c->u2d.to = c->down;
    c->idle_ms = r.idle_ms;
    c->capture = r.capture;
    c->last_active = nowMs();
    c->started_us = r.accepted_us != 0 ? r.accepted_us : nowUs();
    setNoDelay(c->down);
    if (c->up >= 0) setNoDelay(c->up);
    if (auto old = conns.find(c->id); old != conns.end()) end(old->second, EndFlag::kAborted, 0, -1);
    conns[c->id] = c;
    if (r.connect) {
      c->sole_owner = true;
      startConnect(c, r.target);
      return;
    }
    startRelaying(c, false);
  }

  // Both sockets connected: take pipes, watch both, move what is already there.
  void startRelaying(Conn* c, bool up_registered) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = static_cast<Tag*>(&c->down_side);
    int rc = epoll_ctl(epfd, EPOLL_CTL_ADD, c->down, &ev);
    ev.data.ptr = static_cast<Tag*>(&c->up_side);
    if (rc == 0 && !up_registered) rc = epoll_ctl(epfd, EPOLL_CTL_ADD, c->up, &ev);
    if (rc != 0) {
      end(c, EndFlag::kAborted, errno, -1);
      return;
    }
    // Bytes may be waiting already (and the sniffed head must go out): look at everything.
    service(c, EPOLLIN | EPOLLOUT, true);
    service(c, EPOLLIN | EPOLLOUT, false);
  }

  void startConnect(Conn* c, const ConnectTarget& t) {
    c->up = socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->up < 0) {
      connectFailed(c, errno);
      return;
    }
    setNoDelay(c->up);
    c->d2u.to = c->up;
    c->u2d.from = c->up;
    if (t.bind_len != 0 && bind(c->up, reinterpret_cast<const sockaddr*>(&t.bind), t.bind_len) != 0) {
      connectFailed(c, errno);
      return;
    }
    if (::connect(c->up, reinterpret_cast<const sockaddr*>(&t.addr), t.addr_len) == 0) {
      connected(c);
      return;
    }
    if (errno != EINPROGRESS) {
      connectFailed(c, errno);
      return;
    }
    c->connecting = true;
    c->connect_deadline = t.timeout_ms == 0 ? 0 : nowMs() + t.timeout_ms;
    // Registered for good now: EPOLLOUT's edge says the connect finished; the rest is for later.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = static_cast<Tag*>(&c->up_side);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->up, &ev) != 0) connectFailed(c, errno);
  }

  void connected(Conn* c) {
    const bool was_registered = c->connecting;
    c->connecting = false;
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (getsockname(c->up, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      formatSockaddr(local, &c->upstream_local, &c->upstream_local_port);
    }
    c->last_active = nowMs();
    startRelaying(c, was_registered);
  }

  // A refused upstream resets the client too, so it sees what a direct connect would.
  void connectFailed(Conn* c, int err) {
    end(c, EndFlag::kConnectFailed, err, err == ECONNREFUSED ? c->down : -1);
  }

  void acceptAll(Listener* l) {
    std::shared_ptr<const PassthroughPolicy> policy;
    {
      std::lock_guard<std::mutex> lock(mutex);
      policy = l->policy;
    }
    for (;;) {
      const int fd = accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // EAGAIN: done. EMFILE/ENFILE/ENOBUFS: the backlog keeps them; the sweep retries.
        return;
      }
      Accepted a;
      a.listener_id = l->id;
      a.accepted_at_ms = wallClockMs();
      const uint64_t accepted_us = nowUs();
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      OriginalDst dst;
      const char* syscall = "";
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        formatSockaddr(ss, &a.local_address, &a.local_port);
        a.dst_error = readOriginalDstAt(fd, ss, &dst, &syscall);
      } else {
        a.dst_error = errno;
      }
      if (a.dst_error == 0) {
        char text[64];
        formatAddress(dst, text, sizeof text);
        a.dst_address = text;
        a.dst_port = dst.port;
      }
      len = sizeof ss;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) formatSockaddr(ss, &a.peer_address, &a.peer_port);
      // Not redirected (no original destination, or the listener's own): connecting would loop.
      const bool redirected = a.dst_error == 0 && !(a.dst_address == a.local_address && a.dst_port == a.local_port);
      a.passthrough = policy && redirected && policy->covers(a.dst_port);
      {
        std::lock_guard<std::mutex> lock(mutex);
        do {
          next_accepted = (next_accepted + 1) & ~kAcceptedIdBit;
          a.id = next_accepted | kAcceptedIdBit;
        } while (accepted.count(a.id) != 0 || conns.count(a.id) != 0);
        if (!a.passthrough) accepted.emplace(a.id, Waiting{fd, accepted_us});
      }
      if (!a.passthrough) {
        emitAccepted(std::move(a), true);
        continue;
      }
      const uint32_t limit = policy->max_connections;
      if (limit != 0 && policy_live + owner_connections.load(std::memory_order_relaxed) >= limit) {
        const linger lg{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
        a.passthrough = false;
        a.refused = true;
        emitAccepted(std::move(a), false);
        continue;
      }
      // Report first (the owner starts tracking it), then connect: its done event follows.
      RelayRequest r;
      r.id = a.id;
      r.down_fd = fd;
      r.connect = true;
      toTarget(dst, &r.target);
      r.target.timeout_ms = policy->connect_timeout_ms;
      r.idle_ms = policy->idle_ms;
      r.capture = policy->capture;
      r.accepted_us = accepted_us;
      emitAccepted(std::move(a), false);
      policy_live++;
      admit(r);
      if (auto it = conns.find(r.id); it != conns.end()) {
        it->second->by_policy = true;
      } else {
        policy_live--;  // ended within admit (connect failed at once)
      }
    }
  }

  void drainQueues() {
    uint64_t count;
    while (read(wakefd, &count, sizeof count) < 0 && errno == EINTR) {
    }
    std::vector<RelayRequest> reqs;
    std::vector<std::pair<uint32_t, bool>> ids;
    std::vector<uint32_t> stop_listening;
    {
      std::lock_guard<std::mutex> lock(mutex);
      reqs.swap(incoming);
      ids.swap(aborts);
      stop_listening.swap(unlistens);
      for (uint32_t id : stop_listening) {
        for (auto& l : listeners) {
          if (l->id == id && l->fd >= 0) {
            epoll_ctl(epfd, EPOLL_CTL_DEL, l->fd, nullptr);
            close(l->fd);
            l->fd = -1;
          }
        }
      }
    }
    for (auto& r : reqs) admit(r);
    for (auto [id, reset] : ids) {
      auto it = conns.find(id);
      if (it != conns.end()) end(it->second, EndFlag::kAborted, 0, reset ? it->second->down : -1);
    }
  }

  void sweep(uint64_t now) {
    std::vector<Conn*> idle;
    std::vector<Conn*> late;
    for (auto& [id, c] : conns) {
      if (c->connecting) {
        if (c->connect_deadline != 0 && now >= c->connect_deadline) late.push_back(c);
      } else if (c->idle_ms != 0 && now - c->last_active >= c->idle_ms) {
        idle.push_back(c);
      }
    }
    for (Conn* c : idle) end(c, EndFlag::kIdleTimeout, 0, -1);
    for (Conn* c : late) connectFailed(c, ETIMEDOUT);
    // Accepts that stopped on EMFILE and the like are retried here.
    std::vector<Listener*> open;
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (auto& l : listeners) {
        if (l->fd >= 0) open.push_back(l.get());
      }
    }
    for (Listener* l : open) acceptAll(l);
  }

  void run() {
    std::vector<epoll_event> events(256);
    uint64_t last_sweep = nowMs();
    while (!stopping.load(std::memory_order_acquire)) {
      const int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), waitMs(nowMs()));
      for (int i = 0; i < n; i++) {
        auto* tag = static_cast<Tag*>(events[static_cast<size_t>(i)].data.ptr);
        if (tag == nullptr) {
          drainQueues();
        } else if (tag->kind == TagKind::kListener) {
          auto* l = static_cast<Listener*>(tag);
          if (l->fd >= 0) acceptAll(l);
        } else {
          auto* side = static_cast<Side*>(tag);
          service(side->conn, events[static_cast<size_t>(i)].events, side->is_down);
        }
      }
      for (Conn* c : graveyard) delete c;
      graveyard.clear();
      const uint64_t now = nowMs();
      if (now - last_sweep >= static_cast<uint64_t>(kSweepMs)) {
        sweep(now);
        last_sweep = now;
        for (Conn* c : graveyard) delete c;
        graveyard.clear();
      }
      flush(nowMs());
    }
    // Shutdown: close what is left without telling anyone (the owner is going away).
    on_events = nullptr;
    std::vector<Conn*> left;
    for (auto& [id, c] : conns) left.push_back(c);
    for (Conn* c : left) end(c, EndFlag::kAborted, 0, -1);
    for (Conn* c : graveyard) delete c;
    graveyard.clear();
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (auto& r : incoming) {
        close(r.down_fd);
        if (r.up_fd >= 0) close(r.up_fd);
      }
      incoming.clear();
      for (auto& [id, waiting] : accepted) close(waiting.fd);
      accepted.clear();
      for (auto& l : listeners) {
        if (l->fd >= 0) close(l->fd);
        l->fd = -1;
      }
    }
    for (Pipe& p : pipe_pool) releasePipe(&p, false);
  }
};

SpliceRelay::SpliceRelay(EventsCallback on_events) : impl_(std::make_unique<Impl>(std::move(on_events))) {
  openEpollWithWake(&impl_->epfd, &impl_->wakefd);
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
  // Named so per-thread CPU (top -H, /proc/PID/task) tells the relay from Node's threads.
  pthread_setname_np(impl_->thread.native_handle(), "interpose-relay");
}

SpliceRelay::~SpliceRelay() {
  impl_->stopping.store(true, std::memory_order_release);
  impl_->wake();
  if (impl_->thread.joinable()) impl_->thread.join();
  close(impl_->wakefd);
  close(impl_->epfd);
}

int SpliceRelay::add(RelayRequest&& request) {
  const int down = fcntl(request.down_fd, F_DUPFD_CLOEXEC, 0);
  if (down < 0) return errno;
  const int up = fcntl(request.up_fd, F_DUPFD_CLOEXEC, 0);
  if (up < 0) {
    const int err = errno;
    close(down);
    return err;
  }
  // The relay's reads and writes must never block its thread.
  for (int fd : {down, up}) {
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      const int err = errno;
      close(down);
      close(up);
      return err;
    }
  }
  request.down_fd = down;
  request.up_fd = up;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->incoming.push_back(std::move(request));
  }
  impl_->wake();
  return 0;
}

void SpliceRelay::abort(uint32_t id, bool reset) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->aborts.emplace_back(id, reset);
  }
  impl_->wake();
}

}  // namespace interpose::relay

namespace interpose::relay {

int SpliceRelay::listen(uint32_t listener_id, const sockaddr* addr, socklen_t len, int backlog, uint16_t* port) {
  const int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const int on = 1;
  const int off = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (addr->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (bind(fd, addr, len) != 0 || ::listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    const int err = errno;
    close(fd);
    return err;
  }
  std::string ignored;
  formatSockaddr(bound, &ignored, port);
  auto l = std::make_unique<Listener>();
  l->id = listener_id;
  l->fd = fd;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = static_cast<Tag*>(l.get());
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (epoll_ctl(impl_->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int err = errno;
    close(fd);
    return err;
  }
  impl_->listeners.push_back(std::move(l));
  return 0;
}

void SpliceRelay::unlisten(uint32_t listener_id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->unlistens.push_back(listener_id);
  }
  impl_->wake();
}

void SpliceRelay::setPassthrough(uint32_t listener_id, const PassthroughPolicy& policy) {
  auto shared = std::make_shared<const PassthroughPolicy>(policy);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (auto& l : impl_->listeners) {
    if (l->id == listener_id) l->policy = shared;
  }
}

void SpliceRelay::setOwnerConnections(uint32_t count) {
  impl_->owner_connections.store(count, std::memory_order_relaxed);
}

int SpliceRelay::release(uint32_t id) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->accepted.find(id);
  if (it == impl_->accepted.end()) return -1;
  const int fd = it->second.fd;
  impl_->accepted.erase(it);
  return fd;
}

bool SpliceRelay::closeAccepted(uint32_t id, bool reset) {
  const int fd = release(id);
  if (fd < 0) return false;
  if (reset) {
    const linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(fd);
  return true;
}

int SpliceRelay::connect(uint32_t id, const ConnectTarget& target, uint32_t idle_ms, uint32_t capture) {
  RelayRequest r;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    auto it = impl_->accepted.find(id);
    if (it == impl_->accepted.end()) return ENOENT;
    r.down_fd = it->second.fd;
    r.accepted_us = it->second.accepted_us;
    impl_->accepted.erase(it);
    r.id = id;
    r.idle_ms = idle_ms;
    r.capture = capture;
    r.connect = true;
    r.target = target;
    impl_->incoming.push_back(std::move(r));
  }
  impl_->wake();
  return 0;
}

}  // namespace interpose::relay
