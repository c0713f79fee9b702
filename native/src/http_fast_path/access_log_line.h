// A finished request's line in Envoy's TEXT access-log format, written on the fast path's
// thread: formatting thousands of lines a second in JS (strings concatenated, then flattened
// to be written) was most of what the JS thread did for the fast path. The format is the one
// src/proxy/access-log.ts formatText() writes; the differential tests compare the two paths'
// lines byte for byte.
#pragma once

#include <string>
#include <string_view>

#include "http_fast_path/log_batch.h"

namespace interpose::http_fast_path {

/** What a line names beyond the record: the request's protocol and the client's connection. */
struct LogLineContext {
  std::string_view protocol;           // "HTTP/1.1" or "HTTP/2"
  std::string_view downstream_local;   // host:port the client connected to (its original destination)
  std::string_view downstream_remote;  // the client's host:port
};

/**
 * Appends the line for `log`, with its newline, as UTF-8: the record's strings hold one byte
 * per character (latin1, as Node's HTTP parsers give header values), and a byte above 0x7f
 * is written as the two bytes Node's writeSync() writes for that character.
 */
void appendAccessLogLine(std::string& out, const RequestLog& log, const LogLineContext& ctx);

/** `ms` since the epoch as Date.prototype.toISOString() writes it (after new Date(ms)). */
void appendIsoTime(std::string& out, double ms);

}  // namespace interpose::http_fast_path
