// Header lists as Node's header objects hold them, for the native HTTP/2 path (fast_path.cc):
// the JS path it stands in for (src/proxy/http2-proxy.ts) reads the client's HTTP/2 request
// headers as node:http2 gives them and the upstream's HTTP/1.1 answer as node:http gives it,
// and writes those objects out again. A repeated field therefore reaches the other side
// joined, listed or dropped by Node's rules, and in the place of its first occurrence; these
// functions apply the same rules so that both paths send the same fields.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace interpose::http_fast_path {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/**
 * Request fields as node:http2 turns them into an object (internal/http2/util.js
 * toHeaderObject) and http2-proxy.ts lists them again: a field that Node keeps once dropped
 * after the first, set-cookie kept as several fields next to its first one, cookie joined
 * with "; ", any other joined with ", ". Names are lowercase already (HTTP/2). A list without
 * a repeated name (the usual one) comes back as it was, without a copy when moved in.
 */
HeaderList nodeHttp2RequestFields(HeaderList fields);

/**
 * Response fields of an HTTP/1.1 upstream as node:http's IncomingMessage.headers holds them
 * (_http_incoming.js matchKnownFields): names lowercased, set-cookie kept as several fields,
 * a field Node keeps once dropped after the first, cookie joined with "; ", any other joined
 * with ", ". Written to `out`, whose strings' room is reused (the caller keeps it from one
 * response to the next).
 */
void nodeHttp1ResponseFields(const std::vector<std::pair<std::string_view, std::string_view>>& fields, HeaderList* out);

}  // namespace interpose::http_fast_path
