#include "http_fast_path/request_counts.h"

namespace interpose::http_fast_path {

void RequestCounts::add(const RequestLog& l) {
  Row* row = nullptr;
  for (Row& r : rows_) {
    if (r.code == l.code && r.cluster == l.cluster) {
      row = &r;
      break;
    }
  }
  if (row == nullptr) {
    rows_.emplace_back();
    row = &rows_.back();
    row->cluster = l.cluster;
    row->code = l.code;
  }
  row->requests++;
  row->bytes_received += l.bytes_received;
  row->bytes_sent += l.bytes_sent;
  row->connections += l.upstream_connections;
  row->failures += l.connect_failures;
  row->retries += l.retries;
  // As JS reads a record's flags (http-fast-path.ts count()): URX anywhere among them.
  if (l.flags.find("URX") != std::string::npos) row->retry_limit_exceeded++;
  if (l.retry_abandoned) row->retry_abandoned++;
  requests_++;
}

std::vector<double> RequestCounts::numbers() const {
  std::vector<double> out;
  out.reserve(rows_.size() * kFields);
  for (const Row& r : rows_) {
    out.push_back(r.code);
    for (const uint64_t n : {r.requests, r.bytes_received, r.bytes_sent, r.connections, r.failures, r.retries,
                             r.retry_limit_exceeded, r.retry_abandoned, static_cast<uint64_t>(r.cluster.size())}) {
      out.push_back(static_cast<double>(n));
    }
  }
  return out;
}

std::string RequestCounts::text() const {
  std::string out;
  for (const Row& r : rows_) out += r.cluster;
  return out;
}

}  // namespace interpose::http_fast_path
