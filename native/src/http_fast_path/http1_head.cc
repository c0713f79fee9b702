#include "http_fast_path/http1_head.h"

namespace interpose::http_fast_path {
namespace {

// RFC 9110 §5.6.2 tchar.
bool isTchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

// A field value byte: VCHAR, SP, HTAB or obs-text (RFC 9110 §5.5).
bool isValueByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// The index of the CRLF ending the line that starts at `from`, or npos when the line is not
// complete. A bare LF or a lone CR is refused (*bad).
size_t lineEnd(std::string_view in, size_t from, bool* bad) {
  for (size_t i = from; i < in.size(); i++) {
    if (in[i] == '\n') {
      *bad = true;
      return std::string_view::npos;
    }
    if (in[i] == '\r') {
      if (i + 1 >= in.size()) return std::string_view::npos;
      if (in[i + 1] != '\n') *bad = true;
      return *bad ? std::string_view::npos : i;
    }
  }
  return std::string_view::npos;
}

std::string_view trimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Header lines from `pos` to the empty line; sets *head_length past it.
ParseStatus parseFields(std::string_view in, size_t pos, std::vector<HeaderField>* fields, size_t* head_length) {
  fields->clear();
  for (;;) {
    bool bad = false;
    const size_t end = lineEnd(in, pos, &bad);
    if (bad) return ParseStatus::kUnsupported;
    if (end == std::string_view::npos) return ParseStatus::kNeedMore;
    if (end == pos) {
      *head_length = end + 2;
      return ParseStatus::kDone;
    }
    const std::string_view line = in.substr(pos, end - pos);
    // obs-fold (a line starting with whitespace) is refused (RFC 9112 §5.2).
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return ParseStatus::kUnsupported;
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!isTchar(static_cast<unsigned char>(c))) return ParseStatus::kUnsupported;
    }
    const std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      if (!isValueByte(static_cast<unsigned char>(c))) return ParseStatus::kUnsupported;
    }
    fields->push_back({name, trimOws(value)});
    pos = end + 2;
  }
}

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

ParseStatus parseRequestHead(std::string_view in, RequestHead* out) {
  bool bad = false;
  const size_t end = lineEnd(in, 0, &bad);
  if (bad) return ParseStatus::kUnsupported;
  // The request line is checked as far as it has arrived, so an h2c preface or TLS bytes are
  // refused at once rather than waited on.
  const std::string_view line = end == std::string_view::npos ? in : in.substr(0, end);
  const size_t sp1 = line.find(' ');
  const std::string_view method = line.substr(0, sp1);
  for (char c : method) {
    if (!isTchar(static_cast<unsigned char>(c))) return ParseStatus::kUnsupported;
  }
  if (sp1 == std::string_view::npos) return end == std::string_view::npos ? ParseStatus::kNeedMore : ParseStatus::kUnsupported;
  if (method.empty()) return ParseStatus::kUnsupported;
  const size_t sp2 = line.find(' ', sp1 + 1);
  const std::string_view target = line.substr(sp1 + 1, sp2 == std::string_view::npos ? std::string_view::npos : sp2 - sp1 - 1);
  if (!target.empty() && target.front() != '/') return ParseStatus::kUnsupported;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return ParseStatus::kUnsupported;
  }
  if (end == std::string_view::npos) return ParseStatus::kNeedMore;
  if (sp2 == std::string_view::npos || target.empty() || line.substr(sp2 + 1) != "HTTP/1.1") return ParseStatus::kUnsupported;
  out->method = method;
  out->target = target;
  return parseFields(in, end + 2, &out->headers, &out->head_length);
}

ParseStatus parseResponseHead(std::string_view in, ResponseHead* out) {
  bool bad = false;
  const size_t end = lineEnd(in, 0, &bad);
  if (bad) return ParseStatus::kUnsupported;
  if (end == std::string_view::npos) return in.size() > 8 && in.substr(0, 7) != "HTTP/1." ? ParseStatus::kUnsupported : ParseStatus::kNeedMore;
  const std::string_view line = in.substr(0, end);
  // "HTTP/1.x DDD reason", reason possibly empty (and the space before it optional).
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ') {
    return ParseStatus::kUnsupported;
  }
  int status = 0;
  for (size_t i = 9; i < 12; i++) {
    if (line[i] < '0' || line[i] > '9') return ParseStatus::kUnsupported;
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return ParseStatus::kUnsupported;
  std::string_view reason;
  if (line.size() > 12) {
    if (line[12] != ' ') return ParseStatus::kUnsupported;
    reason = line.substr(13);
    for (char c : reason) {
      if (!isValueByte(static_cast<unsigned char>(c))) return ParseStatus::kUnsupported;
    }
  }
  out->version_minor = line[7] - '0';
  out->status = status;
  out->reason = reason;
  return parseFields(in, end + 2, &out->headers, &out->head_length);
}

}  // namespace interpose::http_fast_path
