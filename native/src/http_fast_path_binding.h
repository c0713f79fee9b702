// N-API glue for the native HTTP/1.1 fast path (http_fast_path/fast_path.h): a type-tagged
// external owns one fast-path thread; its events come back to JS through a thread-safe
// function. TypeScript (src/proxy/native-http-fast-path.ts) validates every argument first.
#pragma once

#include <napi.h>

namespace interpose {

/** Registers fastPathCreate, fastPathAbort, fastPathAdd, fastPathSetRoute, fastPathClearRoutes, fastPathCloseIdle, fastPathRef, fastPathUnref. */
void InitHttpFastPathBindings(Napi::Env env, Napi::Object exports);

}  // namespace interpose
