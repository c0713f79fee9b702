#include "http_fast_path/http2_client.h"
#include "http_fast_path/nghttp2_setup.h"

#include <nghttp2/nghttp2.h>

#include <new>
#include <string_view>

namespace interpose::http_fast_path {

namespace {
// Response header bytes kept per block beyond which fields are dropped (a hostile upstream
// cannot grow memory here; nghttp2 bounds the block itself too).
constexpr size_t kMaxKeptHeaderBytes = 256 * 1024;
}  // namespace

// nghttp2's C callbacks, friends of Http2Client; user_data is the client object.
struct Http2ClientCallbacks {
  static Http2Client* self(void* ud) { return static_cast<Http2Client*>(ud); }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame*, void* ud) {
    Http2Client* c = self(ud);
    c->building_.clear();
    c->building_status_ = 0;
    c->building_bytes_ = 0;
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen, const uint8_t* value,
                      size_t valuelen, uint8_t, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Http2Client* c = self(ud);
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      int s = 0;
      for (char ch : v) s = s * 10 + (ch - '0');  // nghttp2 checked it: three digits
      c->building_status_ = s;
      return 0;
    }
    if (!n.empty() && n[0] == ':') return 0;
    c->building_bytes_ += namelen + valuelen + 32;
    if (c->building_bytes_ > kMaxKeptHeaderBytes) return 0;
    c->building_.emplace_back(std::string(n), std::string(v));
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Http2Client* c = self(ud);
    const int32_t id = frame->hd.stream_id;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        // A block with :status is a response head (after a 1xx, nghttp2 files the final one
        // under HCAT_HEADERS too); 1xx answers are interim: skipped, as Node's client skips
        // them. A later block without :status is the trailers.
        if (c->building_status_ >= 200) {
          c->listener_->onResponse(id, c->building_status_, std::move(c->building_), end);
        } else if (c->building_status_ == 0 && frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
          c->listener_->onTrailers(id, std::move(c->building_));
        }
        c->building_.clear();
        break;
      case NGHTTP2_DATA:
        if (end) c->listener_->onEnd(id);
        break;
      case NGHTTP2_GOAWAY:
        c->goaway_ = true;
        break;
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) c->settings_known_ = true;
        break;
      default:
        break;
    }
    return 0;
  }

  static int onDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len, void* ud) {
    self(ud)->listener_->onData(stream_id, reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud) {
    Http2Client* c = self(ud);
    if (c->streams_ > 0) c->streams_--;
    c->listener_->onStreamClose(stream_id, error_code);
    return 0;
  }

  static ssize_t readBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* data_flags,
                          nghttp2_data_source*, void* ud) {
    bool eof = false;
    const long n = self(ud)->listener_->readBody(stream_id, reinterpret_cast<char*>(buf), length, &eof);
    if (n < 0) return NGHTTP2_ERR_DEFERRED;
    if (eof) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return n;
  }
};

Http2Client::Http2Client(Listener* listener, uint32_t stream_window, uint32_t connection_window) : listener_(listener) {
  session_ = newNghttp2Session(Nghttp2Side::kClient,
                               {&Http2ClientCallbacks::onBeginHeaders, &Http2ClientCallbacks::onHeader, &Http2ClientCallbacks::onFrameRecv,
                                &Http2ClientCallbacks::onDataChunk, &Http2ClientCallbacks::onStreamClose},
                               this);
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}, {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, sizeof settings / sizeof settings[0]);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, static_cast<int32_t>(connection_window));
}

Http2Client::~Http2Client() { nghttp2_session_del(session_); }

bool Http2Client::receive(const char* data, size_t len) {
  return nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len) >= 0;
}

bool Http2Client::produce(std::string* out, size_t limit) { return produceFrames(session_, out, limit); }

int32_t Http2Client::request(const Fields& fields, bool with_body) {
  const std::vector<nghttp2_nv>& nva = toNghttp2Fields(fields);
  nghttp2_data_provider body{};
  body.read_callback = &Http2ClientCallbacks::readBody;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), with_body ? &body : nullptr, nullptr);
  if (id > 0) streams_++;
  return id;
}

void Http2Client::resume(int32_t stream_id) { nghttp2_session_resume_data(session_, stream_id); }

void Http2Client::reset(int32_t stream_id, uint32_t error_code) { nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code); }

void Http2Client::consume(int32_t stream_id, size_t n) {
  if (n > 0) nghttp2_session_consume(session_, stream_id, n);
}

size_t Http2Client::streams() const { return streams_; }

uint32_t Http2Client::maxStreams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool Http2Client::closedForNew() const {
  return goaway_ || nghttp2_session_want_read(session_) == 0 || nghttp2_session_check_request_allowed(session_) == 0;
}

bool Http2Client::finished() const { return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0; }

}  // namespace interpose::http_fast_path
