#include "file_lock_binding.h"

#include "binding_failure.h"
#include "file_lock.h"

namespace interpose {
namespace {

// tryLockExclusive(fd) -> boolean | { errno, syscall }; src/native.ts validates fd.
Napi::Value TryLockExclusiveJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "tryLockExclusive(fd: number)");
  bool locked = false;
  const char* syscall = "";
  const int err = tryLockExclusive(info[0].As<Napi::Number>().Int32Value(), &locked, &syscall);
  if (err == 0) return Napi::Boolean::New(env, locked);
  return FailureObject(env, err, syscall);
}

}  // namespace

void InitFileLockBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("tryLockExclusive", Napi::Function::New<TryLockExclusiveJs>(env, "tryLockExclusive"));
}

}  // namespace interpose
