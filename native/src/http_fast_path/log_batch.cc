#include "http_fast_path/log_batch.h"

#include "http_fast_path/access_log_line.h"

namespace interpose::http_fast_path {

void LogBatch::addString(const std::string& s, bool present) {
  numbers_.push_back(present ? static_cast<double>(s.size()) : -1.0);
  if (present) text_.append(s);
}

void LogBatch::addLine(const RequestLog& l, const LogLineContext& line) { appendAccessLogLine(lines_, l, line); }

void LogBatch::add(const RequestLog& l) {
  numbers_.push_back(l.conn_id);
  numbers_.push_back(l.start_ms);
  numbers_.push_back(l.code);
  numbers_.push_back(static_cast<double>(l.bytes_received));
  numbers_.push_back(static_cast<double>(l.bytes_sent));
  numbers_.push_back(l.duration_ms);
  numbers_.push_back(static_cast<double>(l.upstream_service_ms < 0 ? -1 : l.upstream_service_ms));
  numbers_.push_back(l.upstream_connections);
  numbers_.push_back(l.connect_failures);
  numbers_.push_back(l.retries);
  numbers_.push_back(l.retry_abandoned ? 1 : 0);
  addString(l.method);
  addString(l.path);
  addString(l.authority);
  addString(l.user_agent, l.has_user_agent);
  addString(l.forwarded_for, l.has_forwarded_for);
  addString(l.request_id);
  addString(l.flags);
  addString(l.upstream_host);
  addString(l.cluster);
  addString(l.upstream_local, !l.upstream_local.empty());
}

RequestLog LogBatch::at(size_t index) const {
  const double* n = numbers_.data() + index * kFields;
  // Where this record's strings start: after every earlier record's.
  size_t off = 0;
  for (size_t r = 0; r < index; r++) {
    for (size_t k = 11; k < kFields; k++) {
      const double len = numbers_[r * kFields + k];
      if (len > 0) off += static_cast<size_t>(len);
    }
  }
  size_t k = 11;
  auto next = [&](std::string* out) {
    const double len = n[k++];
    if (len < 0) return false;
    out->assign(text_, off, static_cast<size_t>(len));
    off += static_cast<size_t>(len);
    return true;
  };
  RequestLog l;
  l.conn_id = static_cast<uint32_t>(n[0]);
  l.start_ms = n[1];
  l.code = static_cast<int>(n[2]);
  l.bytes_received = static_cast<uint64_t>(n[3]);
  l.bytes_sent = static_cast<uint64_t>(n[4]);
  l.duration_ms = n[5];
  l.upstream_service_ms = static_cast<int64_t>(n[6]);
  l.upstream_connections = static_cast<uint32_t>(n[7]);
  l.connect_failures = static_cast<uint32_t>(n[8]);
  l.retries = static_cast<uint32_t>(n[9]);
  l.retry_abandoned = n[10] != 0;
  next(&l.method);
  next(&l.path);
  next(&l.authority);
  l.has_user_agent = next(&l.user_agent);
  l.has_forwarded_for = next(&l.forwarded_for);
  next(&l.request_id);
  next(&l.flags);
  next(&l.upstream_host);
  next(&l.cluster);
  next(&l.upstream_local);
  return l;
}

}  // namespace interpose::http_fast_path
