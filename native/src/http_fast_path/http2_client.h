// The HTTP/2 framing of one client-side cleartext connection (prior knowledge) to an upstream
// whose ServiceEntry port says HTTP2 or GRPC, for the native fast path (fast_path.h), on
// nghttp2 as http2_session.h is (and linked the same way: against the nghttp2 Node carries).
// It stands in for node:http2's ClientHttp2Session of http2-upstream.ts: many streams on one
// connection, bodies pulled from the owner and handed to it as flow control allows.
//
// Flow control is manual both ways: a response DATA byte opens the window again only once the
// owner consume()s it (it reached the client), so an upstream faster than its client is held
// by the window, never by buffers here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct nghttp2_session;

namespace interpose::http_fast_path {

class Http2Client {
 public:
  using Fields = std::vector<std::pair<std::string, std::string>>;

  class Listener {
   public:
    virtual ~Listener() = default;
    /** A final response head (":status" in `status`, other fields as received); `end`: it ended the stream. */
    virtual void onResponse(int32_t stream_id, int status, Fields&& fields, bool end) = 0;
    /** The response's trailers (the stream ends with them). */
    virtual void onTrailers(int32_t stream_id, Fields&& fields) = 0;
    virtual void onData(int32_t stream_id, const char* data, size_t len) = 0;
    /** DATA with END_STREAM (after onData): the response is complete. */
    virtual void onEnd(int32_t stream_id) = 0;
    /** The stream is gone (ended both ways, reset by either side, or refused by a GOAWAY). */
    virtual void onStreamClose(int32_t stream_id, uint32_t error_code) = 0;
    /** As Http2Session::Listener::readBody, for the request body. */
    virtual long readBody(int32_t stream_id, char* buf, size_t len, bool* eof) = 0;
  };

  /** Queues the client preface and SETTINGS (`stream_window`: the initial stream window). */
  Http2Client(Listener* listener, uint32_t stream_window, uint32_t connection_window);
  ~Http2Client();
  Http2Client(const Http2Client&) = delete;
  Http2Client& operator=(const Http2Client&) = delete;

  bool receive(const char* data, size_t len);
  bool produce(std::string* out, size_t limit);
  /** A new stream (negative on failure); `with_body` false ends it with its HEADERS. */
  int32_t request(const Fields& fields, bool with_body);
  void resume(int32_t stream_id);
  void reset(int32_t stream_id, uint32_t error_code);
  /** `n` response body bytes of `stream_id` were passed on: the window may open again. */
  void consume(int32_t stream_id, size_t n);
  /** Streams open or queued on this connection. */
  size_t streams() const;
  /** SETTINGS_MAX_CONCURRENT_STREAMS of the upstream (unbounded until its SETTINGS came). */
  uint32_t maxStreams() const;
  /** The upstream's SETTINGS arrived. */
  bool settingsKnown() const { return settings_known_; }
  /** The upstream sent GOAWAY, or the session stopped: no new stream goes here. */
  bool closedForNew() const;
  /** Neither side has anything more to say. */
  bool finished() const;

 private:
  friend struct Http2ClientCallbacks;
  Listener* listener_;
  nghttp2_session* session_ = nullptr;
  bool goaway_ = false;
  bool settings_known_ = false;
  size_t streams_ = 0;
  // Fields of the header block being received, and whether it is the response head.
  Fields building_;
  int building_status_ = 0;
  size_t building_bytes_ = 0;
};

}  // namespace interpose::http_fast_path
