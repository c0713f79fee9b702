#include "http_fast_path/access_log_line.h"

#include <time.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace interpose::http_fast_path {
namespace {

template <typename Int>
void appendInt(std::string& out, Int v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// Latin1 text (one byte per character) as UTF-8.
void appendUtf8(std::string& out, std::string_view s) {
  size_t plain = 0;
  while (plain < s.size() && static_cast<unsigned char>(s[plain]) < 0x80) plain++;
  out.append(s.data(), plain);
  for (size_t i = plain; i < s.size(); i++) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x80) {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back(static_cast<char>(0xc0 | (ch >> 6)));
      out.push_back(static_cast<char>(0x80 | (ch & 0x3f)));
    }
  }
}

// formatText()'s dash(): "-" for a value that is absent or empty.
void appendOrDash(std::string& out, std::string_view s, bool present = true) {
  if (!present || s.empty()) out.push_back('-');
  else appendUtf8(out, s);
}

// Math.round(): the nearest integer, halves up.
int64_t roundHalfUp(double x) {
  const double f = std::floor(x);
  return static_cast<int64_t>(x - f >= 0.5 ? f + 1 : f);
}

}  // namespace

void appendIsoTime(std::string& out, double ms) {
  // new Date(ms) truncates towards zero; the text is of that whole millisecond.
  const auto t = static_cast<int64_t>(std::trunc(ms));
  int64_t second = t / 1000;
  int64_t milli = t % 1000;
  if (milli < 0) milli += 1000, second -= 1;
  // A busy proxy logs thousands of lines in the same second: its text is made once.
  static thread_local int64_t cached_second = INT64_MIN;
  static thread_local char cached[40];
  static thread_local size_t cached_len = 0;
  if (second != cached_second) {
    const auto secs = static_cast<time_t>(second);
    tm parts{};
    gmtime_r(&secs, &parts);
    const int64_t year = static_cast<int64_t>(parts.tm_year) + 1900;
    // toISOString(): four digits for years 0 to 9999, else a sign and six digits.
    int n = year >= 0 && year <= 9999 ? snprintf(cached, sizeof cached, "%04lld", static_cast<long long>(year))
                                      : snprintf(cached, sizeof cached, "%c%06lld", year < 0 ? '-' : '+', static_cast<long long>(year < 0 ? -year : year));
    n += snprintf(cached + n, sizeof cached - static_cast<size_t>(n), "-%02d-%02dT%02d:%02d:%02d.", parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
                  parts.tm_min, parts.tm_sec);
    cached_len = static_cast<size_t>(n);
    cached_second = second;
  }
  out.append(cached, cached_len);
  const char digits[4] = {static_cast<char>('0' + milli / 100), static_cast<char>('0' + milli / 10 % 10), static_cast<char>('0' + milli % 10), 'Z'};
  out.append(digits, sizeof digits);
}

void appendAccessLogLine(std::string& out, const RequestLog& l, const LogLineContext& ctx) {
  out.push_back('[');
  appendIsoTime(out, l.start_ms);
  out.append("] \"");
  if (l.method.empty()) {
    out.append("- - -");
  } else {
    appendUtf8(out, l.method);
    out.push_back(' ');
    appendOrDash(out, l.path);
    out.push_back(' ');
    appendOrDash(out, ctx.protocol);
  }
  out.append("\" ");
  appendInt(out, l.code);
  out.push_back(' ');
  appendOrDash(out, l.flags);
  out.push_back(' ');
  appendInt(out, l.bytes_received);
  out.push_back(' ');
  appendInt(out, l.bytes_sent);
  out.push_back(' ');
  appendInt(out, roundHalfUp(l.duration_ms));
  out.push_back(' ');
  if (l.upstream_service_ms < 0) out.push_back('-');
  else appendInt(out, l.upstream_service_ms);
  out.append(" \"");
  appendOrDash(out, l.forwarded_for, l.has_forwarded_for);
  out.append("\" \"");
  appendOrDash(out, l.user_agent, l.has_user_agent);
  out.append("\" \"");
  appendOrDash(out, l.request_id);
  out.append("\" \"");
  appendOrDash(out, l.authority);
  out.append("\" \"");
  appendOrDash(out, l.upstream_host);
  out.append("\" ");
  appendOrDash(out, l.cluster);
  out.push_back(' ');
  appendOrDash(out, l.upstream_local);
  out.push_back(' ');
  appendOrDash(out, ctx.downstream_local);
  out.push_back(' ');
  appendOrDash(out, ctx.downstream_remote);
  out.append(" -\n");  // requested server name: none on plaintext HTTP
}

}  // namespace interpose::http_fast_path
