// N-API glue for file_lock.*: errors come back as { errno, syscall }, as in socket_binding.
#pragma once

#include <napi.h>

namespace interpose {

void InitFileLockBindings(Napi::Env env, Napi::Object exports);

}  // namespace interpose
