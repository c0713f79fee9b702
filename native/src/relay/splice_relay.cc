#include "relay/splice_relay.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace interpose::relay {

const char* EndFlagText(EndFlag flag) {
  switch (flag) {
    case EndFlag::kNone: return "-";
    case EndFlag::kDownstreamReset: return "DC";
    case EndFlag::kUpstreamReset: return "UC";
    case EndFlag::kIdleTimeout: return "SI";
    case EndFlag::kAborted: return "aborted";
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

uint64_t nowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

bool isReset(int err) { return err == ECONNRESET || err == EPIPE; }

struct Pipe {
  int read_end = -1;
  int write_end = -1;
};

struct Conn;

// What an epoll registration points at: the connection and which of its sockets woke.
struct Side {
  Conn* conn = nullptr;
  bool is_down = false;
};

struct Direction {
  int from = -1;
  int to = -1;
  Pipe pipe;
  size_t in_pipe = 0;        // bytes spliced into the pipe and not yet out of it
  std::string pending;       // user-space bytes to write before splicing (the sniffed head)
  size_t pending_off = 0;
  bool eof = false;          // `from` sent its FIN
  bool shut = false;         // that FIN was forwarded to `to`
  uint64_t bytes = 0;        // bytes read from `from` by splice
};

struct Conn {
  uint32_t id = 0;
  int down = -1;
  int up = -1;
  Side down_side;
  Side up_side;
  Direction d2u;  // downstream → upstream
  Direction u2d;  // upstream → downstream
  uint32_t idle_ms = 0;
  uint64_t last_active = 0;
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
  DoneCallback on_done;
  int epfd = -1;
  int wakefd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};

  std::mutex mutex;                       // guards the two queues below
  std::vector<RelayRequest> incoming;
  std::vector<uint32_t> aborts;

  // Relay-thread state only.
  std::unordered_map<uint32_t, Conn*> conns;
  std::vector<Conn*> graveyard;           // freed after the epoll batch that ended them
  std::vector<Pipe> pipe_pool;

  explicit Impl(DoneCallback cb) : on_done(std::move(cb)) {}

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

  // Moves bytes `from` → `to` until a socket would block. See the header for the rules.
  static PumpError pump(Direction& d, bool* progressed) {
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
          // ENOTCONN here means the peer is already gone; the other direction will see why.
          shutdown(d.to, SHUT_WR);
          d.shut = true;
          *progressed = true;
        }
        return {};
      }
      // The pipe is empty here, so EAGAIN can only mean the socket has nothing to read.
      const ssize_t n = splice(d.from, nullptr, d.pipe.write_end, nullptr, kSpliceChunk,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.in_pipe = static_cast<size_t>(n);
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

  void end(Conn* c, EndFlag flag, int err, int reset_fd) {
    if (c->ended) return;
    c->ended = true;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->down, nullptr);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->up, nullptr);
    if (reset_fd >= 0) {
      // SO_LINGER with a zero timeout makes close() send an RST instead of a FIN.
      const linger lg{1, 0};
      setsockopt(reset_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->down);
    close(c->up);
    releasePipe(&c->d2u.pipe, c->d2u.in_pipe == 0);
    releasePipe(&c->u2d.pipe, c->u2d.in_pipe == 0);
    conns.erase(c->id);
    graveyard.push_back(c);
    if (on_done) {
      RelayDone done;
      done.id = c->id;
      done.down_to_up = c->d2u.bytes;
      done.up_to_down = c->u2d.bytes;
      done.flag = flag;
      done.error = err;
      done.head = std::move(c->head);
      on_done(std::move(done));
    }
  }

  void capture(Conn* c) {
    if (c->capture == 0 || !c->head.empty() || c->d2u.eof) return;
    std::string buf(c->capture, '\0');
    const ssize_t n = recv(c->down, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
      buf.resize(static_cast<size_t>(n));
      c->head = std::move(buf);
      c->capture = 0;
    }
  }

  void service(Conn* c) {
    if (c->ended) return;
    capture(c);
    bool progressed = false;
    PumpError e = pump(c->d2u, &progressed);
    bool from_down = e.on_from;  // d2u reads the downstream and writes the upstream
    if (e.err == 0) {
      e = pump(c->u2d, &progressed);
      from_down = !e.on_from;
    }
    if (progressed) c->last_active = nowMs();
    if (e.err != 0) {
      const bool down_failed = from_down;
      const int other = down_failed ? c->up : c->down;
      end(c, down_failed ? EndFlag::kDownstreamReset : EndFlag::kUpstreamReset, e.err,
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
    c->down_side = {c, true};
    c->up_side = {c, false};
    c->d2u.from = c->down;
    c->d2u.to = c->up;
    c->d2u.pending = std::move(r.head);
    c->d2u.eof = r.down_ended;
    c->u2d.from = c->up;
    c->u2d.to = c->down;
    c->idle_ms = r.idle_ms;
    c->capture = r.capture;
    c->last_active = nowMs();
    if (auto old = conns.find(c->id); old != conns.end()) end(old->second, EndFlag::kAborted, 0, -1);
    conns[c->id] = c;
    if (!takePipe(&c->d2u.pipe) || !takePipe(&c->u2d.pipe)) {
      end(c, EndFlag::kAborted, errno, -1);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c->down_side;
    int rc = epoll_ctl(epfd, EPOLL_CTL_ADD, c->down, &ev);
    ev.data.ptr = &c->up_side;
    if (rc == 0) rc = epoll_ctl(epfd, EPOLL_CTL_ADD, c->up, &ev);
    if (rc != 0) {
      end(c, EndFlag::kAborted, errno, -1);
      return;
    }
    service(c);
  }

  void drainQueues() {
    uint64_t count;
    while (read(wakefd, &count, sizeof count) < 0 && errno == EINTR) {
    }
    std::vector<RelayRequest> reqs;
    std::vector<uint32_t> ids;
    {
      std::lock_guard<std::mutex> lock(mutex);
      reqs.swap(incoming);
      ids.swap(aborts);
    }
    for (auto& r : reqs) admit(r);
    for (uint32_t id : ids) {
      auto it = conns.find(id);
      if (it != conns.end()) end(it->second, EndFlag::kAborted, 0, -1);
    }
  }

  void sweepIdle(uint64_t now) {
    std::vector<Conn*> idle;
    for (auto& [id, c] : conns) {
      if (c->idle_ms != 0 && now - c->last_active >= c->idle_ms) idle.push_back(c);
    }
    for (Conn* c : idle) end(c, EndFlag::kIdleTimeout, 0, -1);
  }

  void run() {
    std::vector<epoll_event> events(256);
    uint64_t last_sweep = nowMs();
    while (!stopping.load(std::memory_order_acquire)) {
      const int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), kSweepMs);
      for (int i = 0; i < n; i++) {
        void* p = events[static_cast<size_t>(i)].data.ptr;
        if (p == nullptr) {
          drainQueues();
          continue;
        }
        service(static_cast<Side*>(p)->conn);
      }
      for (Conn* c : graveyard) delete c;
      graveyard.clear();
      const uint64_t now = nowMs();
      if (now - last_sweep >= static_cast<uint64_t>(kSweepMs)) {
        sweepIdle(now);
        last_sweep = now;
        for (Conn* c : graveyard) delete c;
        graveyard.clear();
      }
    }
    // Shutdown: close what is left without telling anyone (the owner is going away).
    on_done = nullptr;
    std::vector<Conn*> left;
    for (auto& [id, c] : conns) left.push_back(c);
    for (Conn* c : left) end(c, EndFlag::kAborted, 0, -1);
    for (Conn* c : graveyard) delete c;
    graveyard.clear();
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (auto& r : incoming) {
        close(r.down_fd);
        close(r.up_fd);
      }
      incoming.clear();
    }
    for (Pipe& p : pipe_pool) releasePipe(&p, false);
  }
};

SpliceRelay::SpliceRelay(DoneCallback on_done) : impl_(std::make_unique<Impl>(std::move(on_done))) {
  impl_->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (impl_->epfd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  impl_->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->wakefd < 0) {
    const int err = errno;
    close(impl_->epfd);
    throw std::system_error(err, std::generic_category(), "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up descriptor
  if (epoll_ctl(impl_->epfd, EPOLL_CTL_ADD, impl_->wakefd, &ev) != 0) {
    const int err = errno;
    close(impl_->wakefd);
    close(impl_->epfd);
    throw std::system_error(err, std::generic_category(), "epoll_ctl");
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
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

void SpliceRelay::abort(uint32_t id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->aborts.push_back(id);
  }
  impl_->wake();
}

}  // namespace interpose::relay
