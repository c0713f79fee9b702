// What the metrics count of the requests the fast path finished, summed on the loop thread per
// (cluster, response code) for the crossing to the JS thread.
//
// Why summed here: with the access-log lines rendered natively (or no access log), JS needs
// of each request only what it adds to counters. Decoding a record per request, only to add
// it to a per-cluster sum, was most of what the JS thread still did per request; summed, a
// batch is a few rows whatever its size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "http_fast_path/log_batch.h"

namespace interpose::http_fast_path {

class RequestCounts {
 public:
  /**
   * Numbers per row, in this order (src/proxy/native-http-fast-path.linux.ts decodeCounts()
   * reads them by the same indexes):
   *   0 code, 1 requests, 2 bytesReceived, 3 bytesSent, 4 upstreamConnections,
   *   5 connectFailures, 6 retries, 7 retryLimitExceeded (requests flagged URX),
   *   8 retryAbandoned, 9 the length of the row's cluster in text().
   */
  static constexpr size_t kFields = 10;

  void add(const RequestLog& log);

  /** Requests added. */
  size_t requests() const { return requests_; }
  bool empty() const { return requests_ == 0; }
  /** The rows packed: kFields numbers each, and their clusters back to back. */
  std::vector<double> numbers() const;
  std::string text() const;

 private:
  struct Row {
    std::string cluster;
    int code = 0;
    uint64_t requests = 0, bytes_received = 0, bytes_sent = 0, connections = 0, failures = 0, retries = 0;
    uint64_t retry_limit_exceeded = 0, retry_abandoned = 0;
  };
  // Few rows per batch (one per cluster and code seen): searched in order.
  std::vector<Row> rows_;
  size_t requests_ = 0;
};

}  // namespace interpose::http_fast_path
