// Creating and driving an nghttp2 session the way both ends of the fast path use one
// (http2_session.cc, the client-facing server side; http2_client.cc, the upstream side): the same five receive
// callbacks, and WINDOW_UPDATEs left to the owner (no automatic ones), so that a byte only
// opens the window once it has been passed on and a peer that does not read holds the other.
#pragma once

#include <nghttp2/nghttp2.h>

#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

/** Appends the frames `session` has to send to `out` until it holds `limit` bytes or nothing is left; false on a fatal error. */
inline bool produceFrames(nghttp2_session* session, std::string* out, size_t limit) {
  while (out->size() < limit) {
    const uint8_t* p = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session, &p);
    if (n < 0) return false;
    if (n == 0) break;
    out->append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  return true;
}

/**
 * `fields` as nghttp2 takes a header list, in the calling thread's scratch list (its room kept
 * from one call to the next: valid until the next call on the thread; nghttp2's submit
 * functions copy it). Fields whose values are made fresh for each request (request and trace
 * ids) are sent "never indexed": put in HPACK's dynamic table, they would only push out the
 * entries that do repeat (authority, user-agent, content-type), and cost an insertion each.
 */
template <typename Fields>  // pairs of std::string or of std::string_view
const std::vector<nghttp2_nv>& toNghttp2Fields(const Fields& fields) {
  static thread_local std::vector<nghttp2_nv> scratch;
  std::vector<nghttp2_nv>* nva = &scratch;
  nva->clear();
  for (const auto& [name, value] : fields) {
    const bool unique = name == "x-request-id" || name == "x-b3-traceid" || name == "x-b3-spanid";
    nva->push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())), reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                    name.size(), value.size(), static_cast<uint8_t>(unique ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE)});
  }
  return scratch;
}

}  // namespace interpose::http_fast_path
