// The native HTTP/1.1 fast path (http_fast_path/) on real TCP sockets over loopback, built
// with ASan + UBSan (see CMakeLists.txt, INTERPOSE_SANITIZE_TESTS): the head parsers and the
// chunked decoder fed seeded random and mutated input; then the loop itself — a GET, pipelined
// requests, a chunked answer, a POST body, a 503 retried, a route miss answered, requests
// handed back (Upgrade, a route that is not eligible), a client aborting, a head sent a byte at
// a time, a thousand connections opened and dropped — and shutting down with connections open;
// and HTTP/2 (h2c): multiplexed streams and a request body served, a later stream to a host not
// eligible refused (RST_STREAM REFUSED_STREAM, GOAWAY), a first stream handed back with every
// byte (the client's ACK of the early SETTINGS left out), a client reset (DC), garbage after a
// served request (GOAWAY PROTOCOL_ERROR); and an HTTP/2 upstream (Route::http2, an origin on
// the project's own Http2Session): a streamed request body, an answer with trailers, a
// REFUSED_STREAM retried, an upstream reset (UC), a refused connect (UF,URX), a client reset
// mid-stream (DC), and a stream still in flight at shutdown.
// Prints "http_fast_path_test ok" on success. Loopback only; no root needed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "http_fast_path/access_log_line.h"
#include "http_fast_path/fast_path.h"
#include "http_fast_path/http1_head.h"
#include "http_fast_path/node_headers.h"
#include "http_fast_path/http2_session.h"

namespace fp = interpose::http_fast_path;

namespace {

// ---- parser fuzzing -------------------------------------------------------------------------

void fuzzParsers(uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::string valid_req = "POST /a?b=c HTTP/1.1\r\nHost: x.example\r\nContent-Length: 3\r\nX-A:  v \r\n\r\nabc";
  const std::string valid_res = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nT: x\r\n\r\n";
  fp::RequestHead rh;
  CHECK(fp::parseRequestHead(valid_req, &rh) == fp::ParseStatus::kDone);
  CHECK(rh.method == "POST" && rh.target == "/a?b=c" && rh.headers.size() == 3 && rh.headers[2].value == "v");
  CHECK(fp::parseRequestHead("GET / HTTP/1.1\nHost: x\n\n", &rh) == fp::ParseStatus::kUnsupported);
  CHECK(fp::parseRequestHead("GET http://x/ HTTP/1.1\r\n\r\n", &rh) == fp::ParseStatus::kUnsupported);
  CHECK(fp::parseRequestHead("GET / HTTP/1.0\r\n\r\n", &rh) == fp::ParseStatus::kUnsupported);
  CHECK(fp::parseRequestHead("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", &rh) == fp::ParseStatus::kUnsupported);
  CHECK(fp::parseRequestHead("PRI * HTTP/2.0\r\n", &rh) == fp::ParseStatus::kUnsupported);
  CHECK(fp::parseRequestHead("GET / HTTP/1.1\r\nHost: x\r\n", &rh) == fp::ParseStatus::kNeedMore);
  fp::ResponseHead sh;
  CHECK(fp::parseResponseHead(valid_res, &sh) == fp::ParseStatus::kDone && sh.status == 200 && sh.reason == "OK");
  CHECK(fp::parseResponseHead("HTTP/1.1 204\r\n\r\n", &sh) == fp::ParseStatus::kDone && sh.status == 204 && sh.reason.empty());
  fp::ChunkedDecoder dec;
  std::string body;
  size_t used = 0;
  CHECK(fp::parseResponseHead(valid_res, &sh) == fp::ParseStatus::kDone);
  const std::string chunked = valid_res.substr(sh.head_length);
  // Byte by byte: the decoder keeps its state across feeds.
  fp::ChunkedDecoder::Result r = fp::ChunkedDecoder::Result::kOk;
  for (size_t i = 0; i < chunked.size() && r == fp::ChunkedDecoder::Result::kOk; i++) {
    r = dec.feed(std::string_view(chunked).substr(i, 1), &used, [&body](const char* p, size_t n) { body.append(p, n); });
  }
  CHECK(r == fp::ChunkedDecoder::Result::kDone && body == "hello");

  const char alphabet[] = "GETPOS /:\r\n \tHTP1.0ab;=-Content-Length chunked\x80\x01\xff";
  for (int i = 0; i < 20000; i++) {
    std::string s = (i % 3 == 0) ? valid_req : (i % 3 == 1) ? valid_res : std::string();
    const size_t edits = rng() % 8;
    for (size_t e = 0; e < edits || s.empty(); e++) {
      const char c = alphabet[rng() % (sizeof alphabet - 1)];
      if (s.empty() || rng() % 3 == 0) s.insert(s.empty() ? 0 : rng() % s.size(), 1, c);
      else if (rng() % 2 == 0) s[rng() % s.size()] = c;
      else s.erase(rng() % s.size(), 1);
    }
    fp::RequestHead a;
    fp::ResponseHead b;
    const auto ra = fp::parseRequestHead(s, &a);
    if (ra == fp::ParseStatus::kDone) CHECK(a.head_length <= s.size());
    const auto rb = fp::parseResponseHead(s, &b);
    if (rb == fp::ParseStatus::kDone) CHECK(b.head_length <= s.size());
    fp::ChunkedDecoder d;
    size_t n = 0, data = 0;
    d.feed(s, &n, [&data](const char*, size_t len) { data += len; });
    CHECK(n <= s.size() && data <= s.size());
  }
}

// ---- sockets --------------------------------------------------------------------------------

int listenLoopback(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  CHECK(listen(fd, 1024) == 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

int connectTo(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  CHECK(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

// Reads until `done(text)` or 3 s or the peer's close.
template <typename F>
std::string readUntil(int fd, F done) {
  std::string got;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!done(got) && std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// The origin: one thread per connection, answers by path, keeps connections alive.
struct Origin {
  int fd = -1;
  uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::atomic<int> flaky{0};
  std::thread thread;
  std::vector<std::thread> workers;
  std::mutex mu;

  void start() {
    fd = listenLoopback(&port);
    thread = std::thread([this] {
      for (;;) {
        const int c = accept(fd, nullptr, nullptr);
        if (c < 0 || stop) {
          if (c >= 0) close(c);
          return;
        }
        std::lock_guard<std::mutex> lock(mu);
        workers.emplace_back([this, c] { serve(c); });
      }
    });
  }

  void serve(int c) {
    std::string in;
    for (;;) {
      const size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) {
        char buf[4096];
        const ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
        continue;
      }
      const std::string head = in.substr(0, end);
      size_t len = 0;
      const size_t cl = head.find("content-length: ");
      if (cl != std::string::npos) len = std::strtoul(head.c_str() + cl + 16, nullptr, 10);
      while (in.size() < end + 4 + len) {
        char buf[4096];
        const ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) {
          close(c);
          return;
        }
        in.append(buf, static_cast<size_t>(n));
      }
      const std::string body = in.substr(end + 4, len);
      in.erase(0, end + 4 + len);
      std::string out;
      if (head.rfind("GET /chunked ", 0) == 0) {
        out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
      } else if (head.rfind("GET /flaky ", 0) == 0 && flaky++ % 2 == 0) {
        out = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
      } else if (head.rfind("GET /midclose ", 0) == 0) {
        out = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial";
        send(c, out.data(), out.size(), MSG_NOSIGNAL);
        break;
      } else if (head.rfind("GET /eof ", 0) == 0) {
        out = "HTTP/1.1 200 OK\r\n\r\nuntil-close";
        send(c, out.data(), out.size(), MSG_NOSIGNAL);
        break;
      } else {
        out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(2 + body.size()) + "\r\n\r\nok" + body;
      }
      send(c, out.data(), out.size(), MSG_NOSIGNAL);
    }
    close(c);
  }

  void finish() {
    stop = true;
    const int c = connectTo(port);
    close(c);
    thread.join();
    close(fd);
    std::lock_guard<std::mutex> lock(mu);
    for (auto& w : workers) w.join();
  }
};

// An h2c origin on one thread (one connection at a time), framed by the fast path's own
// server session: answers each request when its body is complete with "ok" + the body and
// gRPC-style trailers; /refuse-once is refused (REFUSED_STREAM) every other time, /reset reset,
// /hang never answered.
struct H2Origin : fp::Http2Session::Listener {
  int fd = -1;
  uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::atomic<int> refusals{0};
  std::atomic<int> requests{0};
  std::thread thread;
  fp::Http2Session* session = nullptr;
  struct Stream {
    std::string path, body, out;
    size_t off = 0;
    bool answered = false;
  };
  std::map<int32_t, Stream> streams;
  std::vector<std::pair<int32_t, size_t>> consumed;

  void start() {
    fd = listenLoopback(&port);
    thread = std::thread([this] {
      while (!stop) {
        const int c = accept(fd, nullptr, nullptr);
        if (c < 0 || stop) {
          if (c >= 0) close(c);
          return;
        }
        serve(c);
        close(c);
      }
    });
  }

  void serve(int c) {
    fp::Http2Session s(this, 100);
    session = &s;
    streams.clear();
    for (;;) {
      std::string out;
      if (!s.produce(&out, 1 << 20)) break;
      if (!out.empty() && send(c, out.data(), out.size(), MSG_NOSIGNAL) < 0) break;
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) {
        if (stop) break;
        continue;
      }
      char buf[16384];
      const ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0 || !s.receive(buf, static_cast<size_t>(n))) break;
      for (auto [id, len] : consumed) s.consume(id, len);
      consumed.clear();
    }
    session = nullptr;
  }

  void onRequest(int32_t id, fp::Http2Request&& r) override {
    requests++;
    Stream& st = streams[id];
    st.path = r.path;
    if (r.path == "/refuse-once" && refusals++ % 2 == 0) session->reset(id, 7);
    else if (r.path == "/reset") session->reset(id, 2);
    else if (r.end_stream) answer(id);
  }
  void onData(int32_t id, const char* data, size_t len) override {
    streams[id].body.append(data, len);
    consumed.emplace_back(id, len);
  }
  void onEndStream(int32_t id) override { answer(id); }
  void onStreamClose(int32_t id, uint32_t) override { streams.erase(id); }
  void answer(int32_t id) {
    Stream& st = streams[id];
    if (st.answered || st.path == "/hang" || st.path == "/reset") return;
    st.answered = true;
    st.out = "ok" + st.body;
    session->respond(id, {{":status", "200"}, {"content-type", "application/grpc"}}, true);
  }
  long readBody(int32_t id, char* buf, size_t len, bool* eof) override {
    Stream& st = streams[id];
    const size_t n = std::min(len, st.out.size() - st.off);
    memcpy(buf, st.out.data() + st.off, n);
    st.off += n;
    *eof = st.off == st.out.size();
    return static_cast<long>(n);
  }
  bool trailers(int32_t, std::vector<std::pair<std::string, std::string>>* out) override {
    *out = {{"grpc-status", "0"}, {"grpc-message", "fine"}};
    return true;
  }

  void finish() {
    stop = true;
    const int c = connectTo(port);
    close(c);
    thread.join();
    close(fd);
  }
};

// What the fast path reported, for the test's thread to wait on.
struct Reports {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<fp::RequestLog> logs;
  std::vector<fp::HandBack> handbacks;
  std::vector<uint32_t> closed;
  std::vector<fp::RouteMiss> misses;

  template <typename P>
  bool waitFor(P pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(5), pred);
  }
};

}  // namespace

// LogBatch packs records for JS: each comes back as it went in, absent strings absent,
// empty ones empty, whatever the records before it held.
void logBatchRoundTrip() {
  fp::LogBatch batch;
  fp::RequestLog a;
  a.conn_id = 7;
  a.start_ms = 1733450000123.5;
  a.method = "GET";
  a.path = "/a?q=\xff";
  a.authority = "httpbin.example:8080";
  a.has_user_agent = true;
  a.user_agent = "";  // present but empty: not the same as absent
  a.request_id = "0f0e0d0c-0b0a-4908-8706-050403020100";
  a.code = 200;
  a.bytes_received = 1ull << 40;
  a.bytes_sent = 3;
  a.duration_ms = 1.25;
  a.upstream_service_ms = 0;
  a.upstream_host = "192.0.2.1:8080";
  a.cluster = "outbound|8080||httpbin.example";
  a.upstream_local = "192.0.2.9:41000";
  a.upstream_connections = 1;
  a.retries = 2;
  fp::RequestLog b;
  b.conn_id = 0x80000001u;
  b.method = "POST";
  b.has_forwarded_for = true;
  b.forwarded_for = "198.51.100.1, 198.51.100.2";
  b.flags = "UF,URX";
  b.connect_failures = 3;
  b.retry_abandoned = true;
  batch.add(a);
  batch.add(b);
  CHECK(batch.size() == 2);
  const fp::RequestLog x = batch.at(0), y = batch.at(1);
  CHECK(x.conn_id == 7 && x.start_ms == a.start_ms && x.method == "GET" && x.path == a.path && x.authority == a.authority);
  CHECK(x.has_user_agent && x.user_agent.empty() && !x.has_forwarded_for && x.request_id == a.request_id);
  CHECK(x.code == 200 && x.flags == "-" && x.bytes_received == (1ull << 40) && x.bytes_sent == 3 && x.duration_ms == 1.25);
  CHECK(x.upstream_service_ms == 0 && x.upstream_host == a.upstream_host && x.cluster == a.cluster && x.upstream_local == a.upstream_local);
  CHECK(x.upstream_connections == 1 && x.retries == 2 && x.connect_failures == 0 && !x.retry_abandoned);
  CHECK(y.conn_id == 0x80000001u && y.method == "POST" && y.path.empty() && !y.has_user_agent && y.has_forwarded_for);
  CHECK(y.forwarded_for == b.forwarded_for && y.flags == "UF,URX" && y.upstream_service_ms == -1 && y.upstream_local.empty());
  CHECK(y.connect_failures == 3 && y.retry_abandoned);
  // The JS side reads the same layout: numbers per record and the strings back to back.
  CHECK(batch.numbers().size() == 2 * fp::LogBatch::kFields);
  CHECK(batch.text().rfind("GET/a?q=", 0) == 0);
}

// RequestCounts sums per (cluster, code): one row for each pair seen, in first-seen order, and
// every request's numbers in its row; URX counted wherever it stands among the flags.
void requestCountsSum() {
  fp::RequestCounts counts;
  CHECK(counts.empty() && counts.numbers().empty() && counts.text().empty());
  auto request = [](const char* cluster, int code, uint64_t in, const char* flags) {
    fp::RequestLog l;
    l.cluster = cluster;
    l.code = code;
    l.bytes_received = in;
    l.bytes_sent = 2 * in;
    l.flags = flags;
    return l;
  };
  fp::RequestLog a = request("outbound|80||a.example", 200, 10, "-");
  a.upstream_connections = 1;
  a.retries = 2;
  counts.add(a);
  counts.add(request("outbound|80||b.example", 200, 1, "-"));
  fp::RequestLog c = request("outbound|80||a.example", 503, 5, "UF,URX");
  c.connect_failures = 3;
  c.retry_abandoned = true;
  counts.add(c);
  counts.add(request("outbound|80||a.example", 200, 1ull << 40, "URX"));
  CHECK(counts.requests() == 4 && !counts.empty());
  const std::vector<double> n = counts.numbers();
  CHECK(n.size() == 3 * fp::RequestCounts::kFields);
  const size_t k = fp::RequestCounts::kFields;
  // Row 0: a.example 200, two requests.
  CHECK(n[0] == 200 && n[1] == 2 && n[2] == static_cast<double>(10 + (1ull << 40)) && n[3] == static_cast<double>(20 + (2ull << 40)));
  CHECK(n[4] == 1 && n[5] == 0 && n[6] == 2 && n[7] == 1 && n[8] == 0 && n[9] == 22);
  // Row 1: b.example 200; row 2: a.example 503.
  CHECK(n[k] == 200 && n[k + 1] == 1 && n[k + 2] == 1 && n[k + 9] == 22);
  CHECK(n[2 * k] == 503 && n[2 * k + 1] == 1 && n[2 * k + 5] == 3 && n[2 * k + 7] == 1 && n[2 * k + 8] == 1);
  CHECK(counts.text() == "outbound|80||a.exampleoutbound|80||b.exampleoutbound|80||a.example");
}

// Node's merge of repeated fields, for heads short enough to be checked pairwise and for long
// ones (checked through a hash set): the same answer either way.
void nodeFieldMerging() {
  fp::HeaderList merged, same;  // kept across calls, as the fast path keeps its list: reused room
  for (const size_t extra : {size_t{0}, size_t{60}, size_t{2}}) {
    std::vector<std::string> names;
    for (size_t i = 0; i < extra; i++) names.push_back("x-f" + std::to_string(i));
    std::vector<std::pair<std::string_view, std::string_view>> raw = {{"Set-Cookie", "a=1"}, {"Cookie", "b"}, {"Server", "one"}};
    for (const std::string& n : names) raw.emplace_back(n, "v");
    raw.insert(raw.end(), {{"set-cookie", "c=2"}, {"cookie", "d"}, {"server", "two"}, {"X-Multi", "1"}, {"x-multi", "2"}});
    fp::nodeHttp1ResponseFields(raw, &merged);
    CHECK(merged.size() == 5 + extra);
    CHECK(merged[0] == std::make_pair(std::string("set-cookie"), std::string("a=1")));
    CHECK(merged[1] == std::make_pair(std::string("set-cookie"), std::string("c=2")));
    CHECK(merged[2] == std::make_pair(std::string("cookie"), std::string("b; d")));
    CHECK(merged[3] == std::make_pair(std::string("server"), std::string("one")));  // Node keeps the first
    CHECK(merged.back() == std::make_pair(std::string("x-multi"), std::string("1, 2")));
    // Without a repeat the list comes back as it was (lowercased).
    std::vector<std::pair<std::string_view, std::string_view>> distinct;
    for (const std::string& n : names) distinct.emplace_back(n, "v");
    distinct.emplace_back("Content-Type", "text/plain");
    fp::nodeHttp1ResponseFields(distinct, &same);
    CHECK(same.size() == extra + 1 && same.back().first == "content-type" && same.back().second == "text/plain");
    CHECK(extra == 0 || (same[0].first == "x-f0" && same[0].second == "v"));
  }
}

// The fast path's access-log lines and times as src/proxy/access-log.ts formatText() and
// new Date(ms).toISOString() write them (the expected texts are what Node 20 prints for the
// same values).
void accessLogLines() {
  const std::pair<double, const char*> times[] = {
      {0, "1970-01-01T00:00:00.000Z"},          {-1, "1969-12-31T23:59:59.999Z"},
      {1.9, "1970-01-01T00:00:00.001Z"},        {-1.9, "1969-12-31T23:59:59.999Z"},
      {253402300800000, "+010000-01-01T00:00:00.000Z"}, {253402300799999, "9999-12-31T23:59:59.999Z"},
      {-62135596800001, "0000-12-31T23:59:59.999Z"},    {-62198755200000, "-000001-01-01T00:00:00.000Z"},
      {1796528420007.6, "2026-12-06T03:40:20.007Z"},    {1796528420999, "2026-12-06T03:40:20.999Z"},
  };
  for (const auto& [ms, text] : times) {
    std::string out;
    fp::appendIsoTime(out, ms);
    CHECK(out == text);
  }
  fp::RequestLog l;
  l.start_ms = 1796528420007;
  l.method = "GET";
  l.path = "/a\xe9";
  l.code = 200;
  l.flags = "-";
  l.bytes_sent = 1024;
  l.duration_ms = 2.5;  // Math.round(): 3
  l.upstream_service_ms = 2;
  l.has_user_agent = true;
  l.user_agent = "ua\xe9";  // latin1 é, written as UTF-8 (two bytes)
  l.request_id = "id";
  l.authority = "h";
  l.upstream_host = "192.0.2.1:80";
  l.cluster = "outbound|80||h";
  std::string line;
  fp::appendAccessLogLine(line, l, {"HTTP/1.1", "192.0.2.1:80", "192.0.2.9:5000"});
  CHECK(line ==
        "[2026-12-06T03:40:20.007Z] \"GET /a\xc3\xa9 HTTP/1.1\" 200 - 0 1024 3 2 \"-\" \"ua\xc3\xa9\" \"id\" \"h\" \"192.0.2.1:80\" "
        "outbound|80||h - 192.0.2.1:80 192.0.2.9:5000 -\n");
  // Everything empty or absent: dashes; a duration just under a half rounds down.
  fp::RequestLog e;
  e.flags = "";
  e.has_forwarded_for = true;  // present but empty: a dash too
  e.duration_ms = 0.49999999999999994;
  line.clear();
  fp::appendAccessLogLine(line, e, {"HTTP/2", "", ""});
  CHECK(line == "[1970-01-01T00:00:00.000Z] \"- - -\" 0 - 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"-\" - - - - -\n");
}

int main(int argc, char** argv) {
  const uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
  fuzzParsers(seed);
  logBatchRoundTrip();
  requestCountsSum();
  nodeFieldMerging();
  accessLogLines();

  Origin origin;
  origin.start();
  uint16_t front_port = 0;
  const int front = listenLoopback(&front_port);

  Reports reports;
  fp::Options options;
  options.connect_timeout_ms = 1000;
  options.idle_ms = 2000;
  options.slow_head_ms = 1000;
  auto fast = std::make_unique<fp::FastPath>(options, [&reports](fp::Events&& e) {
    std::lock_guard<std::mutex> lock(reports.mu);
    for (auto& m : e.misses) reports.misses.push_back(std::move(m));
    for (size_t i = 0; i < e.logs.size(); i++) reports.logs.push_back(e.logs.at(i));
    for (auto& h : e.handbacks) reports.handbacks.push_back(std::move(h));
    for (uint32_t id : e.closed) reports.closed.push_back(id);
    reports.cv.notify_all();
  });
  auto route = [&origin]() {
    auto r = std::make_unique<fp::Route>();
    auto* in = reinterpret_cast<sockaddr_in*>(&r->addr);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in->sin_port = htons(origin.port);
    r->addr_len = sizeof(sockaddr_in);
    r->upstream_host = "127.0.0.1:" + std::to_string(origin.port);
    r->cluster = "outbound|80||api.example.com";
    r->decorator = "api.example.com:80/*";
    r->timeout_ms = 1500;
    r->has_retry = true;
    r->retry.retries = 2;
    r->retry.on_connect_failure = true;
    r->retry.on_status_codes = true;
    r->retry.status_codes = {503};
    return r;
  };
  // Known before any request; slow.example.com is learnt on its first request; other.example is not eligible.
  fast->setRoute(80, "api.example.com", route(), 60000);
  fast->setRoute(80, "other.example", nullptr, 60000);

  uint32_t next_id = 1;
  auto open = [&](const std::string& first) {
    const int client = connectTo(front_port);
    const int accepted = accept(front, nullptr, nullptr);
    const uint32_t id = next_id++;
    CHECK(fast->add(id, accepted, first, 80) == 0);
    close(accepted);  // the fast path holds its own dup
    return std::make_pair(client, id);
  };
  auto send_all = [](int fd, const std::string& s) { CHECK(send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size())); };
  const std::string get = "GET /x HTTP/1.1\r\nHost: api.example.com\r\n\r\n";

  {  // A GET whose head was read before the hand-over, then a pipelined pair and a chunked answer.
    auto [client, id] = open(get);
    std::string got = readUntil(client, [](const std::string& s) { return s.find("\r\n\r\nok") != std::string::npos; });
    CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(got.find("x-envoy-upstream-service-time: ") != std::string::npos);
    CHECK(got.find("Connection: keep-alive\r\nKeep-Alive: timeout=2\r\n") != std::string::npos);
    send_all(client, get + "GET /chunked HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    got = readUntil(client, [](const std::string& s) { return s.find("0\r\n\r\n") != std::string::npos; });
    CHECK(got.find("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n") != std::string::npos);
    send_all(client, "POST /p HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 4\r\n\r\nbo");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    send_all(client, "dy");
    got = readUntil(client, [](const std::string& s) { return s.find("okbody") != std::string::npos; });
    CHECK(got.find("Content-Length: 6") != std::string::npos);
    send_all(client, "GET /flaky HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    got = readUntil(client, [](const std::string& s) { return s.find("\r\n\r\nok") != std::string::npos; });
    CHECK(got.rfind("HTTP/1.1 200 OK", 0) == 0);
    send_all(client, "GET /eof HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    got = readUntil(client, [](const std::string& s) { return s.find("0\r\n\r\n") != std::string::npos; });
    CHECK(got.find("Transfer-Encoding: chunked\r\n") != std::string::npos && got.find("until-close") != std::string::npos);
    CHECK(reports.waitFor([&] { return reports.logs.size() >= 6; }));
    {
      std::lock_guard<std::mutex> lock(reports.mu);
      CHECK(reports.logs.size() == 6);
      for (const auto& l : reports.logs) CHECK(l.conn_id == id && l.code == 200 && l.flags == "-");
      CHECK(reports.logs[3].bytes_received == 4);
    }
    close(client);
    CHECK(reports.waitFor([&] { return !reports.closed.empty(); }));
  }
  {  // A route miss answered later; an Upgrade handed back with its bytes; a non-eligible authority.
    auto [client, id] = open("");
    send_all(client, "GET /y HTTP/1.1\r\nHost: slow.example.com\r\n\r\n");
    CHECK(reports.waitFor([&] { return !reports.misses.empty(); }));
    fast->setRoute(80, "slow.example.com", route(), 60000);
    std::string got = readUntil(client, [](const std::string& s) { return s.find("\r\n\r\nok") != std::string::npos; });
    CHECK(got.rfind("HTTP/1.1 200 OK", 0) == 0);
    const std::string upgrade = "GET /ws HTTP/1.1\r\nHost: api.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    send_all(client, upgrade);
    CHECK(reports.waitFor([&] { return !reports.handbacks.empty(); }));
    {
      std::lock_guard<std::mutex> lock(reports.mu);
      CHECK(reports.handbacks.size() == 1 && reports.handbacks[0].conn_id == id && reports.handbacks[0].bytes == upgrade);
      // The descriptor still works: it is the client's connection.
      send_all(reports.handbacks[0].fd, "handed");
      close(reports.handbacks[0].fd);
    }
    CHECK(readUntil(client, [](const std::string& s) { return s.find("handed") != std::string::npos; }).find("handed") != std::string::npos);
    close(client);
    auto other = open("GET / HTTP/1.1\r\nHost: other.example\r\n\r\n");
    CHECK(reports.waitFor([&] { return reports.handbacks.size() == 2; }));
    close(other.first);
  }
  {  // Upstream gone mid-answer (UC); a client aborting mid-request (DC); a head a byte at a time.
    const size_t logs_before = reports.logs.size();
    auto [c1, id1] = open("GET /midclose HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    readUntil(c1, [](const std::string& s) { return s.find("partial") != std::string::npos; });
    auto [c2, id2] = open("POST /p HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 50\r\n\r\nabc");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    close(c2);
    auto [c3, id3] = open("");
    for (char ch : get) {
      send_all(c3, std::string(1, ch));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(readUntil(c3, [](const std::string& s) { return s.find("\r\n\r\nok") != std::string::npos; }).rfind("HTTP/1.1 200", 0) == 0);
    CHECK(reports.waitFor([&] { return reports.logs.size() >= logs_before + 3; }));
    {
      std::lock_guard<std::mutex> lock(reports.mu);
      bool uc = false, dc = false;
      for (size_t i = logs_before; i < reports.logs.size(); i++) {
        if (reports.logs[i].conn_id == id1) uc = reports.logs[i].flags == "UC";
        if (reports.logs[i].conn_id == id2) dc = reports.logs[i].flags == "DC" && reports.logs[i].code == 0;
      }
      CHECK(uc);
      CHECK(dc);
    }
    close(c1);
    close(c3);
  }
  {  // A thousand connections opened and dropped, half of them mid-head; one never finishing its head.
    const size_t closed_before = reports.closed.size();
    const size_t handbacks_before = reports.handbacks.size();
    for (int i = 0; i < 1000; i++) {
      auto [c, id] = open(i % 2 ? "GET /x HTTP/1.1\r\nHo" : "");
      close(c);
    }
    CHECK(reports.waitFor([&] { return reports.closed.size() + reports.handbacks.size() >= closed_before + handbacks_before + 1000; }));
    auto [slow, slow_id] = open("GET /x HTTP/1.1\r\n");
    // Still incomplete after slow_head_ms: handed back to JS (whose own header timeout applies).
    CHECK(reports.waitFor([&] {
      for (const auto& h : reports.handbacks) {
        if (h.conn_id == slow_id) return true;
      }
      return false;
    }));
    close(slow);
  }
  {
    std::lock_guard<std::mutex> lock(reports.mu);
    for (size_t i = 2; i < reports.handbacks.size(); i++) close(reports.handbacks[i].fd);
  }
  int h2_left = -1;
  int h2_left_up = -1;
  H2Origin h2origin;
  {  // HTTP/2 (h2c), frames written and read by hand.
    struct Frame {
      uint8_t type, flags;
      uint32_t stream;
      std::string payload;
    };
    auto frame = [](uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
      std::string f;
      f.push_back(static_cast<char>(payload.size() >> 16));
      f.push_back(static_cast<char>(payload.size() >> 8));
      f.push_back(static_cast<char>(payload.size()));
      f.push_back(static_cast<char>(type));
      f.push_back(static_cast<char>(flags));
      for (int shift = 24; shift >= 0; shift -= 8) f.push_back(static_cast<char>(stream >> shift));
      return f + payload;
    };
    // HPACK literal without indexing, name by static index (RFC 7541 §6.2.2), short values.
    auto lit = [](unsigned index, const std::string& v) {
      std::string s;
      if (index < 15) {
        s.push_back(static_cast<char>(index));
      } else {
        s.push_back(0x0f);
        s.push_back(static_cast<char>(index - 15));
      }
      s.push_back(static_cast<char>(v.size()));
      return s + v;
    };
    // :method GET (0x82) or POST (0x83), :scheme http (0x86), :authority (1), :path (4), content-length (28).
    auto request = [&](uint32_t stream, bool post, const std::string& path, const std::string& authority, const std::string& length = "") {
      std::string block = std::string(1, post ? '\x83' : '\x82') + "\x86" + lit(1, authority) + lit(4, path);
      if (!length.empty()) block += lit(28, length);
      return frame(1, post ? 0x4 : 0x5, stream, block);  // END_HEADERS, and END_STREAM for a GET
    };
    auto parse = [](const std::string& bytes) {
      std::vector<Frame> out;
      size_t i = 0;
      while (bytes.size() - i >= 9) {
        const auto len = (static_cast<size_t>(static_cast<uint8_t>(bytes[i])) << 16) | (static_cast<size_t>(static_cast<uint8_t>(bytes[i + 1])) << 8) |
                         static_cast<uint8_t>(bytes[i + 2]);
        if (bytes.size() - i < 9 + len) break;
        uint32_t stream = 0;
        for (size_t k = 5; k < 9; k++) stream = (stream << 8) | static_cast<uint8_t>(bytes[i + k]);
        out.push_back({static_cast<uint8_t>(bytes[i + 3]), static_cast<uint8_t>(bytes[i + 4]), stream & 0x7fffffffu, bytes.substr(i + 9, len)});
        i += 9 + len;
      }
      return out;
    };
    auto u32 = [](const std::string& p, size_t at) {
      uint32_t v = 0;
      for (size_t k = at; k < at + 4; k++) v = (v << 8) | static_cast<uint8_t>(p[k]);
      return v;
    };
    // The body of `stream` once complete (END_STREAM on DATA), else empty.
    auto bodyOf = [&](const std::string& bytes, uint32_t stream) {
      std::string body;
      for (const Frame& f : parse(bytes)) {
        if (f.type == 0 && f.stream == stream) {
          body += f.payload;
          if (f.flags & 1) return body + "<end>";
        }
      }
      return std::string();
    };
    auto openH2 = [&](const std::string& first) {
      const int client = connectTo(front_port);
      const int accepted = accept(front, nullptr, nullptr);
      const uint32_t id = next_id++;
      CHECK(fast->add(id, accepted, first, 80, true) == 0);
      close(accepted);
      return std::make_pair(client, id);
    };
    const std::string preface = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + frame(4, 0, 0, "");
    const size_t logs_before = reports.logs.size();

    // Two multiplexed GETs and a POST with its body in a later DATA frame: served.
    auto [c, id] = openH2(preface + request(1, false, "/x", "api.example.com") + request(3, false, "/chunked", "api.example.com"));
    send_all(c, request(5, true, "/p", "api.example.com", "4") + frame(0, 0, 5, "bo"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    send_all(c, frame(0, 1, 5, "dy"));
    std::string got = readUntil(c, [&](const std::string& s) { return !bodyOf(s, 1).empty() && !bodyOf(s, 3).empty() && !bodyOf(s, 5).empty(); });
    CHECK(bodyOf(got, 1) == "ok<end>");
    CHECK(bodyOf(got, 3) == "abcde<end>");
    CHECK(bodyOf(got, 5) == "okbody<end>");
    CHECK(parse(got).at(0).type == 4);  // our SETTINGS first, once committed
    // A later stream to a host that is not eligible: refused, and no new stream is taken.
    send_all(c, request(7, false, "/x", "other.example"));
    got = readUntil(c, [&](const std::string& s) {
      for (const Frame& f : parse(s)) {
        if (f.type == 7) return true;
      }
      return false;
    });
    bool refused = false, goaway = false;
    for (const Frame& f : parse(got)) {
      if (f.type == 3 && f.stream == 7) refused = u32(f.payload, 0) == 7;        // REFUSED_STREAM
      if (f.type == 7) goaway = u32(f.payload, 0) == 5 && u32(f.payload, 4) == 0;  // last stream 5, NO_ERROR
    }
    CHECK(refused);
    CHECK(goaway);
    close(c);
    CHECK(reports.waitFor([&] { return reports.logs.size() >= logs_before + 3; }));
    {
      std::lock_guard<std::mutex> lock(reports.mu);
      for (size_t i = logs_before; i < reports.logs.size(); i++) CHECK(reports.logs[i].conn_id == id && reports.logs[i].code == 200);
    }

    // A first stream that is not eligible: the whole connection back, every byte but the
    // client's ACK of our early SETTINGS (the one frame sent), which the hand-back waits for.
    const size_t handbacks_before = reports.handbacks.size();
    const std::string bytes = preface + request(1, false, "/x", "other.example");
    auto [c2, id2] = openH2(bytes);
    got = readUntil(c2, [&](const std::string& s) { return !parse(s).empty(); });
    CHECK(parse(got).size() == 1 && parse(got)[0].type == 4 && parse(got)[0].flags == 0);
    send_all(c2, frame(4, 1, 0, "") + frame(8, 0, 0, std::string("\0\0\x10\0", 4)));  // ACK, WINDOW_UPDATE
    CHECK(reports.waitFor([&] { return reports.handbacks.size() > handbacks_before; }));
    {
      std::lock_guard<std::mutex> lock(reports.mu);
      CHECK(reports.handbacks.back().conn_id == id2 && reports.handbacks.back().bytes == bytes + frame(8, 0, 0, std::string("\0\0\x10\0", 4)));
      close(reports.handbacks.back().fd);
    }
    pollfd p{c2, POLLIN, 0};
    CHECK(poll(&p, 1, 100) == 1 && recv(c2, &p, 1, 0) == 0);  // closed by the test, nothing more sent
    close(c2);

    // A client resetting a request mid-body (DC), then garbage: GOAWAY PROTOCOL_ERROR, closed.
    const size_t logs_mid = reports.logs.size();
    auto [c3, id3] = openH2(preface + request(1, true, "/p", "api.example.com", "50") + frame(0, 0, 1, "abc"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    send_all(c3, frame(3, 0, 1, std::string("\0\0\0\x08", 4)));  // RST_STREAM CANCEL
    CHECK(reports.waitFor([&] { return reports.logs.size() > logs_mid; }));
    {
      std::lock_guard<std::mutex> lock(reports.mu);
      CHECK(reports.logs.back().conn_id == id3 && reports.logs.back().flags == "DC" && reports.logs.back().bytes_received == 3);
    }
    send_all(c3, frame(0, 0, 0, "garbage"));
    got = readUntil(c3, [](const std::string&) { return false; });  // until closed
    bool protocol_error = false;
    for (const Frame& f : parse(got)) {
      if (f.type == 7) protocol_error = u32(f.payload, 4) == 1;
    }
    CHECK(protocol_error);
    close(c3);

    // An HTTP/2 upstream (Route::http2) for grpc.example; dead.example's refuses connections.
    h2origin.start();
    auto h2route = [&](uint16_t port) {
      auto r = route();
      reinterpret_cast<sockaddr_in*>(&r->addr)->sin_port = htons(port);
      r->upstream_host = "127.0.0.1:" + std::to_string(port);
      r->http2 = true;
      r->timeout_ms = 0;
      r->retry.on_refused_stream = true;
      return r;
    };
    uint16_t dead_port = 0;
    close(listenLoopback(&dead_port));
    fast->setRoute(80, "grpc.example", h2route(h2origin.port), 60000);
    fast->setRoute(80, "dead.example", h2route(dead_port), 60000);
    const size_t logs_h2 = reports.logs.size();
    // A streamed body (two DATA frames, the second after the answer could have begun), trailers
    // relayed; a REFUSED_STREAM retried; an upstream reset (UC, 503); a refused connect (UF,URX).
    auto [c5, id5] = openH2(preface + request(1, true, "/svc", "grpc.example") + frame(0, 0, 1, "he"));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    send_all(c5, frame(0, 1, 1, "llo") + request(3, false, "/refuse-once", "grpc.example") + request(5, false, "/reset", "grpc.example") +
                     request(7, false, "/x", "dead.example"));
    auto ended = [&](const std::string& s, uint32_t stream) {
      for (const Frame& f : parse(s)) {
        if (f.stream == stream && (f.flags & 1) && (f.type == 0 || f.type == 1)) return true;
      }
      return false;
    };
    got = readUntil(c5, [&](const std::string& s) { return ended(s, 1) && ended(s, 3) && ended(s, 5) && ended(s, 7); });
    // The DATA of `stream`, and whether a second HEADERS (the trailers) ended it.
    auto answerOf = [&](const std::string& bytes, uint32_t stream) {
      std::string body;
      int headers = 0;
      bool trailers_end = false;
      for (const Frame& f : parse(bytes)) {
        if (f.stream != stream) continue;
        if (f.type == 0) body += f.payload;
        if (f.type == 1 && ++headers == 2) trailers_end = (f.flags & 1) != 0;
      }
      return trailers_end ? body + "<trailers>" : body;
    };
    CHECK(answerOf(got, 1) == "okhello<trailers>");
    CHECK(answerOf(got, 3) == "ok<trailers>");
    CHECK(reports.waitFor([&] { return reports.logs.size() >= logs_h2 + 4; }));
    {
      std::lock_guard<std::mutex> lock(reports.mu);
      std::map<std::string, const fp::RequestLog*> by_path;
      for (size_t i = logs_h2; i < reports.logs.size(); i++) by_path[reports.logs[i].path + " " + reports.logs[i].authority] = &reports.logs[i];
      CHECK(by_path.count("/svc grpc.example") && by_path["/svc grpc.example"]->code == 200 && by_path["/svc grpc.example"]->bytes_received == 5);
      CHECK(by_path.count("/refuse-once grpc.example") && by_path["/refuse-once grpc.example"]->retries == 1 && by_path["/refuse-once grpc.example"]->code == 200);
      CHECK(by_path.count("/reset grpc.example") && by_path["/reset grpc.example"]->code == 503 && by_path["/reset grpc.example"]->flags == "UC");
      CHECK(by_path.count("/x dead.example") && by_path["/x dead.example"]->code == 503 && by_path["/x dead.example"]->flags == "UF,URX");
    }
    // A client resetting a stream whose upstream answers nothing yet: DC, the upstream stream cancelled.
    const size_t logs_dc = reports.logs.size();
    send_all(c5, request(9, false, "/hang", "grpc.example"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    send_all(c5, frame(3, 0, 9, std::string("\0\0\0\x08", 4)));
    CHECK(reports.waitFor([&] { return reports.logs.size() > logs_dc; }));
    {
      std::lock_guard<std::mutex> lock(reports.mu);
      CHECK(reports.logs.back().path == "/hang" && reports.logs.back().flags == "DC");
    }
    // Left open for the shutdown: an HTTP/2 upstream stream in flight.
    send_all(c5, request(11, false, "/hang", "grpc.example"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    h2_left_up = c5;

    // Left open for the shutdown below: a stream in flight, its upstream exchange started.
    auto [c4, id4] = openH2(preface + request(1, true, "/p", "api.example.com", "50") + frame(0, 0, 1, "abc"));
    readUntil(c4, [&](const std::string& s) { return !parse(s).empty(); });  // committed: SETTINGS came
    h2_left = c4;
  }
  // Shutting down with connections still open (and an HTTP/2 stream in flight): closed, nothing leaks.
  auto [left, left_id] = open(get);
  readUntil(left, [](const std::string& s) { return s.find("\r\n\r\nok") != std::string::npos; });
  fast.reset();
  close(left);
  close(h2_left);
  close(h2_left_up);
  h2origin.finish();
  close(front);
  origin.finish();
  if (check_failures != 0) {
    std::fprintf(stderr, "http_fast_path_test: %d checks failed\n", check_failures);
    return 1;
  }
  std::printf("http_fast_path_test ok\n");
  return 0;
}
