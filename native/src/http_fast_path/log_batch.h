// Finished requests as the fast path reports them to JS: one RequestLog per request, packed
// into a LogBatch for the crossing to the JS thread.
//
// Why packed: a batch of RequestLogs held a dozen heap strings per request, allocated on the
// loop thread and freed on the JS thread (the slowest way to use malloc: every such free goes
// back to the other thread's arena under its lock), and became 21 JS values per request, each
// one N-API call. Packed, a batch is two allocations whatever its size, and three N-API calls
// (http_fast_path_binding.cc Deliver): the numbers as one Float64Array, the strings as one
// latin1 string that JS slices (src/proxy/native-http-fast-path.linux.ts decodeRecords()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace interpose::http_fast_path {

/** One finished request, with what the access log line and the metrics need. */
struct RequestLog {
  uint32_t conn_id = 0;
  double start_ms = 0;  // wall clock, ms since the epoch
  std::string method, path, authority, user_agent, forwarded_for, request_id;
  bool has_user_agent = false, has_forwarded_for = false;
  int code = 0;
  std::string flags = "-";
  uint64_t bytes_received = 0, bytes_sent = 0;
  double duration_ms = 0;
  int64_t upstream_service_ms = -1;  // -1: no upstream answer
  std::string upstream_host, cluster, upstream_local;
  uint32_t upstream_connections = 0;  // new upstream connections made for it
  uint32_t connect_failures = 0;
  uint32_t retries = 0;  // attempts sent again by the retry policy
  // A streamed request body outgrew the replay buffer before an answer, on a route with
  // retries: no retry can follow (Envoy's retry_or_shadow_abandoned).
  bool retry_abandoned = false;
};

/**
 * RequestLogs packed. Per record, kFields numbers in this order (decodeRecords() reads them
 * by the same indexes):
 *   0 connId, 1 startMs, 2 code, 3 bytesReceived, 4 bytesSent, 5 durationMs,
 *   6 upstreamServiceMs (-1: none), 7 upstreamConnections, 8 connectFailures, 9 retries,
 *   10 retryAbandoned (0/1),
 * then the lengths of its strings, which follow one another in text() in this order (-1: the
 * string is absent, and takes no room):
 *   11 method, 12 path, 13 authority, 14 userAgent, 15 forwardedFor, 16 requestId, 17 flags,
 *   18 upstreamHost, 19 cluster, 20 upstreamLocal (absent when empty).
 */
struct LogLineContext;  // access_log_line.h

class LogBatch {
 public:
  static constexpr size_t kFields = 21;

  /** Adds `log` as a record (numbers() and text()). */
  void add(const RequestLog& log);
  /**
   * Adds only the access-log line of `log` (lines()): JS then writes the line out, and gets
   * the metrics' part of the request summed (request_counts.h).
   */
  void addLine(const RequestLog& log, const LogLineContext& line);
  /** The record at `index` (< size()) unpacked again (tests; JS reads the packed form). */
  RequestLog at(size_t index) const;

  /** Records added (lines are not counted here). */
  size_t size() const { return numbers_.size() / kFields; }
  bool empty() const { return numbers_.empty(); }
  const std::vector<double>& numbers() const { return numbers_; }
  const std::string& text() const { return text_; }
  /** The access-log lines added (UTF-8). */
  const std::string& lines() const { return lines_; }

 private:
  void addString(const std::string& s, bool present = true);

  std::vector<double> numbers_;
  std::string text_;
  std::string lines_;
};

}  // namespace interpose::http_fast_path
