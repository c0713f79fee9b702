// A small, strict HTTP/1.1 message-head parser for the native fast path (fast_path.h).
//
// Strict on purpose: the fast path only serves requests it understands completely, and hands
// everything else back to Node's own HTTP server (llhttp), which then answers exactly as the
// JS path always did. So anything this parser does not accept — bare LF line ends, obs-fold,
// control bytes, a request target that is not origin form, any version but HTTP/1.1 — is
// reported as kUnsupported rather than guessed at (RFC 9112 §2.2, §3, §5).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>
#include <vector>

namespace interpose::http_fast_path {

enum class ParseStatus {
  kNeedMore,     // no complete head yet (and none of it is refused so far)
  kDone,         // a complete head; head_length bytes of the input
  kUnsupported,  // not something the fast path serves: hand the connection back
};

struct HeaderField {
  std::string_view name;   // as sent (case kept)
  std::string_view value;  // leading and trailing whitespace removed
};

struct RequestHead {
  std::string_view method;
  std::string_view target;  // origin form: starts with '/'
  std::vector<HeaderField> headers;
  size_t head_length = 0;   // through the empty line
};

struct ResponseHead {
  int version_minor = 1;    // HTTP/1.x
  int status = 0;
  std::string_view reason;
  std::vector<HeaderField> headers;
  size_t head_length = 0;
};

/** Parses a request head at the start of `in`. Views point into `in`. */
ParseStatus parseRequestHead(std::string_view in, RequestHead* out);

/** Parses a response head (HTTP/1.0 or 1.1) at the start of `in`. Views point into `in`. */
ParseStatus parseResponseHead(std::string_view in, ResponseHead* out);

/** ASCII case-insensitive equality. */
bool equalsIgnoreCase(std::string_view a, std::string_view b);

/**
 * A chunked body decoder (RFC 9112 §7.1): feed it bytes, it says how many belong to the body
 * and which of them are data. Chunk extensions and trailers are read and dropped, as Node's
 * server drops them when it re-frames a relayed body.
 */
class ChunkedDecoder {
 public:
  enum class Result { kOk, kDone, kError };
  /**
   * Consumes bytes from `in` (sets *consumed); data bytes go to `on_data(ptr, len)`. kDone
   * once the last chunk and trailers are through (bytes after them are not consumed).
   */
  template <typename F>
  Result feed(std::string_view in, size_t* consumed, F&& on_data);

 private:
  enum class State { kSize, kExt, kSizeLf, kData, kDataCr, kDataLf, kTrailerStart, kTrailerLine, kTrailerLf, kLastLf, kDone };
  State state_ = State::kSize;
  unsigned long long remaining_ = 0;
  int size_digits_ = 0;
};

template <typename F>
ChunkedDecoder::Result ChunkedDecoder::feed(std::string_view in, size_t* consumed, F&& on_data) {
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    switch (state_) {
      case State::kSize: {
        int digit = -1;
        if (c >= '0' && c <= '9') digit = c - '0';
        else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        if (digit >= 0) {
          // 15 hex digits bound the size well below overflow.
          if (++size_digits_ > 15) return *consumed = i, Result::kError;
          remaining_ = remaining_ * 16 + static_cast<unsigned>(digit);
          i++;
        } else if (size_digits_ == 0) {
          return *consumed = i, Result::kError;
        } else if (c == ';') {
          state_ = State::kExt;
          i++;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
          i++;
        } else {
          return *consumed = i, Result::kError;
        }
        break;
      }
      case State::kExt:
        if (c == '\r') state_ = State::kSizeLf;
        else if (c == '\n' || (static_cast<unsigned char>(c) < 0x20 && c != '\t')) return *consumed = i, Result::kError;
        i++;
        break;
      case State::kSizeLf:
        if (c != '\n') return *consumed = i, Result::kError;
        i++;
        size_digits_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;
        break;
      case State::kData: {
        const size_t take = static_cast<size_t>(std::min<unsigned long long>(remaining_, in.size() - i));
        on_data(in.data() + i, take);
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c != '\r') return *consumed = i, Result::kError;
        state_ = State::kDataLf;
        i++;
        break;
      case State::kDataLf:
        if (c != '\n') return *consumed = i, Result::kError;
        state_ = State::kSize;
        i++;
        break;
      case State::kTrailerStart:
        if (c == '\r') state_ = State::kLastLf;
        else state_ = State::kTrailerLine;
        i++;
        break;
      case State::kTrailerLine:
        if (c == '\r') state_ = State::kTrailerLf;
        i++;
        break;
      case State::kTrailerLf:
        if (c != '\n') return *consumed = i, Result::kError;
        state_ = State::kTrailerStart;
        i++;
        break;
      case State::kLastLf:
        if (c != '\n') return *consumed = i, Result::kError;
        state_ = State::kDone;
        i++;
        return *consumed = i, Result::kDone;
      case State::kDone:
        return *consumed = i, Result::kDone;
    }
  }
  *consumed = i;
  return state_ == State::kDone ? Result::kDone : Result::kOk;
}

}  // namespace interpose::http_fast_path
