// The native HTTP/1.1 fast path of `interpose proxy`: plain keep-alive HTTP/1.1 requests on
// ServiceEntry HTTP ports proxied on one epoll thread, without Node's HTTP machinery.
//
// Mechanism only. TypeScript (src/proxy/http-fast-path.ts) decides, per listener port and
// authority, whether a route is simple enough to be served here and gives it as data (Route:
// upstream address, cluster, decorator, timeout, retry numbers). Everything else — a route
// TypeScript did not mark eligible, and any request this side does not fully understand
// (Upgrade, Expect, a body not framed by one Content-Length, HTTP/1.0, absolute form, odd
// bytes, an oversized head) — is handed back to JS before any of that request went upstream:
// the descriptor and the bytes read so far (HandBack), and Node's server takes it from there.
// Hand-back can happen on the first request or between requests of a keep-alive connection.
//
// What goes upstream and back is byte for byte what the JS path (http-proxy.ts with undici)
// sends: the request head as undici writes it (host, connection: keep-alive, the client's
// headers minus hop-by-hop ones, Envoy's x-request-id, x-forwarded-proto,
// x-envoy-attempt-count, x-envoy-decorator-operation and B3 headers, content-length), and the
// response head as Node's ServerResponse writes it (upstream headers minus hop-by-hop ones,
// x-envoy-upstream-service-time, Date, Connection, Keep-Alive, chunked framing when the
// upstream gave no length). Each finished request is reported (RequestLog) for the JS access
// log and metrics.
//
// Prior-knowledge h2c connections (add() with http2) are served on the same thread, each
// stream as one such request (fast_path_http2.inc, http2_session.h), or, on a Route::http2
// (HTTP2/GRPC ports), as a stream of an HTTP/2 upstream connection (fast_path_http2_upstream.inc,
// http2_client.h); a connection whose first request is not served here is handed back whole
// before anything but the server's SETTINGS was sent to it, and a later stream that is not is
// refused (RST_STREAM REFUSED_STREAM and GOAWAY) for the client to retry.
//
// Threading: public methods may be called from any thread (queued under a mutex, the loop
// woken through an eventfd); the events callback runs on the loop thread.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http_fast_path/log_batch.h"
#include "http_fast_path/request_counts.h"

namespace interpose::http_fast_path {

/** Envoy retry_on conditions as numbers (src/proxy/http-retry.ts isRetriable()). */
struct RetryPolicy {
  uint32_t retries = 0;
  uint32_t backoff_base_ms = 25;
  bool on_5xx = false;
  bool on_gateway_error = false;
  bool on_reset = false;
  bool on_connect_failure = false;
  bool on_retriable_4xx = false;
  bool on_status_codes = false;
  bool on_refused_stream = false;  // an HTTP/2 upstream's REFUSED_STREAM
  std::vector<int> status_codes;
  std::vector<int> grpc_statuses;  // grpc-status values some retry_on condition retries
};

/** What to do with requests for one authority (TypeScript made it; see http-fast-path.ts). */
struct Route {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string upstream_host;  // "address:port" as the log prints it
  std::string cluster;
  std::string decorator;      // x-envoy-decorator-operation; empty: none
  uint32_t timeout_ms = 0;    // the route timeout; 0: none
  bool has_retry = false;
  RetryPolicy retry;
  // The ServiceEntry port says HTTP2 or GRPC: requests go upstream as streams of an HTTP/2
  // connection (prior knowledge, nghttp2), as http2-upstream.ts sends them; only HTTP/2
  // (h2c) clients are served on such a route, HTTP/1.1 ones are handed back.
  bool http2 = false;
};

/** What a batch carries of the requests it reports. */
enum class LogMode {
  kRecords,  // a record each (LogBatch): JS writes the log line (the JSON encoding) and counts
  kLines,    // the access-log line each, Envoy's TEXT format (LogBatch::lines()), and the counts summed
  kCounts,   // only the counts summed (RequestCounts): no access log
};

struct Options {
  uint32_t connect_timeout_ms = 10000;
  // The downstream keep-alive timeout (Node's keepAliveTimeout = --idle-timeout); 0: none.
  uint32_t idle_ms = 0;
  // A head still incomplete after this long is handed back to JS (which then applies its own
  // header timeout), so a slow client costs this side nothing.
  uint32_t slow_head_ms = 5000;
  // What JS gets of each finished request (Events).
  LogMode log_mode = LogMode::kRecords;
};

/** A request whose (port, authority) has no route yet: TypeScript must answer with setRoute(). */
struct RouteMiss {
  uint16_t port = 0;
  std::string authority;
};

/** A connection given back to JS: its descriptor (now JS's) and the bytes read but not served. */
struct HandBack {
  uint32_t conn_id = 0;
  int fd = -1;
  std::string bytes;
};

struct Events {
  std::vector<RouteMiss> misses;
  LogBatch logs;                    // the finished requests: records or lines (Options::log_mode)
  RequestCounts counts;             // and their counts, except with LogMode::kRecords
  std::vector<HandBack> handbacks;  // after the logs of the same connection
  std::vector<uint32_t> closed;     // connections this side closed (after their logs)
};

class FastPath {
 public:
  using EventsCallback = std::function<void(Events&&)>;

  /** Starts the loop thread. Throws std::system_error when epoll/eventfd/thread fail. */
  FastPath(const Options& options, EventsCallback on_events);
  /** Stops the thread and closes every connection it holds (without callbacks). */
  ~FastPath();
  FastPath(const FastPath&) = delete;
  FastPath& operator=(const FastPath&) = delete;

  /**
   * Takes over a connected, accepted TCP socket (dup()ed; the caller closes its own fd) whose
   * original destination port is `port`, with `bytes` already read from it. `http2`: its
   * first bytes are the HTTP/2 client preface (prior-knowledge h2c); it is then served as
   * HTTP/2 (or handed back whole, before anything but its SETTINGS was sent to it: see
   * fast_path_http2.inc).
   * Returns 0 or an errno (then nothing was taken). Connection ids must stay below
   * 0x80000000: the ids above are the HTTP/2 streams' own. `downstream_local` and
   * `downstream_remote` (host:port each) are what its access-log lines name as the
   * connection's two ends (LogMode::kLines).
   */
  int add(uint32_t conn_id, int fd, std::string bytes, uint16_t port, bool http2 = false, std::string downstream_local = {},
          std::string downstream_remote = {});
  /**
   * Answers a RouteMiss (or refreshes a route): `route` null marks the authority not eligible
   * (its requests are handed back). The answer is used for `ttl_ms`, then asked for again.
   */
  void setRoute(uint16_t port, std::string authority, std::unique_ptr<Route> route, uint32_t ttl_ms);
  /** Forgets every route (the configuration changed). */
  void clearRoutes();
  /** Closes idle keep-alive connections, downstream and upstream (draining). */
  void closeIdle();
  /**
   * Closes connection `conn_id` now (the drain deadline); a request in flight is logged with
   * DC, as when the client goes away. Unknown ids are ignored.
   */
  void abort(uint32_t conn_id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interpose::http_fast_path
