// N-API glue for original_dst.* and socket_opts.*: errors come back as { errno, syscall }
// objects rather than exceptions, and src/native.ts turns them into NativeError.
#pragma once

#include <napi.h>

namespace interpose {

void InitSocketBindings(Napi::Env env, Napi::Object exports);

}  // namespace interpose
