// The HTTP/2 framing of one server-side cleartext connection (prior-knowledge h2c) for the
// native fast path (fast_path.h), on nghttp2 — the library Node's own node:http2 is built on,
// so frames, flow control, HPACK and the protocol checks of RFC 9113 §8 (pseudo-headers,
// connection-specific headers, Content-Length against DATA) behave as on the JS path.
//
// No sockets here: bytes read from the client go in (receive()), frames to write come out
// (produce()), and what the client asked for is reported to a Listener. Responses are
// submitted by the owner; their bodies are pulled from the owner through the Listener as
// nghttp2's flow-control windows allow, so a client that does not read stalls its streams
// instead of growing buffers here.
//
// Linking: the addon does not link libnghttp2. Node exports every nghttp2_* symbol from its
// executable (or, for a distribution's node, loads the shared libnghttp2 into the global
// scope), and the dynamic linker resolves the addon's undefined symbols against those first,
// exactly as it resolves the napi_* ones: one nghttp2 in the process, no second copy to keep
// up to date, nothing added to the prebuilt addons. Only the header is needed at build time
// (libnghttp2-dev; native/CMakeLists.txt copies it aside so cross builds find it). The plain
// C++ test binaries, which have no Node around them, link -lnghttp2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

struct nghttp2_session;

namespace interpose::http_fast_path {

/** One request's header block as received (names lowercase, as HTTP/2 requires). */
struct Http2Request {
  std::string method, path, authority, scheme, protocol;
  bool has_authority = false;
  std::vector<std::pair<std::string, std::string>> headers;  // regular fields, in order
  size_t header_bytes = 0;     // names + values + 32 per field (RFC 9113 §6.5.2's measure)
  bool end_stream = false;     // END_STREAM came with the HEADERS: no body
};

class Http2Session {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    /** A request's header block is complete (trailers are not reported: they are dropped). */
    virtual void onRequest(int32_t stream_id, Http2Request&& request) = 0;
    virtual void onData(int32_t stream_id, const char* data, size_t len) = 0;
    /** The client's half of the stream ended (END_STREAM on DATA or trailers). */
    virtual void onEndStream(int32_t stream_id) = 0;
    /** The stream is gone (answered and ended both ways, or reset by either side). */
    virtual void onStreamClose(int32_t stream_id, uint32_t error_code) = 0;
    /**
     * Up to `len` bytes of the response body of `stream_id` into `buf`: the count, or -1
     * when none is there yet (the owner calls resume() when some is). *eof once the body is
     * complete and everything of it was given.
     */
    virtual long readBody(int32_t stream_id, char* buf, size_t len, bool* eof) = 0;
    /**
     * The body of `stream_id` was given whole: its trailers, if it has some to send (the
     * stream then ends with them); false: it ends with its last DATA frame.
     */
    virtual bool trailers(int32_t, std::vector<std::pair<std::string, std::string>>*) { return false; }
  };

  /**
   * Queues the server's SETTINGS (nothing is written before produce()): only
   * SETTINGS_MAX_CONCURRENT_STREAMS, the one value in which they differ from node:http2's
   * (which sends none), so that a connection node:http2 takes after all behaves as its own
   * but for that bound. Request body bytes open the flow-control windows again only once
   * consume()d.
   */
  Http2Session(Listener* listener, uint32_t max_concurrent_streams);
  ~Http2Session();
  Http2Session(const Http2Session&) = delete;
  Http2Session& operator=(const Http2Session&) = delete;

  /** `n` request body bytes of `stream_id` were taken: the client may send that much more. */
  void consume(int32_t stream_id, size_t n);
  /** Feeds bytes from the client; false on a connection error (nghttp2 queued its GOAWAY). */
  bool receive(const char* data, size_t len);
  /** Appends frames to write to `out` until it holds `limit` bytes or nothing is left; false on a fatal error. */
  bool produce(std::string* out, size_t limit);
  /** Neither side has anything more to say: the connection can be closed. */
  bool finished() const;
  /** The session reads no more (a connection error, or a GOAWAY with no stream left). */
  bool stoppedReading() const;

  /** A response head (":status" first); `with_body` false ends the stream with it. */
  bool respond(int32_t stream_id, const std::vector<std::pair<std::string, std::string>>& headers, bool with_body);
  /** respond() with the fields as views (nghttp2 copies them before this returns). */
  bool respondViews(int32_t stream_id, const std::vector<std::pair<std::string_view, std::string_view>>& headers, bool with_body);
  /** More of a response body is there (or it ended). */
  void resume(int32_t stream_id);
  /** RST_STREAM with `error_code`. */
  void reset(int32_t stream_id, uint32_t error_code);
  /**
   * RST_STREAM REFUSED_STREAM (RFC 9113 §8.7: not processed, safe to retry) and a GOAWAY whose
   * last stream id is `last_accepted`: the client sends that request, and any later one, on
   * a new connection.
   */
  void refuse(int32_t stream_id, int32_t last_accepted);
  /** A graceful GOAWAY (NO_ERROR): streams up to `last_accepted` finish, no new ones are taken. */
  void goAway(int32_t last_accepted);

 private:
  friend struct Http2SessionCallbacks;
  Listener* listener_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, Http2Request> building_;  // header blocks being received
  bool going_away_ = false;
};

}  // namespace interpose::http_fast_path
