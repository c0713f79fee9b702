#include "netlink_binding.h"

#include <linux/netlink.h>

#include <string>
#include <utility>

#include "binding_failure.h"
#include "netlink/netlink_socket.h"
#include "netns_proc_file.h"

namespace interpose {
namespace {

// Runs the batch on a libuv worker thread: the kernel can take a few hundred milliseconds over
// 100k set elements, and the event loop need not stop for it. The bytes stay referenced (not
// copied) until the work is done.
class BatchWorker : public Napi::AsyncWorker {
 public:
  BatchWorker(Napi::Env env, int protocol, Napi::Uint8Array bytes, std::string netnsPath)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        protocol_(protocol),
        bytesRef_(Napi::Persistent(bytes)),
        data_(bytes.Data()),
        length_(bytes.ByteLength()),
        netnsPath_(std::move(netnsPath)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override { outcome_ = SendNetlink(protocol_, data_, length_, netnsPath_); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    bytesRef_.Reset();
    Napi::Object result = Napi::Object::New(env);
    if (outcome_.sysError != 0) {
      result.Set("errno", Napi::Number::New(env, outcome_.sysError));
      result.Set("syscall", Napi::String::New(env, outcome_.syscall));
    }
    Napi::Array replies = Napi::Array::New(env, outcome_.replies.size());
    for (size_t i = 0; i < outcome_.replies.size(); i++) {
      const NetlinkReply& r = outcome_.replies[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("seq", Napi::Number::New(env, r.seq));
      o.Set("error", Napi::Number::New(env, r.error));
      o.Set("message", Napi::String::New(env, r.message));
      replies.Set(static_cast<uint32_t>(i), o);
    }
    result.Set("replies", replies);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& e) override {
    bytesRef_.Reset();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  int protocol_;
  Napi::Reference<Napi::Uint8Array> bytesRef_;
  const uint8_t* data_;
  size_t length_;
  std::string netnsPath_;
  BatchOutcome outcome_;
};

// The netlink protocols the addon talks: src/native.ts checks the same.
bool KnownProtocol(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  int p = v.As<Napi::Number>().Int32Value();
  return p == NETLINK_ROUTE || p == NETLINK_NETFILTER;
}

// sendNetlink(protocol, bytes: Uint8Array, netnsPath: string) -> Promise<{ replies, errno?, syscall? }>
Napi::Value SendBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // src/native.ts validates; these checks only keep a wrong call from reaching C++ as garbage.
  if (info.Length() != 3 || !KnownProtocol(info[0]) || !info[1].IsTypedArray() || !info[2].IsString() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "sendNetlink(protocol: NETLINK_ROUTE | NETLINK_NETFILTER, bytes: Uint8Array, netnsPath: string)");
  }
  auto* worker = new BatchWorker(env, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Uint8Array>(),
                                 info[2].As<Napi::String>().Utf8Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// dumpNetlink(protocol, request: Uint8Array, netnsPath: string) -> { messages: Buffer } | { errno, syscall }
// Synchronous: a dump of a namespace's tables takes well under a millisecond.
Napi::Value Dump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !KnownProtocol(info[0]) || !info[1].IsTypedArray() || !info[2].IsString() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "dumpNetlink(protocol: NETLINK_ROUTE | NETLINK_NETFILTER, request: Uint8Array, netnsPath: string)");
  }
  Napi::Uint8Array request = info[1].As<Napi::Uint8Array>();
  DumpOutcome outcome =
      DumpNetlink(info[0].As<Napi::Number>().Int32Value(), request.Data(), request.ByteLength(), info[2].As<Napi::String>().Utf8Value());
  Napi::Object result = Napi::Object::New(env);
  if (outcome.sysError != 0) {
    result.Set("errno", Napi::Number::New(env, outcome.sysError));
    result.Set("syscall", Napi::String::New(env, outcome.syscall));
    return result;
  }
  // An empty dump has no data pointer to copy from (memcpy from null is undefined even for 0 bytes).
  result.Set("messages", outcome.messages.empty() ? Napi::Buffer<uint8_t>::New(env, 0)
                                                  : Napi::Buffer<uint8_t>::Copy(env, outcome.messages.data(), outcome.messages.size()));
  return result;
}

// namespaceCookie(netnsPath: string) -> bigint | { errno, syscall }
Napi::Value Cookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "namespaceCookie(netnsPath: string)");
  uint64_t cookie = 0;
  const char* syscall = "";
  int error = NamespaceCookie(info[0].As<Napi::String>().Utf8Value(), &cookie, &syscall);
  if (error != 0) return FailureObject(env, error, syscall);
  return Napi::BigInt::New(env, cookie);
}

// readProcNetIn(netnsPath: string, name: string) -> string | { errno, syscall }: at most 64 KiB
// of /proc/net/NAME as the namespace sees it; src/native.ts checks the name.
Napi::Value ProcNetFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(env, "readProcNetIn(netnsPath: string, name: string)");
  }
  std::string content;
  const char* syscall = "";
  const int error = ReadProcNetIn(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(),
                                  64 * 1024, &content, &syscall);
  if (error != 0) return FailureObject(env, error, syscall);
  return Napi::String::New(env, content);
}

}  // namespace

void InitNetlinkBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("readProcNetIn", Napi::Function::New(env, ProcNetFile, "readProcNetIn"));
  exports.Set("namespaceCookie", Napi::Function::New(env, Cookie, "namespaceCookie"));
  exports.Set("sendNetlink", Napi::Function::New(env, SendBatch, "sendNetlink"));
  exports.Set("dumpNetlink", Napi::Function::New(env, Dump, "dumpNetlink"));
}

}  // namespace interpose
