#include "socket_binding.h"

#include "binding_failure.h"
#include "original_dst.h"
#include "socket_opts.h"
#include "trie_binding.h"

namespace interpose {
namespace {

Napi::Object success(Napi::Env env, const OriginalDst& dst, bool withMatch) {
  char text[64];
  formatAddress(dst, text, sizeof text);
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", text);
  o.Set("port", dst.port);
  o.Set("family", dst.family);
  if (withMatch) o.Set("match", dst.match);
  return o;
}

int fdArg(const Napi::CallbackInfo& info) { return info[0].As<Napi::Number>().Int32Value(); }

// originalDst(fd) -> { address, port, family } | { errno, syscall }
Napi::Value OriginalDstJs(const Napi::CallbackInfo& info) {
  OriginalDst dst;
  const char* syscall = "";
  const int err = readOriginalDst(fdArg(info), &dst, &syscall);
  return err != 0 ? FailureObject(info.Env(), err, syscall) : success(info.Env(), dst, false);
}

// originalDstLookup(fd, trie) -> { address, port, family, match } | { errno, syscall }:
// the redirect target's hot path, one crossing instead of a read plus a string lookup.
Napi::Value OriginalDstLookupJs(const Napi::CallbackInfo& info) {
  const lpm::LpmTrie* trie = TrieFromHandle(info.Env(), info[1]);
  if (trie == nullptr) throw info.Env().GetAndClearPendingException();
  OriginalDst dst;
  const char* syscall = "";
  const int err = readOriginalDst(fdArg(info), &dst, &syscall);
  if (err != 0) return FailureObject(info.Env(), err, syscall);
  if (dst.family == 4) {
    const uint32_t v4 = (uint32_t{dst.addr[0]} << 24) | (uint32_t{dst.addr[1]} << 16) |
                        (uint32_t{dst.addr[2]} << 8) | dst.addr[3];
    dst.match = trie->lookup4(v4);
  } else {
    dst.match = trie->lookup6(dst.addr);
  }
  return success(info.Env(), dst, true);
}

// setTransparent(fd, family) / setMark(fd, mark) -> undefined | { errno, syscall }
Napi::Value SetTransparentJs(const Napi::CallbackInfo& info) {
  const char* syscall = "";
  const int err = setTransparent(fdArg(info), info[1].As<Napi::Number>().Int32Value(), &syscall);
  return err != 0 ? Napi::Value(FailureObject(info.Env(), err, syscall)) : info.Env().Undefined();
}

Napi::Value SetMarkJs(const Napi::CallbackInfo& info) {
  const char* syscall = "";
  const int err = setMark(fdArg(info), info[1].As<Napi::Number>().Uint32Value(), &syscall);
  return err != 0 ? Napi::Value(FailureObject(info.Env(), err, syscall)) : info.Env().Undefined();
}

}  // namespace

void InitSocketBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("originalDst", Napi::Function::New<OriginalDstJs>(env, "originalDst"));
  exports.Set("originalDstLookup",
              Napi::Function::New<OriginalDstLookupJs>(env, "originalDstLookup"));
  exports.Set("setTransparent", Napi::Function::New<SetTransparentJs>(env, "setTransparent"));
  exports.Set("setMark", Napi::Function::New<SetMarkJs>(env, "setMark"));
}

}  // namespace interpose
