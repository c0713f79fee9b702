#include "http_fast_path/fast_path.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "event_loop_util.h"
#include "http_fast_path/access_log_line.h"
#include "http_fast_path/http1_head.h"
#include "http_fast_path/http2_client.h"
#include "http_fast_path/http2_session.h"
#include "http_fast_path/node_headers.h"
#include "http_fast_path/spare_pool.h"

namespace interpose::http_fast_path {
namespace {

// A head longer than this is handed back (Node's limit, 60 KiB, then decides: 431 or not).
constexpr size_t kMaxHead = 32 * 1024;
// Request bodies are kept whole for retries up to Envoy's default buffer limit (1 MiB, as
// http-retry-body.ts REPLAY_LIMIT_BYTES); a longer Content-Length is handed back.
constexpr uint64_t kMaxBody = 1 << 20;
constexpr size_t kReadChunk = 64 * 1024;
// Output waiting for a slow client beyond this stops reading from its upstream.
constexpr size_t kOutHigh = 256 * 1024;
// An upstream response head longer than this is a failed upstream.
constexpr size_t kMaxResponseHead = 64 * 1024;
// Pooled upstream connections idle this long are closed (undici's keepAliveTimeout in http-proxy.ts).
constexpr uint64_t kPoolIdleMs = 60000;
// A request waiting on TypeScript for its route longer than this is handed back.
constexpr uint64_t kRouteWaitMs = 5000;
// Log records and closed connections wait at most this long, or until this many are queued,
// to reach JS together: JS then wakes far less often than once per request. Route misses and
// hand-backs go at once. Times in the records are taken here, so batching does not skew them.
constexpr uint64_t kBatchMs = 5;
constexpr size_t kBatchMax = 256;
// A batch's log strings go to JS as one string: this many bytes send it at once (a few requests
// with 60 KiB heads would otherwise make it grow towards V8's string length limit).
constexpr size_t kBatchTextMax = 1 << 20;
// Finished exchanges and HTTP/2 stream connections kept for reuse (spare_pool.h): enough for
// the streams of a busy moment.
constexpr size_t kSpareMax = 256;
// The most room a buffer or string that is kept (a spare's, an idle connection's output) holds
// on to: a large answer's room is freed rather than kept for the next, ordinary one.
constexpr size_t kKeptRoom = 16 * 1024;

bool isHopByHop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "http2-settings"};
  for (std::string_view n : kNames) {
    if (equalsIgnoreCase(name, n)) return true;
  }
  return false;
}

bool parseDecimal(std::string_view v, uint64_t* out) {
  if (v.empty() || v.size() > 15) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

// Node's Date header value (RFC 9110 IMF-fixdate), formatted once per second.
class DateCache {
 public:
  const std::string& get() {
    const time_t now = time(nullptr);
    if (now != at_) {
      at_ = now;
      tm t{};
      gmtime_r(&now, &t);
      char buf[64];
      const size_t n = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &t);
      text_.assign(buf, n);
    }
    return text_;
  }

 private:
  time_t at_ = 0;
  std::string text_;
};

enum class TagKind { kClient, kUpstream, kUpstream2 };
struct Tag {
  explicit Tag(TagKind k) : kind(k) {}
  TagKind kind;
};

struct Conn;

struct Up : Tag {
  Up() : Tag(TagKind::kUpstream) {}
  int fd = -1;
  std::string key;
  Conn* owner = nullptr;  // null while pooled
  bool connected = false;
  std::string local;
  uint64_t idle_since_ms = 0;
  uint32_t interest = 0;
};

struct H2Up;

enum class Framing { kNone, kLength, kChunked, kClose };
enum class Failure { kConnect, kReset };

struct Exchange {
  std::shared_ptr<const Route> route;
  bool head_method = false;
  std::string head_a, head_b;  // the upstream head around the x-envoy-attempt-count value
  uint64_t body_len = 0;
  std::string body;
  uint32_t attempt = 1;
  bool limit_exceeded = false;
  Up* up = nullptr;
  std::string attempt_head;
  size_t sent = 0;  // of attempt_head + body
  std::string up_in;
  bool response_started = false;  // a final response head arrived for this attempt
  bool head_sent = false;         // its head went to the client
  bool response_done = false;
  Framing framing = Framing::kNone;
  uint64_t remaining = 0;
  ChunkedDecoder chunked;
  bool client_chunked = false;
  bool up_reusable = false;
  int status = 0;
  RequestLog log;
  uint64_t t0_us = 0;
  uint64_t deadline_ms = 0;
  uint64_t retry_at_ms = 0;
  uint64_t connect_deadline_ms = 0;
  // An HTTP/2 upstream (Route::http2; fast_path_http2_upstream.inc). The request body streams:
  // `body` holds the bytes from offset `body_base` on (all of them while the body stays
  // replayable for a retry, else only those not sent yet), `sent` is the next one to send,
  // `consumed` how far the client's flow-control window was opened again.
  bool h2up = false;
  H2Up* up2 = nullptr;
  int32_t up2_stream = 0;
  bool grpc = false;
  bool replayable = true;
  uint64_t body_base = 0, up2_sent = 0, consumed = 0;
  uint64_t up2_unconsumed = 0;  // response bytes in the stream's `out` not yet consumed upstream
  std::vector<std::pair<std::string, std::string>> up2_fields;  // the request head
  size_t attempt_field = 0;  // index of x-envoy-attempt-count in up2_fields
  bool with_trailers = false;
  std::vector<std::pair<std::string, std::string>> trailers;
};

// `ex` as a new one, for reuse: its strings keep their room unless it grew beyond kKeptRoom.
void resetForReuse(Exchange& ex) {
  ex = Exchange();
  RequestLog& l = ex.log;
  for (std::string* s : {&ex.head_a, &ex.head_b, &ex.body, &ex.attempt_head, &ex.up_in, &l.method, &l.path, &l.authority, &l.user_agent,
                         &l.forwarded_for, &l.request_id, &l.flags, &l.upstream_host, &l.cluster, &l.upstream_local}) {
    dropLargeRoom(*s, kKeptRoom);
  }
}

enum class CState { kHead, kRoute, kExchange };

struct H2State;
struct H2StreamState;

struct Conn : Tag {
  Conn() : Tag(TagKind::kClient) {}
  uint32_t id = 0;
  int fd = -1;
  uint16_t port = 0;
  std::string in;
  std::string out;
  size_t out_off = 0;
  bool eof = false;
  bool dead = false;
  bool close_when_flushed = false;  // no more requests: close once the output is out
  CState state = CState::kHead;
  std::string route_key;
  uint64_t since_ms = 0;  // start of the current wait (idle, head, route)
  std::unique_ptr<Exchange> ex;
  uint32_t interest = 0;
  uint64_t timer_seq = 0;
  uint64_t armed_ms = 0;
  // HTTP/2 (h2c; the "HTTP/2" section of Impl). On the client connection: its session and
  // streams. Each stream is a Conn of its own without a descriptor (parent set), so that the
  // exchange code serves it as it serves an HTTP/1.1 connection: its `in` holds the request
  // body received, its `out` the response body not yet taken into DATA frames.
  std::unique_ptr<H2State> h2;
  Conn* parent = nullptr;
  int32_t stream_id = 0;
  std::unique_ptr<H2StreamState> h2s;
  // The connection's two ends as its access-log lines name them (a client connection's).
  std::string downstream_local, downstream_remote;
  Conn& operator=(Conn&&) noexcept;  // resets a spare stream (Impl::recycleStream)
  ~Conn();
};

struct H2StreamState {
  Http2Request req;
  bool req_end = false;  // the client's half ended
  bool gone = false;     // nghttp2 closed the stream
  uint64_t t0_us = 0;
  double start_ms = 0;
};

struct H2State {
  std::unique_ptr<Http2Session::Listener> listener;  // declared first: outlives the session
  std::unique_ptr<Http2Session> session;
  std::map<int32_t, Conn*> streams;  // by stream id: the order requests came in
  bool committed = false;  // something was sent: the connection can no longer be handed back
  bool going_away = false;
  int32_t goaway_last = 0;  // the last stream id our GOAWAY announced
  bool closing = false;    // our FIN is sent; the client's is awaited (bounded)
  int32_t first = 0;
  int32_t last_accepted = 0;
  size_t fed = 0;          // before commit: bytes of Conn::in already given to the session
  uint64_t declared_body = 0;  // Content-Length sum of the streams being served
  bool dirty = false;      // has output to produce at the end of the loop turn
  bool settings_sent = false;  // our early (empty) SETTINGS went out at admission
  uint64_t handback_by = 0;    // a hand-back waits for the client's ACK of it until then
};

Conn& Conn::operator=(Conn&&) noexcept = default;
Conn::~Conn() = default;

// Lends a room the fast path keeps (Impl::h2_out_room) to a connection whose output is all
// sent, and takes it back once it is; a connection keeps no large room of its own once it has
// nothing left to send.
struct OutRoomLease {
  std::string& room;
  Conn* c;
  OutRoomLease(std::string& r, Conn* conn) : room(r), c(conn) { swapIfSent(); }
  ~OutRoomLease() {
    swapIfSent();
    if (c->out.empty()) dropLargeRoom(c->out, kKeptRoom);
  }
  void swapIfSent() {
    if (c->out_off < c->out.size()) return;
    c->out.clear();
    c->out_off = 0;
    c->out.swap(room);
  }
  OutRoomLease(const OutRoomLease&) = delete;
  OutRoomLease& operator=(const OutRoomLease&) = delete;
};

// One HTTP/2 connection to an upstream (Route::http2), shared by the streams of every client
// going to that address, as http2-upstream.ts shares one node:http2 session.
struct H2Up : Tag {
  H2Up() : Tag(TagKind::kUpstream2) {}
  int fd = -1;
  std::string key;
  bool connected = false;
  bool dead = false;
  bool dirty = false;
  std::string local;
  uint32_t creator = 0;  // the stream that opened it: its log counts the connection (and its failure)
  std::unique_ptr<Http2Client::Listener> listener;  // declared first: outlives the session
  std::unique_ptr<Http2Client> session;
  std::unordered_map<int32_t, Conn*> streams;  // upstream stream id -> the client's stream
  std::string out;
  size_t out_off = 0;
  uint32_t interest = 0;
  uint64_t idle_since_ms = 0;
};

struct RouteEntry {
  std::shared_ptr<const Route> route;  // null: not eligible
  uint64_t expires_ms = 0;
};

struct Incoming {
  uint32_t id;
  int fd;
  std::string bytes;
  uint16_t port;
  bool http2;
  std::string downstream_local, downstream_remote;
};

struct RouteUpdate {
  uint16_t port;
  std::string authority;
  std::shared_ptr<const Route> route;
  uint32_t ttl_ms;
};

struct TimerItem {
  uint64_t at;
  uint32_t id;
  uint64_t seq;
  bool operator>(const TimerItem& o) const { return at > o.at; }
};

std::string hexOf(uint64_t n) {
  char buf[24];
  const int len = snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(n));
  return std::string(buf, static_cast<size_t>(len));
}

}  // namespace

struct FastPath::Impl {
  Options options;
  EventsCallback on_events;
  int epfd = -1;
  int wakefd = -1;
  std::atomic<bool> stopping{false};
  std::thread thread;

  std::mutex mutex;
  std::vector<Incoming> incoming;
  std::vector<RouteUpdate> updates;
  bool clear_requested = false;
  bool close_idle_requested = false;
  std::vector<uint32_t> aborts;

  std::unordered_map<uint32_t, Conn*> conns;
  std::unordered_map<std::string, RouteEntry> routes;
  std::unordered_map<std::string, std::vector<uint32_t>> parked;  // route key -> waiting conns
  std::unordered_map<std::string, std::vector<Up*>> pool;
  std::priority_queue<TimerItem, std::vector<TimerItem>, std::greater<TimerItem>> timers;
  std::vector<Conn*> graveyard;
  std::vector<Up*> up_graveyard;
  SparePool<Exchange> spare_exchanges{kSpareMax};
  SparePool<Conn> spare_streams{kSpareMax};
  std::vector<HeaderField> spare_fields;  // lent to each head parsed (LentRoom)
  Events pending;
  DateCache dates;
  std::mt19937_64 rng;
  char read_buf[kReadChunk];

  explicit Impl(const Options& o, EventsCallback cb) : options(o), on_events(std::move(cb)) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) seed = nowUs();
    rng.seed(seed);
  }

  // ---- small helpers -------------------------------------------------------------------

  void setInterest(int fd, Tag* tag, uint32_t* current, uint32_t wanted) {
    if (*current == wanted) return;
    epoll_event ev{};
    ev.events = wanted;
    ev.data.ptr = tag;
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    *current = wanted;
  }

  // Random bytes as lowercase hex, written to out[0, 2 * bytes).
  void randomHexInto(char* out, size_t bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    uint64_t bits = 0;
    for (size_t i = 0; i < bytes; i++) {
      if (i % 8 == 0) bits = rng();
      const auto b = static_cast<unsigned>(bits & 0xff);
      bits >>= 8;
      out[2 * i] = kDigits[b >> 4];
      out[2 * i + 1] = kDigits[b & 15];
    }
  }

  // `bytes` random bytes (at most 32: the ids made here take 8 and 16) appended as hex.
  void appendRandomHex(std::string& out, size_t bytes) {
    char buf[64];
    bytes = std::min(bytes, sizeof buf / 2);
    randomHexInto(buf, bytes);
    out.append(buf, 2 * bytes);
  }

  // The key of `routes` and `parked` for a request's (port, authority), built in a buffer kept
  // from one request to the next (each request looks its route up): valid until the next call.
  std::string route_key_buf;
  const std::string& routeKey(uint16_t port, std::string_view authority) {
    char digits[8];
    const int n = snprintf(digits, sizeof digits, "%u", static_cast<unsigned>(port));
    route_key_buf.assign(digits, static_cast<size_t>(n)).append(" ").append(authority);
    return route_key_buf;
  }

  // A version 4 UUID, as crypto.randomUUID() gives, assigned to `out` (its room reused).
  void assignUuid(std::string& out) {
    char h[32];
    randomHexInto(h, 16);
    h[12] = '4';
    static constexpr char kVariant[] = "89ab";
    h[16] = kVariant[rng() & 3];
    char text[36];
    size_t o = 0;
    for (size_t i = 0; i < 32; i++) {
      if (i == 8 || i == 12 || i == 16 || i == 20) text[o++] = '-';
      text[o++] = h[i];
    }
    out.assign(text, sizeof text);
  }

  // The tracing headers Envoy adds to a request that has none (sampling off).
  void appendNewTrace(std::string& head) {
    head.append("x-b3-traceid: ");
    appendRandomHex(head, 16);
    head.append("\r\nx-b3-spanid: ");
    appendRandomHex(head, 8);
    head.append("\r\nx-b3-sampled: 0\r\n");
  }

  void arm(Conn* c) {
    if (c->h2) {
      h2Arm(c);
      return;
    }
    uint64_t at = 0;
    auto consider = [&at](uint64_t t) {
      if (t != 0 && (at == 0 || t < at)) at = t;
    };
    switch (c->state) {
      case CState::kHead:
        if (!c->in.empty()) consider(c->since_ms + options.slow_head_ms);
        else if (options.idle_ms > 0) consider(c->since_ms + options.idle_ms);
        break;
      case CState::kRoute:
        consider(c->since_ms + kRouteWaitMs);
        break;
      case CState::kExchange:
        consider(c->ex->deadline_ms);
        consider(c->ex->retry_at_ms);
        consider(c->ex->connect_deadline_ms);
        break;
    }
    if (at == 0 || at == c->armed_ms) return;
    c->armed_ms = at;
    timers.push({at, c->id, ++c->timer_seq});
  }

  // ---- events for JS ---------------------------------------------------------------------

  // When the queued bookkeeping must go out (0: nothing queued).
  uint64_t batch_due_ms = 0;

  void flushEvents(uint64_t now) {
    const bool urgent = !pending.misses.empty() || !pending.handbacks.empty();
    const size_t queued = pending.logs.size() + pending.counts.requests() + pending.closed.size();
    if (!urgent && queued == 0) return;
    if (!urgent && queued < kBatchMax && pending.logs.text().size() + pending.logs.lines().size() < kBatchTextMax) {
      if (batch_due_ms == 0) batch_due_ms = now + kBatchMs;
      if (now < batch_due_ms) return;
    }
    batch_due_ms = 0;
    Events out = std::move(pending);
    pending = Events{};
    if (on_events) {
      on_events(std::move(out));
    } else {
      for (HandBack& h : out.handbacks) close(h.fd);
    }
  }

  // ---- connection lifetimes ----------------------------------------------------------------

  void closeUp(Up* up) {
    if (up->fd >= 0) {
      epoll_ctl(epfd, EPOLL_CTL_DEL, up->fd, nullptr);
      close(up->fd);
      up->fd = -1;
    }
    up->owner = nullptr;
    up_graveyard.push_back(up);
  }

  void dropExchange(Conn* c) {
    if (!c->ex) return;
    releaseUp2(c->ex.get());
    if (c->ex->up) closeUp(c->ex->up);
    recycle(std::move(c->ex));
  }

  // An exchange that ended, kept for the next request's (newExchange()).
  void recycle(std::unique_ptr<Exchange> ex) {
    if (!ex) return;
    resetForReuse(*ex);
    spare_exchanges.give(std::move(ex));
  }

  std::unique_ptr<Exchange> newExchange() { return spare_exchanges.take(); }

  // A stream's Conn freed (graveyard): kept, reset, for the next stream's (newStream()).
  void recycleStream(Conn* s) {
    std::unique_ptr<H2StreamState> st = std::move(s->h2s);
    recycle(std::move(s->ex));
    *s = Conn();
    dropLargeRoom(s->in, kKeptRoom);
    dropLargeRoom(s->out, kKeptRoom);
    if (st) {
      *st = H2StreamState();
      s->h2s = std::move(st);
    }
    spare_streams.give(std::unique_ptr<Conn>(s));
  }

  Conn* newStream() {
    Conn* s = spare_streams.take().release();
    if (!s->h2s) s->h2s = std::make_unique<H2StreamState>();
    return s;
  }

  // Frees what the loop turn closed (only then: events later in its batch may still point at them).
  void freeGraveyards() {
    for (Conn* c : graveyard) {
      if (c->parent != nullptr) recycleStream(c);  // `parent` only says what it was: not followed
      else delete c;
    }
    graveyard.clear();
    for (Up* u : up_graveyard) delete u;
    up_graveyard.clear();
  }

  void forget(Conn* c) {
    c->dead = true;
    conns.erase(c->id);
    graveyard.push_back(c);
  }

  void closeConn(Conn* c, bool reset) {
    if (c->dead) return;
    if (c->parent) {
      h2CloseStream(c);
      return;
    }
    if (c->h2) h2DropStreams(c, true);
    dropExchange(c);
    if (reset) {
      const linger lg{1, 0};
      setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    c->fd = -1;
    pending.closed.push_back(c->id);
    forget(c);
  }

  // Gives the connection back to JS with the bytes not served yet; nothing of them went upstream.
  void handBack(Conn* c) {
    if (c->dead) return;
    if (c->parent) {
      h2Refuse(c);
      return;
    }
    if (c->h2) {
      if (h2DeferHandBack(c)) return;
      h2DropStreams(c, false);
      h2StripSettingsAck(c);
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, nullptr);
    pending.handbacks.push_back({c->id, c->fd, std::move(c->in)});
    c->fd = -1;
    forget(c);
  }

  void admit(Incoming& r) {
    auto* c = new Conn();
    c->id = r.id;
    c->fd = r.fd;
    c->port = r.port;
    c->in = std::move(r.bytes);
    c->downstream_local = std::move(r.downstream_local);
    c->downstream_remote = std::move(r.downstream_remote);
    c->since_ms = nowMs();
    c->interest = EPOLLIN | EPOLLRDHUP;
    epoll_event ev{};
    ev.events = c->interest;
    ev.data.ptr = static_cast<Tag*>(c);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
      pending.handbacks.push_back({c->id, c->fd, std::move(c->in)});
      delete c;
      return;
    }
    conns[c->id] = c;
    if (r.http2) {
      h2Admit(c);
      return;
    }
    advance(c);
  }

  // ---- downstream ------------------------------------------------------------------------------

  // Reads what the client sent; false when the connection is gone.
  bool readClient(Conn* c) {
    for (;;) {
      const ssize_t n = recv(c->fd, read_buf, sizeof read_buf, 0);
      if (n > 0) {
        c->in.append(read_buf, static_cast<size_t>(n));
        // A short read drained the socket for now: epoll (level-triggered) reports anything
        // more, which spares a recv() that would only say EAGAIN.
        if (static_cast<size_t>(n) < sizeof read_buf || c->in.size() > kMaxHead + kMaxBody) return true;
        continue;
      }
      if (n == 0) {
        c->eof = true;
        return true;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      c->eof = true;  // a reset: the client is gone either way
      return true;
    }
  }

  // Writes pending output; false when the client is gone (the exchange was ended).
  bool flushClient(Conn* c) {
    if (c->parent) return h2StreamOutput(c);
    while (c->out_off < c->out.size()) {
      const ssize_t n = send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c->out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      abortExchange(c);
      return false;
    }
    if (c->out_off == c->out.size()) {
      c->out.clear();
      c->out_off = 0;
      // A kept-alive connection does not keep a large answer's buffer while it waits.
      dropLargeRoom(c->out, kKeptRoom);
      if (c->close_when_flushed && !c->ex) {
        closeConn(c, false);
        return false;
      }
    }
    updateClientInterest(c);
    return true;
  }

  void updateClientInterest(Conn* c) {
    uint32_t wanted = EPOLLRDHUP;
    const bool backlog = c->out_off < c->out.size();
    if (backlog) wanted |= EPOLLOUT;
    // Read while a head or body is expected; pipelined bytes only up to a bound.
    const bool want_read = c->state == CState::kHead ? !backlog : c->state == CState::kExchange && c->in.size() < kMaxHead;
    if (want_read && !c->eof) wanted |= EPOLLIN;
    if (c->eof) wanted &= ~static_cast<uint32_t>(EPOLLRDHUP);
    setInterest(c->fd, c, &c->interest, wanted);
  }

  void onClient(Conn* c, uint32_t events) {
    if (c->h2) {
      h2OnClient(c, events);
      return;
    }
    if (events & EPOLLOUT) {
      if (!flushClient(c)) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) c->eof = true;
      else readClient(c);
    }
    advance(c);
  }

  // Moves a connection on as far as its bytes allow.
  void advance(Conn* c) {
    if (c->h2) {
      h2Advance(c);
      return;
    }
    if (c->parent) {
      h2StreamAdvance(c);
      return;
    }
    while (!c->dead) {
      if (c->state == CState::kRoute) break;
      if (c->state == CState::kExchange) {
        Exchange* ex = c->ex.get();
        // Node's server ends the exchange when the client half-closes or resets (DC).
        if (c->eof) {
          abortExchange(c);
          return;
        }
        feedBody(c);
        if (c->dead) return;
        if (ex->response_done && ex->body.size() == ex->body_len) {
          recycle(std::move(c->ex));
          c->state = CState::kHead;
          c->since_ms = nowMs();
          continue;
        }
        break;
      }
      // kHead: the next request starts only once the previous answer is out (answers stay in
      // order, and a hand-back never leaves half an answer behind).
      if (c->out_off < c->out.size()) break;
      if (c->close_when_flushed) {
        closeConn(c, false);
        break;
      }
      if (c->in.empty()) {
        if (c->eof) closeConn(c, false);
        break;
      }
      RequestHead head;
      const LentRoom<std::vector<HeaderField>> lent(spare_fields, head.headers);
      const ParseStatus st = parseRequestHead(c->in, &head);
      if (st == ParseStatus::kNeedMore) {
        if (c->in.size() > kMaxHead || c->eof) handBack(c);
        break;
      }
      if (st == ParseStatus::kUnsupported || head.head_length > kMaxHead) {
        handBack(c);
        break;
      }
      if (!start(c, head)) handBack(c);
    }
    if (!c->dead) {
      updateClientInterest(c);
      arm(c);
    }
  }

  // Checks the request and its route and starts the exchange; false hands the connection back.
  // May also park the connection until TypeScript answers for the route.
  bool start(Conn* c, const RequestHead& head) {
    std::string_view host;
    int hosts = 0, lengths = 0, request_ids = 0, traces = 0, agents = 0;
    std::string_view length_text, request_id, user_agent, trace;
    std::string forwarded_for;
    bool has_forwarded_for = false;
    for (const HeaderField& h : head.headers) {
      const std::string_view n = h.name;
      if (equalsIgnoreCase(n, "host")) {
        hosts++;
        host = h.value;
      } else if (equalsIgnoreCase(n, "content-length")) {
        lengths++;
        length_text = h.value;
      } else if (equalsIgnoreCase(n, "transfer-encoding") || equalsIgnoreCase(n, "upgrade") || equalsIgnoreCase(n, "expect") ||
                 equalsIgnoreCase(n, "http2-settings") || equalsIgnoreCase(n, "x-envoy-attempt-count")) {
        return false;
      } else if (equalsIgnoreCase(n, "connection")) {
        if (!equalsIgnoreCase(h.value, "keep-alive")) return false;
      } else if (equalsIgnoreCase(n, "x-request-id")) {
        request_ids++;
        request_id = h.value;
      } else if (equalsIgnoreCase(n, "x-b3-traceid")) {
        traces++;
        trace = h.value;
      } else if (equalsIgnoreCase(n, "user-agent")) {
        agents++;
        user_agent = h.value;
      } else if (equalsIgnoreCase(n, "x-forwarded-for")) {
        // Node joins repeated ones with ", " (IncomingMessage.headers).
        if (has_forwarded_for) forwarded_for += ", ";
        forwarded_for.append(h.value.data(), h.value.size());
        has_forwarded_for = true;
      }
    }
    if (hosts != 1 || host.empty() || lengths > 1 || request_ids > 1 || traces > 1 || agents > 1) return false;
    uint64_t body_len = 0;
    if (lengths == 1 && !parseDecimal(length_text, &body_len)) return false;
    if (body_len > kMaxBody) return false;

    const std::string& key = routeKey(c->port, host);
    const uint64_t now = nowMs();
    auto it = routes.find(key);
    if (it == routes.end() || it->second.expires_ms <= now) {
      auto& waiting = parked[key];
      if (waiting.empty()) pending.misses.push_back({c->port, std::string(host)});
      waiting.push_back(c->id);
      c->state = CState::kRoute;
      c->route_key = key;
      c->since_ms = now;
      return true;
    }
    // An HTTP/2 upstream is spoken for HTTP/2 clients only (HTTP/1.1 ones are the JS path's).
    if (!it->second.route || it->second.route->http2) return false;
    const std::shared_ptr<const Route>& route = it->second.route;

    auto ex = newExchange();
    ex->route = route;
    ex->t0_us = nowUs();
    ex->head_method = head.method == "HEAD";
    ex->body_len = body_len;
    RequestLog& log = ex->log;
    log.conn_id = c->id;
    log.start_ms = wallClockMs();
    log.method.assign(head.method);
    log.path.assign(head.target);
    log.authority.assign(host);
    log.has_user_agent = agents == 1;
    log.user_agent.assign(user_agent);
    log.has_forwarded_for = has_forwarded_for;
    log.forwarded_for = std::move(forwarded_for);
    log.upstream_host = route->upstream_host;
    log.cluster = route->cluster;

    // The head as undici writes it for the JS path (client-h1.js writeH1).
    std::string& a = ex->head_a;
    a.reserve(c->in.size() + 256);
    a.append(head.method).append(" ").append(head.target).append(" HTTP/1.1\r\nhost: ").append(host);
    // undici closes the connection after HEAD (a misbehaving server may send a body).
    a.append(ex->head_method ? "\r\nconnection: close\r\n" : "\r\nconnection: keep-alive\r\n");
    for (const HeaderField& h : head.headers) {
      if (equalsIgnoreCase(h.name, "host") || equalsIgnoreCase(h.name, "content-length") || isHopByHop(h.name)) continue;
      a.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    if (request_id.empty()) {
      assignUuid(log.request_id);
      a.append("x-request-id: ").append(log.request_id).append("\r\n");
    } else {
      log.request_id.assign(request_id);
    }
    a.append("x-forwarded-proto: http\r\nx-envoy-attempt-count: ");
    std::string& b = ex->head_b;
    b.append("\r\n");
    if (!route->decorator.empty()) b.append("x-envoy-decorator-operation: ").append(route->decorator).append("\r\n");
    if (trace.empty()) {
      appendNewTrace(b);
    }
    const std::string_view m = head.method;
    const bool expects_payload = m == "PUT" || m == "POST" || m == "PATCH" || m == "QUERY" || m == "PROPFIND" || m == "PROPPATCH";
    if (body_len > 0 || expects_payload) b.append("content-length: ").append(std::to_string(body_len)).append("\r\n");
    b.append("\r\n");

    c->in.erase(0, head.head_length);
    c->ex = std::move(ex);
    c->state = CState::kExchange;
    if (route->timeout_ms > 0) c->ex->deadline_ms = now + route->timeout_ms;
    startAttempt(c);
    return true;
  }

  void feedBody(Conn* c) {
    Exchange* ex = c->ex.get();
    if (ex->h2up) return;  // its body streams (h2UpOnData())
    if (ex->body.size() >= ex->body_len || c->in.empty()) return;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(ex->body_len - ex->body.size(), c->in.size()));
    ex->body.append(c->in, 0, take);
    c->in.erase(0, take);
    ex->log.bytes_received += take;
    if (ex->up && ex->up->connected && !ex->response_started) flushUp(c);
  }

  // The client went away (or could not be written to) before its exchange ended: Envoy's DC.
  void abortExchange(Conn* c) {
    if (c->ex) {
      RequestLog& log = c->ex->log;
      log.code = c->ex->head_sent ? c->ex->status : log.code;
      if (log.flags == "-") log.flags = "DC";
      finishLog(c);
    }
    closeConn(c, false);
  }

  void finishLog(Conn* c) {
    Exchange* ex = c->ex.get();
    ex->log.duration_ms = static_cast<double>(nowUs() - ex->t0_us) / 1000.0;
    switch (options.log_mode) {
      case LogMode::kRecords:
        pending.logs.add(ex->log);
        break;
      case LogMode::kLines: {
        const Conn* client = c->parent != nullptr ? c->parent : c;
        const LogLineContext line{c->parent != nullptr ? "HTTP/2" : "HTTP/1.1", client->downstream_local, client->downstream_remote};
        pending.logs.addLine(ex->log, line);
        pending.counts.add(ex->log);
        break;
      }
      case LogMode::kCounts:
        pending.counts.add(ex->log);
        break;
    }
    ex->log = RequestLog{};
    ex->log.conn_id = c->id;
  }

  // ---- upstream --------------------------------------------------------------------------------

  void startAttempt(Conn* c) {
    Exchange* ex = c->ex.get();
    if (ex->h2up) {
      h2UpAttempt(c);
      return;
    }
    ex->retry_at_ms = 0;
    char count[12];
    const int digits = snprintf(count, sizeof count, "%u", static_cast<unsigned>(ex->attempt));
    ex->attempt_head.assign(ex->head_a).append(count, static_cast<size_t>(digits)).append(ex->head_b);
    ex->sent = 0;
    ex->up_in.clear();
    ex->response_started = false;
    const Route& r = *ex->route;
    auto& idle = pool[r.upstream_host];
    while (!idle.empty()) {
      Up* up = idle.back();
      idle.pop_back();
      if (up->fd < 0) continue;
      up->owner = c;
      ex->up = up;
      ex->log.upstream_local = up->local;
      // Written at once; flushUp() asks for EPOLLOUT only if the kernel did not take it all.
      flushUp(c);
      return;
    }
    const int fd = socket(r.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      attemptFailed(c, Failure::kConnect, "EMFILE");
      return;
    }
    setNoDelay(fd);
    auto* up = new Up();
    up->fd = fd;
    up->key = r.upstream_host;
    up->owner = c;
    ex->up = up;
    const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&r.addr), r.addr_len);
    up->interest = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    epoll_event ev{};
    ev.events = up->interest;
    ev.data.ptr = static_cast<Tag*>(up);
    if ((rc != 0 && errno != EINPROGRESS) || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      const int err = errno;
      attemptFailed(c, Failure::kConnect, err == ECONNREFUSED ? "ECONNREFUSED" : strerrorname(err));
      return;
    }
    ex->connect_deadline_ms = options.connect_timeout_ms > 0 ? nowMs() + options.connect_timeout_ms : 0;
    if (c->parent) h2NoteConnecting(c, up);
  }

  static const char* strerrorname(int err) {
    switch (err) {
      case ECONNREFUSED: return "ECONNREFUSED";
      case ECONNRESET: return "ECONNRESET";
      case ETIMEDOUT: return "ETIMEDOUT";
      case EHOSTUNREACH: return "EHOSTUNREACH";
      case ENETUNREACH: return "ENETUNREACH";
      default: return "ECONNREFUSED";
    }
  }

  void connected(Conn* c, Up* up) {
    up->connected = true;
    c->ex->connect_deadline_ms = 0;
    c->ex->log.upstream_connections++;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(up->fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      std::string addr;
      uint16_t port = 0;
      formatSockaddr(ss, &addr, &port);
      up->local = ss.ss_family == AF_INET6 && addr.find(':') != std::string::npos ? "[" + addr + "]:" + std::to_string(port)
                                                                                 : addr + ":" + std::to_string(port);
    }
    c->ex->log.upstream_local = up->local;
  }

  void flushUp(Conn* c) {
    Exchange* ex = c->ex.get();
    Up* up = ex->up;
    if (!up || !up->connected) return;
    const size_t total = ex->attempt_head.size() + ex->body.size();
    while (ex->sent < total) {
      iovec iov[2];
      int count = 0;
      if (ex->sent < ex->attempt_head.size()) {
        iov[count++] = {const_cast<char*>(ex->attempt_head.data() + ex->sent), ex->attempt_head.size() - ex->sent};
        if (!ex->body.empty()) iov[count++] = {const_cast<char*>(ex->body.data()), ex->body.size()};
      } else {
        const size_t off = ex->sent - ex->attempt_head.size();
        iov[count++] = {const_cast<char*>(ex->body.data() + off), ex->body.size() - off};
      }
      ssize_t n;
      if (count == 1) {
        // One piece (a request with no body, the usual case): send(2) takes it without the
        // message header and iovec that sendmsg(2) copies in and checks.
        n = send(up->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
      } else {
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = static_cast<size_t>(count);
        n = sendmsg(up->fd, &msg, MSG_NOSIGNAL);
      }
      if (n > 0) {
        ex->sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      upstreamGone(c);
      return;
    }
    uint32_t wanted = EPOLLIN | EPOLLRDHUP;
    if (ex->sent < total) wanted |= EPOLLOUT;
    if (c->out.size() - c->out_off > kOutHigh) wanted &= ~static_cast<uint32_t>(EPOLLIN);
    setInterest(up->fd, up, &up->interest, wanted);
  }

  void onUp(Up* up, uint32_t events) {
    Conn* c = up->owner;
    if (c == nullptr) {
      // A pooled connection said something (its close, or bytes it should not send): drop it.
      auto& idle = pool[up->key];
      for (size_t i = 0; i < idle.size(); i++) {
        if (idle[i] == up) {
          idle.erase(idle.begin() + static_cast<long>(i));
          break;
        }
      }
      closeUp(up);
      return;
    }
    if (!up->connected) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(up->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
        attemptFailed(c, Failure::kConnect, strerrorname(err != 0 ? err : ECONNREFUSED));
        advance(c);
        return;
      }
      connected(c, up);
    }
    if (events & EPOLLOUT) flushUp(c);
    if (!c->dead && c->ex && c->ex->up == up && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) readUp(c);
    if (!c->dead) advance(c);
  }

  void readUp(Conn* c) {
    Exchange* ex = c->ex.get();
    Up* up = ex->up;
    for (;;) {
      if (c->out.size() - c->out_off > kOutHigh) break;  // the client is slow: wait for it
      const ssize_t n = recv(up->fd, read_buf, sizeof read_buf, 0);
      if (n > 0) {
        ex->up_in.append(read_buf, static_cast<size_t>(n));
        processResponse(c);
        if (c->dead || !c->ex || c->ex->up != up) return;
        if (static_cast<size_t>(n) < sizeof read_buf) break;  // drained for now, as in readClient()
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      upstreamGone(c);
      return;
    }
    if (ex->up) flushUp(c);
  }

  bool retriable(const Exchange& ex, int status, std::string_view grpc) const {
    if (!ex.route->has_retry) return false;
    const RetryPolicy& p = ex.route->retry;
    if (p.on_5xx && status >= 500) return true;
    if (p.on_gateway_error && (status == 502 || status == 503 || status == 504)) return true;
    if (p.on_retriable_4xx && status == 409) return true;
    if (p.on_status_codes) {
      for (int s : p.status_codes) {
        if (s == status) return true;
      }
    }
    uint64_t g = 0;
    if (!grpc.empty() && parseDecimal(grpc, &g)) {
      for (int s : p.grpc_statuses) {
        if (static_cast<uint64_t>(s) == g) return true;
      }
    }
    return false;
  }

  bool failureRetriable(const Exchange& ex, Failure f) const {
    if (!ex.route->has_retry) return false;
    const RetryPolicy& p = ex.route->retry;
    if (f == Failure::kConnect) return p.on_5xx || p.on_gateway_error || p.on_reset || p.on_connect_failure;
    return p.on_5xx || p.on_gateway_error || p.on_reset;
  }

  // RetryState.retryAfter(): schedules the next attempt when the policy allows one.
  bool scheduleRetry(Conn* c, bool is_retriable) {
    Exchange* ex = c->ex.get();
    if (!is_retriable) return false;
    const RetryPolicy& p = ex->route->retry;
    if (ex->attempt > p.retries) {
      ex->limit_exceeded = true;
      return false;
    }
    // Envoy's JitteredExponentialBackOffStrategy, as http-retry.ts backoffMs().
    const uint64_t ceiling = ((uint64_t{1} << std::min<uint32_t>(ex->attempt, 30)) - 1) * p.backoff_base_ms;
    uint64_t wait = ceiling == 0 ? 0 : rng() % ceiling;
    wait = std::min<uint64_t>(wait, uint64_t{p.backoff_base_ms} * 10);
    ex->attempt++;
    ex->log.retries++;
    releaseUp2(ex);
    if (ex->up) {
      closeUp(ex->up);
      ex->up = nullptr;
    }
    ex->connect_deadline_ms = 0;
    ex->retry_at_ms = nowMs() + wait;
    if (ex->retry_at_ms == 0) ex->retry_at_ms = 1;
    return true;
  }

  std::string retryFlag(const Exchange& ex, const std::string& flag) const {
    if (!ex.limit_exceeded) return flag;
    return flag == "-" ? "URX" : flag + ",URX";
  }

  void attemptFailed(Conn* c, Failure f, const char* reason) {
    Exchange* ex = c->ex.get();
    ex->log.connect_failures++;
    if (ex->up) {
      closeUp(ex->up);
      ex->up = nullptr;
    }
    ex->connect_deadline_ms = 0;
    if (scheduleRetry(c, failureRetriable(*ex, f))) return;
    localReply(c, 503, retryFlag(*ex, f == Failure::kConnect ? "UF" : "UC"),
               std::string("upstream connect error or disconnect/reset before headers. reset reason: ") + reason);
  }

  // The upstream closed or failed.
  void upstreamGone(Conn* c) {
    Exchange* ex = c->ex.get();
    if (!ex->response_started) {
      // undici: "other side closed" (UND_ERR_SOCKET), which the JS path reads as ECONNRESET.
      attemptFailed(c, Failure::kReset, "ECONNRESET");
      return;
    }
    if (ex->framing == Framing::kClose) {
      ex->up_reusable = false;
      responseDone(c);
      return;
    }
    // Mid-body: Envoy's UC; the client's answer cannot be completed.
    if (ex->log.flags == "-") ex->log.flags = "UC";
    ex->log.code = ex->status;
    finishLog(c);
    closeConn(c, false);
  }

  void processResponse(Conn* c) {
    Exchange* ex = c->ex.get();
    if (!ex->response_started) {
      ResponseHead head;
      const LentRoom<std::vector<HeaderField>> lent(spare_fields, head.headers);
      for (;;) {
        const ParseStatus st = parseResponseHead(ex->up_in, &head);
        if (st == ParseStatus::kNeedMore) {
          if (ex->up_in.size() > kMaxResponseHead) upstreamGone(c);
          return;
        }
        if (st == ParseStatus::kUnsupported || head.status == 101) {
          upstreamGone(c);
          return;
        }
        if (head.status >= 200) break;
        ex->up_in.erase(0, head.head_length);  // 1xx: undici skips interim answers
      }
      ex->response_started = true;
      std::string_view grpc, length, te;
      bool close_asked = head.version_minor == 0;
      int lengths = 0, tes = 0;
      for (const HeaderField& h : head.headers) {
        if (equalsIgnoreCase(h.name, "grpc-status")) grpc = h.value;
        else if (equalsIgnoreCase(h.name, "content-length")) lengths++, length = h.value;
        else if (equalsIgnoreCase(h.name, "transfer-encoding")) tes++, te = h.value;
        else if (equalsIgnoreCase(h.name, "connection") && !equalsIgnoreCase(h.value, "keep-alive")) close_asked = true;
      }
      if (scheduleRetry(c, retriable(*ex, head.status, grpc))) return;
      ex->status = head.status;
      uint64_t len = 0;
      const bool no_body = ex->head_method || head.status == 204 || head.status == 304;
      if (no_body) {
        ex->framing = Framing::kNone;
      } else if (tes > 0) {
        if (tes > 1 || !equalsIgnoreCase(te, "chunked") || lengths > 0) {
          upstreamGone(c);
          return;
        }
        ex->framing = Framing::kChunked;
      } else if (lengths > 0) {
        if (lengths > 1 || !parseDecimal(length, &len)) {
          upstreamGone(c);
          return;
        }
        ex->framing = Framing::kLength;
        ex->remaining = len;
      } else {
        ex->framing = Framing::kClose;
      }
      ex->up_reusable = !close_asked && !ex->head_method && ex->framing != Framing::kClose;
      ex->log.upstream_service_ms = static_cast<int64_t>((nowUs() - ex->t0_us + 500) / 1000);
      ex->log.flags = retryFlag(*ex, ex->log.flags);
      writeResponseHead(c, head);
      ex->up_in.erase(0, head.head_length);
      if (ex->framing == Framing::kNone) {
        responseDone(c);
        return;
      }
    }
    relayBody(c);
  }

  // The head as Node's ServerResponse writes it for res.writeHead(status, reason, headers).
  void writeResponseHead(Conn* c, const ResponseHead& head) {
    if (c->parent) {
      h2RelayHead(c, head);
      return;
    }
    Exchange* ex = c->ex.get();
    std::string& o = c->out;
    o.append("HTTP/1.1 ").append(std::to_string(head.status)).append(" ").append(head.reason).append("\r\n");
    bool has_date = false, has_length = false, has_te = false;
    for (const HeaderField& h : head.headers) {
      if (isHopByHop(h.name)) continue;
      if (equalsIgnoreCase(h.name, "date")) has_date = true;
      if (equalsIgnoreCase(h.name, "content-length")) has_length = true;
      if (equalsIgnoreCase(h.name, "transfer-encoding")) has_te = true;
      o.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    o.append("x-envoy-upstream-service-time: ").append(std::to_string(ex->log.upstream_service_ms)).append("\r\n");
    appendNodeTrailer(c, has_date);
    const bool has_body = !ex->head_method && head.status != 204 && head.status != 304;
    ex->client_chunked = has_body && (has_te || !has_length);
    if (has_body && !has_length && !has_te) o.append("Transfer-Encoding: chunked\r\n");
    o.append("\r\n");
    ex->head_sent = true;
  }

  // Date, Connection and Keep-Alive, as Node adds them to a kept-alive HTTP/1.1 response.
  void appendNodeTrailer(Conn* c, bool has_date) {
    std::string& o = c->out;
    if (!has_date) o.append("Date: ").append(dates.get()).append("\r\n");
    o.append("Connection: keep-alive\r\n");
    if (options.idle_ms > 0) o.append("Keep-Alive: timeout=").append(std::to_string(options.idle_ms / 1000)).append("\r\n");
  }

  void emitData(Conn* c, const char* data, size_t n) {
    if (n == 0) return;
    Exchange* ex = c->ex.get();
    ex->log.bytes_sent += n;
    if (ex->client_chunked) {
      c->out.append(hexOf(n)).append("\r\n").append(data, n).append("\r\n");
    } else {
      c->out.append(data, n);
    }
  }

  void relayBody(Conn* c) {
    Exchange* ex = c->ex.get();
    bool done = false;
    switch (ex->framing) {
      case Framing::kNone:
        done = true;
        break;
      case Framing::kLength: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(ex->remaining, ex->up_in.size()));
        emitData(c, ex->up_in.data(), take);
        ex->remaining -= take;
        if (ex->up_in.size() > take) ex->up_reusable = false;  // bytes past the answer: do not trust it
        ex->up_in.clear();
        done = ex->remaining == 0;
        break;
      }
      case Framing::kChunked: {
        size_t consumed = 0;
        const auto r = ex->chunked.feed(ex->up_in, &consumed, [this, c](const char* p, size_t n) { emitData(c, p, n); });
        if (r == ChunkedDecoder::Result::kError) {
          ex->up_in.clear();
          upstreamGone(c);
          return;
        }
        if (r == ChunkedDecoder::Result::kDone && consumed < ex->up_in.size()) ex->up_reusable = false;
        ex->up_in.clear();
        done = r == ChunkedDecoder::Result::kDone;
        break;
      }
      case Framing::kClose:
        emitData(c, ex->up_in.data(), ex->up_in.size());
        ex->up_in.clear();
        break;
    }
    if (done) {
      responseDone(c);
    } else {
      flushClient(c);
    }
  }

  void responseDone(Conn* c) {
    Exchange* ex = c->ex.get();
    if (ex->client_chunked) c->out.append("0\r\n\r\n");
    ex->response_done = true;
    ex->deadline_ms = 0;
    ex->retry_at_ms = 0;
    ex->connect_deadline_ms = 0;
    ex->log.code = ex->status;
    if (Up* up = ex->up) {
      ex->up = nullptr;
      if (ex->up_reusable && up->fd >= 0) {
        up->owner = nullptr;
        up->idle_since_ms = nowMs();
        setInterest(up->fd, up, &up->interest, EPOLLIN | EPOLLRDHUP);
        pool[up->key].push_back(up);
      } else {
        closeUp(up);
      }
    }
    if (!flushClient(c)) return;
    finishLog(c);
  }

  // A reply Envoy itself would make (503 UF/UC, 504 UT), as http-proxy.ts local() writes it.
  void localReply(Conn* c, int code, const std::string& flag, const std::string& body) {
    if (c->parent) {
      h2LocalReply(c, code, flag, body);
      return;
    }
    Exchange* ex = c->ex.get();
    ex->log.code = code;
    ex->log.flags = flag;
    if (ex->head_sent) {
      finishLog(c);
      closeConn(c, false);
      return;
    }
    if (ex->up) {
      closeUp(ex->up);
      ex->up = nullptr;
    }
    std::string& o = c->out;
    o.append("HTTP/1.1 ").append(std::to_string(code)).append(code == 504 ? " Gateway Timeout\r\n" : " Service Unavailable\r\n");
    o.append("content-length: ").append(std::to_string(body.size())).append("\r\ncontent-type: text/plain\r\nserver: envoy\r\n");
    appendNodeTrailer(c, false);
    o.append("\r\n");
    if (!ex->head_method) o.append(body);
    ex->head_sent = true;
    ex->status = code;
    ex->log.bytes_sent = body.size();
    ex->response_done = true;
    ex->deadline_ms = 0;
    ex->retry_at_ms = 0;
    ex->connect_deadline_ms = 0;
    if (!flushClient(c)) return;
    finishLog(c);
  }

  // ---- HTTP/2 (prior-knowledge h2c) ---------------------------------------------------------

  // nghttp2's reports for one connection, passed on to the methods in fast_path_http2.inc
  // (defined here, not there: GCC wants types naming this file's anonymous namespace here).
  struct H2Listener : Http2Session::Listener {
    Impl* impl = nullptr;
    Conn* c = nullptr;
    void onRequest(int32_t id, Http2Request&& r) override { impl->h2OnRequest(c, id, std::move(r)); }
    void onData(int32_t id, const char* data, size_t len) override { impl->h2OnData(c, id, data, len); }
    void onEndStream(int32_t id) override { impl->h2OnEndStream(c, id); }
    bool trailers(int32_t id, std::vector<std::pair<std::string, std::string>>* out) override { return impl->h2Trailers(c, id, out); }
    void onStreamClose(int32_t id, uint32_t code) override { impl->h2OnStreamClose(c, id, code); }
    long readBody(int32_t id, char* buf, size_t len, bool* eof) override { return impl->h2ReadBody(c, id, buf, len, eof); }
  };

#include "http_fast_path/fast_path_http2.inc"

  // nghttp2's reports for one upstream connection (fast_path_http2_upstream.inc).
  struct H2UpListener : Http2Client::Listener {
    Impl* impl = nullptr;
    H2Up* u = nullptr;
    void onResponse(int32_t id, int status, Http2Client::Fields&& f, bool end) override { impl->h2UpOnResponse(u, id, status, std::move(f), end); }
    void onTrailers(int32_t id, Http2Client::Fields&& f) override { impl->h2UpOnTrailers(u, id, std::move(f)); }
    void onData(int32_t id, const char* data, size_t len) override { impl->h2UpOnData(u, id, data, len); }
    void onEnd(int32_t id) override { impl->h2UpOnEnd(u, id); }
    void onStreamClose(int32_t id, uint32_t code) override { impl->h2UpOnStreamClose(u, id, code); }
    long readBody(int32_t id, char* buf, size_t len, bool* eof) override { return impl->h2UpReadBody(u, id, buf, len, eof); }
  };

#include "http_fast_path/fast_path_http2_upstream.inc"

  // ---- timers ----------------------------------------------------------------------------------

  void onTimer(Conn* c, uint64_t now) {
    c->armed_ms = 0;
    if (c->h2) {
      h2OnTimer(c, now);
      return;
    }
    switch (c->state) {
      case CState::kHead:
        if (!c->in.empty()) {
          if (now >= c->since_ms + options.slow_head_ms) {
            handBack(c);
            return;
          }
        } else if (options.idle_ms > 0 && now >= c->since_ms + options.idle_ms) {
          closeConn(c, false);
          return;
        }
        break;
      case CState::kRoute:
        if (now >= c->since_ms + kRouteWaitMs) {
          auto it = parked.find(c->route_key);
          if (it != parked.end()) {
            auto& ids = it->second;
            for (size_t i = 0; i < ids.size(); i++) {
              if (ids[i] == c->id) {
                ids.erase(ids.begin() + static_cast<long>(i));
                break;
              }
            }
          }
          handBack(c);
          return;
        }
        break;
      case CState::kExchange: {
        Exchange* ex = c->ex.get();
        if (ex->deadline_ms != 0 && now >= ex->deadline_ms) {
          // The route timeout covers every attempt, as Envoy's.
          ex->deadline_ms = 0;
          if (ex->head_sent && c->parent) {
            // retry-driver.ts cut('UT'): the answer began; the stream is reset.
            if (ex->log.flags == "-") ex->log.flags = "UT";
            ex->log.code = ex->status;
            finishLog(c);
            closeConn(c, false);
            return;
          }
          if (ex->head_sent) {
            abortExchange(c);
            return;
          }
          releaseUp2(ex);
          if (ex->up) {
            closeUp(ex->up);
            ex->up = nullptr;
          }
          // The connection survives the 504, as Envoy's (and the JS path's) does: the route
          // timer starts once the request is complete, so nothing of it is left unread.
          localReply(c, 504, "UT", "upstream request timeout");
          if (!c->dead) advance(c);
          return;
        }
        if (ex->connect_deadline_ms != 0 && now >= ex->connect_deadline_ms) {
          if (ex->up2) {
            // http2-upstream.ts: the session is destroyed (ETIMEDOUT), failing all its streams.
            h2UpClose(ex->up2, "ETIMEDOUT", true);
            if (!c->dead) advance(c);
            return;
          }
          attemptFailed(c, Failure::kConnect, "ETIMEDOUT");
          if (!c->dead) advance(c);
          return;
        }
        if (ex->retry_at_ms != 0 && now >= ex->retry_at_ms) {
          startAttempt(c);
          if (!c->dead) advance(c);
          return;
        }
        break;
      }
    }
    arm(c);
  }

  void runTimers() {
    const uint64_t now = nowMs();
    while (!timers.empty() && timers.top().at <= now) {
      const TimerItem t = timers.top();
      timers.pop();
      auto it = conns.find(t.id);
      if (it == conns.end() || it->second->timer_seq != t.seq) continue;
      onTimer(it->second, now);
    }
  }

  int waitMs() {
    uint64_t at = timers.empty() ? 0 : timers.top().at;
    if (batch_due_ms != 0 && (at == 0 || batch_due_ms < at)) at = batch_due_ms;
    if (at == 0) return 1000;
    const uint64_t now = nowMs();
    return at <= now ? 0 : static_cast<int>(std::min<uint64_t>(at - now, 1000));
  }

  void sweepPool(uint64_t now) {
    for (auto& [key, idle] : pool) {
      for (size_t i = 0; i < idle.size();) {
        if (now - idle[i]->idle_since_ms >= kPoolIdleMs) {
          closeUp(idle[i]);
          idle.erase(idle.begin() + static_cast<long>(i));
        } else {
          i++;
        }
      }
    }
  }

  // ---- queue from other threads -----------------------------------------------------------------

  void drainQueues() {
    uint64_t v = 0;
    while (read(wakefd, &v, sizeof v) < 0 && errno == EINTR) {
    }
    std::vector<Incoming> in;
    std::vector<RouteUpdate> ups;
    bool clear = false, idle = false;
    std::vector<uint32_t> to_abort;
    {
      std::lock_guard<std::mutex> lock(mutex);
      in.swap(incoming);
      ups.swap(updates);
      to_abort.swap(aborts);
      clear = clear_requested;
      idle = close_idle_requested;
      clear_requested = close_idle_requested = false;
    }
    if (clear) routes.clear();
    for (RouteUpdate& u : ups) {
      const std::string key = routeKey(u.port, u.authority);  // a copy: advance() below builds others
      routes[key] = RouteEntry{u.route, nowMs() + u.ttl_ms};
      auto it = parked.find(key);
      if (it == parked.end()) continue;
      std::vector<uint32_t> ids = std::move(it->second);
      parked.erase(it);
      for (uint32_t id : ids) {
        auto c = conns.find(id);
        if (c == conns.end() || c->second->state != CState::kRoute) continue;
        c->second->state = CState::kHead;
        advance(c->second);
      }
    }
    for (Incoming& r : in) admit(r);
    for (uint32_t id : to_abort) {
      auto it = conns.find(id);
      if (it != conns.end()) abortExchange(it->second);
    }
    if (idle) {
      std::vector<Conn*> idle_conns;
      std::vector<Conn*> h2_conns;
      for (auto& [id, c] : conns) {
        if (c->h2) h2_conns.push_back(c);
        else if (c->parent == nullptr && c->state == CState::kHead && c->in.empty() && c->out_off >= c->out.size()) idle_conns.push_back(c);
      }
      for (Conn* c : idle_conns) closeConn(c, false);
      for (Conn* c : h2_conns) h2GoAway(c);
      h2UpSweep(0, false, true);
      for (auto& [key, ups_idle] : pool) {
        for (Up* u : ups_idle) closeUp(u);
        ups_idle.clear();
      }
    }
  }

  void wake() {
    const uint64_t one = 1;
    while (write(wakefd, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  void run() {
    std::vector<epoll_event> events(256);
    uint64_t last_sweep = nowMs();
    while (!stopping.load(std::memory_order_acquire)) {
      const int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), waitMs());
      for (int i = 0; i < n; i++) {
        const epoll_event& e = events[static_cast<size_t>(i)];
        auto* tag = static_cast<Tag*>(e.data.ptr);
        if (tag == nullptr) {
          drainQueues();
        } else if (tag->kind == TagKind::kClient) {
          auto* c = static_cast<Conn*>(tag);
          if (!c->dead) onClient(c, e.events);
        } else if (tag->kind == TagKind::kUpstream2) {
          auto* u = static_cast<H2Up*>(tag);
          if (!u->dead) h2UpOnEvents(u, e.events);
        } else {
          auto* up = static_cast<Up*>(tag);
          if (up->fd >= 0) onUp(up, e.events);
        }
      }
      runTimers();
      const uint64_t now = nowMs();
      if (now - last_sweep >= 1000) {
        sweepPool(now);
        h2UpSweep(now, false);
        last_sweep = now;
      }
      h2FlushDirty();
      flushEvents(nowMs());
      freeGraveyards();
      h2UpFree();
    }
    on_events = nullptr;
    std::vector<Conn*> left;
    for (auto& [id, c] : conns) left.push_back(c);
    for (Conn* c : left) closeConn(c, false);
    for (auto& [key, idle] : pool) {
      for (Up* u : idle) closeUp(u);
    }
    pool.clear();
    h2UpSweep(0, true);
    freeGraveyards();
    h2UpFree();
    std::lock_guard<std::mutex> lock(mutex);
    for (Incoming& r : incoming) close(r.fd);
    incoming.clear();
  }
};

FastPath::FastPath(const Options& options, EventsCallback on_events)
    : impl_(std::make_unique<Impl>(options, std::move(on_events))) {
  openEpollWithWake(&impl_->epfd, &impl_->wakefd);
  impl_->thread = std::thread([this] { impl_->run(); });
  // Named so per-thread CPU (top -H, /proc/PID/task) tells it from Node's threads.
  pthread_setname_np(impl_->thread.native_handle(), "interpose-http");
}

FastPath::~FastPath() {
  impl_->stopping.store(true, std::memory_order_release);
  impl_->wake();
  if (impl_->thread.joinable()) impl_->thread.join();
  close(impl_->wakefd);
  close(impl_->epfd);
}

int FastPath::add(uint32_t conn_id, int fd, std::string bytes, uint16_t port, bool http2, std::string downstream_local,
                  std::string downstream_remote) {
  const int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return errno;
  const int flags = fcntl(own, F_GETFL);
  if (flags < 0 || fcntl(own, F_SETFL, flags | O_NONBLOCK) != 0) {
    const int err = errno;
    close(own);
    return err;
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->incoming.push_back({conn_id, own, std::move(bytes), port, http2, std::move(downstream_local), std::move(downstream_remote)});
  }
  impl_->wake();
  return 0;
}

void FastPath::setRoute(uint16_t port, std::string authority, std::unique_ptr<Route> route, uint32_t ttl_ms) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->updates.push_back({port, std::move(authority), std::shared_ptr<const Route>(std::move(route)), ttl_ms});
  }
  impl_->wake();
}

void FastPath::clearRoutes() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->clear_requested = true;
  }
  impl_->wake();
}

void FastPath::abort(uint32_t conn_id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->aborts.push_back(conn_id);
  }
  impl_->wake();
}

void FastPath::closeIdle() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->close_idle_requested = true;
  }
  impl_->wake();
}

}  // namespace interpose::http_fast_path
