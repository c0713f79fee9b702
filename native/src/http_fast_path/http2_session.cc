#include "http_fast_path/http2_session.h"
#include "http_fast_path/nghttp2_setup.h"

#include <nghttp2/nghttp2.h>

#include <new>
#include <string_view>

namespace interpose::http_fast_path {

namespace {
// Header bytes kept per request beyond which fields are only counted (the owner refuses such
// a request by its header_bytes; nothing here grows with a hostile header block).
constexpr size_t kMaxKeptHeaderBytes = 256 * 1024;
}  // namespace

// nghttp2's C callbacks, friends of Http2Session; user_data is the session object.
struct Http2SessionCallbacks {
  static Http2Session* self(void* ud) { return static_cast<Http2Session*>(ud); }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      self(ud)->building_[frame->hd.stream_id] = Http2Request{};
    }
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen, const uint8_t* value,
                      size_t valuelen, uint8_t, void* ud) {
    // Trailers (a second header block) are dropped, as the JS path drops them for an HTTP/1.1 upstream.
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    Http2Session* s = self(ud);
    auto it = s->building_.find(frame->hd.stream_id);
    if (it == s->building_.end()) return 0;
    Http2Request& r = it->second;
    r.header_bytes += namelen + valuelen + 32;
    if (r.header_bytes > kMaxKeptHeaderBytes) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (!n.empty() && n[0] == ':') {
      // nghttp2 has checked them (RFC 9113 §8.3: known, once each, before regular fields).
      if (n == ":method") r.method.assign(v);
      else if (n == ":path") r.path.assign(v);
      else if (n == ":authority") r.authority.assign(v), r.has_authority = true;
      else if (n == ":scheme") r.scheme.assign(v);
      else if (n == ":protocol") r.protocol.assign(v);
      return 0;
    }
    r.headers.emplace_back(std::string(n), std::string(v));
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Http2Session* s = self(ud);
    const int32_t id = frame->hd.stream_id;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        auto it = s->building_.find(id);
        if (it == s->building_.end()) return 0;
        Http2Request r = std::move(it->second);
        s->building_.erase(it);
        r.end_stream = end;
        s->listener_->onRequest(id, std::move(r));
      } else if (end) {
        s->listener_->onEndStream(id);
      }
    } else if (frame->hd.type == NGHTTP2_DATA && end) {
      s->listener_->onEndStream(id);
    }
    return 0;
  }

  static int onDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len, void* ud) {
    self(ud)->listener_->onData(stream_id, reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud) {
    Http2Session* s = self(ud);
    s->building_.erase(stream_id);
    s->listener_->onStreamClose(stream_id, error_code);
    return 0;
  }

  static ssize_t readBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* data_flags,
                          nghttp2_data_source*, void* ud) {
    bool eof = false;
    const long n = self(ud)->listener_->readBody(stream_id, reinterpret_cast<char*>(buf), length, &eof);
    if (n < 0) return NGHTTP2_ERR_DEFERRED;
    if (eof) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      Http2Session* s = self(ud);
      std::vector<std::pair<std::string, std::string>> fields;
      if (s->listener_->trailers(stream_id, &fields) && !fields.empty()) {
        const std::vector<nghttp2_nv>& nva = toNghttp2Fields(fields);
        if (nghttp2_submit_trailer(s->session_, stream_id, nva.data(), nva.size()) == 0) *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
    return n;
  }
};

Http2Session::Http2Session(Listener* listener, uint32_t max_concurrent_streams) : listener_(listener) {
  session_ = newNghttp2Session(Nghttp2Side::kServer,
                               {&Http2SessionCallbacks::onBeginHeaders, &Http2SessionCallbacks::onHeader, &Http2SessionCallbacks::onFrameRecv,
                                &Http2SessionCallbacks::onDataChunk, &Http2SessionCallbacks::onStreamClose},
                               this);
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_concurrent_streams}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, sizeof settings / sizeof settings[0]);
}

void Http2Session::consume(int32_t stream_id, size_t n) {
  if (n > 0) nghttp2_session_consume(session_, stream_id, n);
}

Http2Session::~Http2Session() { nghttp2_session_del(session_); }

bool Http2Session::receive(const char* data, size_t len) {
  const ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  return n >= 0;
}

bool Http2Session::produce(std::string* out, size_t limit) { return produceFrames(session_, out, limit); }

bool Http2Session::stoppedReading() const { return nghttp2_session_want_read(session_) == 0; }

bool Http2Session::finished() const { return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0; }

namespace {
template <typename Fields>
bool submitResponse(nghttp2_session* session, int32_t stream_id, const Fields& headers, bool with_body) {
  const std::vector<nghttp2_nv>& nva = toNghttp2Fields(headers);
  nghttp2_data_provider body{};
  body.read_callback = &Http2SessionCallbacks::readBody;
  return nghttp2_submit_response(session, stream_id, nva.data(), nva.size(), with_body ? &body : nullptr) == 0;
}
}  // namespace

bool Http2Session::respond(int32_t stream_id, const std::vector<std::pair<std::string, std::string>>& headers, bool with_body) {
  return submitResponse(session_, stream_id, headers, with_body);
}

bool Http2Session::respondViews(int32_t stream_id, const std::vector<std::pair<std::string_view, std::string_view>>& headers, bool with_body) {
  return submitResponse(session_, stream_id, headers, with_body);
}

void Http2Session::resume(int32_t stream_id) { nghttp2_session_resume_data(session_, stream_id); }

void Http2Session::reset(int32_t stream_id, uint32_t error_code) { nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code); }

void Http2Session::refuse(int32_t stream_id, int32_t last_accepted) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_REFUSED_STREAM);
  if (going_away_) return;
  going_away_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_accepted, NGHTTP2_NO_ERROR, nullptr, 0);
}

void Http2Session::goAway(int32_t last_accepted) {
  if (going_away_) return;
  going_away_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_accepted, NGHTTP2_NO_ERROR, nullptr, 0);
}

}  // namespace interpose::http_fast_path
