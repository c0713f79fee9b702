// Creating an nghttp2 session the way both ends of the fast path use one (http2_session.cc,
// the client-facing server side; http2_client.cc, the upstream side): the same five receive
// callbacks, and WINDOW_UPDATEs left to the owner (no automatic ones), so that a byte only
// opens the window once it has been passed on and a peer that does not read holds the other.
#pragma once

#include <nghttp2/nghttp2.h>

#include <new>

namespace interpose::http_fast_path {

struct Nghttp2Callbacks {
  nghttp2_on_begin_headers_callback on_begin_headers;
  nghttp2_on_header_callback on_header;
  nghttp2_on_frame_recv_callback on_frame_recv;
  nghttp2_on_data_chunk_recv_callback on_data_chunk;
  nghttp2_on_stream_close_callback on_stream_close;
};

enum class Nghttp2Side { kServer, kClient };

/** A new session with `callbacks` and `user_data`; throws std::bad_alloc when nghttp2 cannot make one. */
inline nghttp2_session* newNghttp2Session(Nghttp2Side side, const Nghttp2Callbacks& callbacks, void* user_data) {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, callbacks.on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, callbacks.on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, callbacks.on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, callbacks.on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, callbacks.on_stream_close);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    throw std::bad_alloc();
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session* session = nullptr;
  const int rv = side == Nghttp2Side::kServer ? nghttp2_session_server_new2(&session, cbs, user_data, opt)
                                              : nghttp2_session_client_new2(&session, cbs, user_data, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) throw std::bad_alloc();
  return session;
}

}  // namespace interpose::http_fast_path
