// The `{ errno, syscall }` object every binding returns for a failed system call; src/native.ts
// turns it into a NativeError (code, hint).
#pragma once

#include <napi.h>

namespace interpose {

inline Napi::Object FailureObject(Napi::Env env, int error, const char* syscall) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", Napi::Number::New(env, error));
  o.Set("syscall", Napi::String::New(env, syscall));
  return o;
}

}  // namespace interpose
