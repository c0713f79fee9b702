#include "relay_binding.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "event_loop_util.h"
#include "relay/splice_relay.h"

namespace interpose {
namespace {

constexpr napi_type_tag kRelayTag = {0x696e74657270736full, 0x72656c6179303031ull};

struct Callbacks {
  Napi::FunctionReference on_accept;
};

// A C++ value as the JS value the callbacks take: numbers, booleans, strings, or one made already.
Napi::Value ToJs(Napi::Env env, bool b) { return Napi::Boolean::New(env, b); }
Napi::Value ToJs(Napi::Env env, const std::string& s) { return Napi::String::New(env, s); }
Napi::Value ToJs(Napi::Env, Napi::Value v) { return v; }
template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>>>
Napi::Value ToJs(Napi::Env env, T n) {
  return Napi::Number::New(env, static_cast<double>(n));
}

// A callback's argument list, converted in order.
template <typename... T>
std::vector<napi_value> JsArgs(Napi::Env env, const T&... values) {
  return {ToJs(env, values)...};
}

// An optional string: undefined when empty.
Napi::Value StringOrUndefined(Napi::Env env, const std::string& s) {
  return s.empty() ? env.Undefined() : Napi::String::New(env, s);
}

// Runs on the JS thread for each batch of events (relay::RelayEvents): accepted connections
// first, each as
//   onAccept(id, listenerId, dstErrno, dstAddress, dstPort, peerAddress, peerPort, localAddress,
//            localPort, passthrough, acceptedAtMs, refused)
// then finished ones, each as
//   onDone(id, downToUp, upToDown, flag, errno, head?, upstreamLocalAddress?, upstreamLocalPort?,
//          durationMs).
// With env null the function is being torn down and only the data is freed.
void DeliverEvents(Napi::Env env, Napi::Function on_done, Callbacks* callbacks, relay::RelayEvents* events) {
  std::unique_ptr<relay::RelayEvents> owned(events);
  if (env == nullptr || on_done.IsEmpty()) return;
  for (const relay::Accepted& a : owned->accepted) {
    if (callbacks == nullptr || callbacks->on_accept.IsEmpty()) break;
    callbacks->on_accept.Call(JsArgs(env, a.id, a.listener_id, a.dst_error, a.dst_address, a.dst_port,
                                     a.peer_address, a.peer_port, a.local_address, a.local_port, a.passthrough,
                                     a.accepted_at_ms, a.refused));
  }
  for (const relay::RelayDone& d : owned->done) {
    Napi::Value head = env.Undefined();
    if (!d.head.empty()) head = Napi::Buffer<char>::Copy(env, d.head.data(), d.head.size());
    const Napi::Value local_port = d.upstream_local.empty() ? env.Undefined() : ToJs(env, d.upstream_local_port);
    on_done.Call(JsArgs(env, d.id, d.down_to_up, d.up_to_down, std::string(relay::EndFlagText(d.flag)), d.error,
                        head, StringOrUndefined(env, d.upstream_local), local_port, d.duration_ms));
  }
}

using DoneFn = Napi::TypedThreadSafeFunction<Callbacks, relay::RelayEvents, DeliverEvents>;

// Owned jointly by the JS handle (an external) and the thread-safe function, which Node may
// finalize first (at environment teardown) or last (after Release). Whichever finalizer runs
// first stops the relay thread, so it never calls a finalized function; the second frees the box.
// Both run on the JS thread.
struct RelayBox {
  DoneFn done_fn;
  Callbacks callbacks;
  std::unique_ptr<relay::SpliceRelay> relay;
  bool fn_finalized = false;
  bool handle_finalized = false;
};

void FinalizeDoneFn(Napi::Env, RelayBox* box, Callbacks*) {
  box->relay.reset();  // joins the thread
  box->fn_finalized = true;
  if (box->handle_finalized) delete box;
}

void FinalizeHandle(Napi::Env, RelayBox* box) {
  box->relay.reset();
  box->handle_finalized = true;
  if (box->fn_finalized) {
    delete box;
  } else {
    box->done_fn.Release();  // FinalizeDoneFn follows and frees the box
  }
}

// Argument i as a number (TypeScript has checked the arguments).
uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Uint32Value(); }
int32_t I32Arg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

RelayBox* Box(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok = false;
  if (info.Length() < 1 || !info[0].IsExternal() ||
      napi_check_object_type_tag(env, info[0], &kRelayTag, &ok) != napi_ok || !ok) {
    throw Napi::TypeError::New(env, "expected a relay handle from relayCreate");
  }
  return info[0].As<Napi::External<RelayBox>>().Data();
}

// relayCreate(onDone, onAccept?) -> handle. The thread-safe function starts unreferenced: an
// idle relay must not keep the process alive (relayRef while connections are open).
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "onDone must be a function");
  auto* box = new RelayBox();
  if (info.Length() > 1 && info[1].IsFunction()) box->callbacks.on_accept = Napi::Persistent(info[1].As<Napi::Function>());
  box->done_fn = DoneFn::New(env, info[0].As<Napi::Function>(), "interpose-splice-relay", 0, 1,
                             &box->callbacks, FinalizeDoneFn, box);
  box->done_fn.Unref(env);
  try {
    DoneFn fn = box->done_fn;
    box->relay = std::make_unique<relay::SpliceRelay>([fn](relay::RelayEvents&& events) mutable {
      auto* batch = new relay::RelayEvents(std::move(events));
      if (fn.NonBlockingCall(batch) != napi_ok) delete batch;
    });
  } catch (const std::system_error& e) {
    box->handle_finalized = true;  // there will be no handle: FinalizeDoneFn frees the box
    box->done_fn.Release();
    throw Napi::Error::New(env, std::string("cannot start the splice relay: ") + e.what());
  }
  auto handle = Napi::External<RelayBox>::New(env, box, FinalizeHandle);
  napi_type_tag_object(env, handle, &kRelayTag);
  return handle;
}

// relayListen(handle, listenerId, address, port, backlog) -> [errno, boundPort]
Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RelayBox* box = Box(info);
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!toSockaddr(info[2].As<Napi::String>().Utf8Value(), U32Arg(info, 3), &addr, &len)) {
    throw Napi::TypeError::New(env, "address must be an IP literal");
  }
  uint16_t port = 0;
  const int err = box->relay->listen(U32Arg(info, 1), reinterpret_cast<sockaddr*>(&addr), len, I32Arg(info, 4), &port);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, err));
  out.Set(1u, Napi::Number::New(env, port));
  return out;
}

Napi::Value Unlisten(const Napi::CallbackInfo& info) {
  Box(info)->relay->unlisten(U32Arg(info, 1));
  return info.Env().Undefined();
}

// relaySetPassthrough(handle, listenerId, ports: Uint8Array, connectTimeoutMs, idleMs, capture, maxConnections):
// ports[p] != 0 lets connections to port p through (relay::PassthroughPolicy).
Napi::Value SetPassthrough(const Napi::CallbackInfo& info) {
  RelayBox* box = Box(info);
  relay::PassthroughPolicy policy;
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), "ports must be a Uint8Array");
  }
  auto ports = info[2].As<Napi::Uint8Array>();
  policy.ports.resize(std::min<size_t>(ports.ElementLength(), 65536));
  for (size_t p = 0; p < policy.ports.size(); p++) policy.ports[p] = ports.Data()[p] != 0;
  policy.connect_timeout_ms = U32Arg(info, 3);
  policy.idle_ms = U32Arg(info, 4);
  policy.capture = U32Arg(info, 5);
  policy.max_connections = U32Arg(info, 6);
  box->relay->setPassthrough(U32Arg(info, 1), policy);
  return info.Env().Undefined();
}

// relaySetOwnerConnections(handle, count)
Napi::Value SetOwnerConnections(const Napi::CallbackInfo& info) {
  Box(info)->relay->setOwnerConnections(U32Arg(info, 1));
  return info.Env().Undefined();
}

// relayRelease(handle, id) -> fd | -1
Napi::Value Release(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Box(info)->relay->release(U32Arg(info, 1)));
}

// relayCloseAccepted(handle, id, reset) -> boolean
Napi::Value CloseAccepted(const Napi::CallbackInfo& info) {
  const bool ok = Box(info)->relay->closeAccepted(U32Arg(info, 1), info[2].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), ok);
}

// relayConnect(handle, id, address, port, bindAddress, connectTimeoutMs, idleMs, capture) -> errno
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RelayBox* box = Box(info);
  relay::ConnectTarget target;
  if (!toSockaddr(info[2].As<Napi::String>().Utf8Value(), U32Arg(info, 3), &target.addr, &target.addr_len)) {
    throw Napi::TypeError::New(env, "address must be an IP literal");
  }
  const std::string bind_address = info[4].As<Napi::String>().Utf8Value();
  if (!bind_address.empty() && !toSockaddr(bind_address, 0, &target.bind, &target.bind_len)) {
    throw Napi::TypeError::New(env, "bindAddress must be an IP literal or empty");
  }
  target.timeout_ms = U32Arg(info, 5);
  const int err = box->relay->connect(U32Arg(info, 1), target, U32Arg(info, 6), U32Arg(info, 7));
  return Napi::Number::New(env, err);
}

// relayAdd(handle, id, downFd, upFd, head: Buffer | undefined, downEnded, idleMs, capture) -> errno (0 = taken)
Napi::Value Add(const Napi::CallbackInfo& info) {
  RelayBox* box = Box(info);
  relay::RelayRequest req;
  req.id = U32Arg(info, 1);
  req.down_fd = I32Arg(info, 2);
  req.up_fd = I32Arg(info, 3);
  if (info[4].IsBuffer()) {
    auto head = info[4].As<Napi::Buffer<char>>();
    req.head.assign(head.Data(), head.Length());
  }
  req.down_ended = info[5].ToBoolean().Value();
  req.idle_ms = U32Arg(info, 6);
  req.capture = U32Arg(info, 7);
  return Napi::Number::New(info.Env(), box->relay->add(std::move(req)));
}

// relayAbort(handle, id, reset)
Napi::Value Abort(const Napi::CallbackInfo& info) {
  Box(info)->relay->abort(U32Arg(info, 1), info[2].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Value Ref(const Napi::CallbackInfo& info) {
  Box(info)->done_fn.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value Unref(const Napi::CallbackInfo& info) {
  Box(info)->done_fn.Unref(info.Env());
  return info.Env().Undefined();
}

}  // namespace

void InitRelayBindings(Napi::Env env, Napi::Object exports) {
  const struct {
    const char* name;
    Napi::Function::Callback fn;
  } fns[] = {
      {"relayCreate", Create},
      {"relayAdd", Add},
      {"relayAbort", Abort},
      {"relayRef", Ref},
      {"relayUnref", Unref},
      {"relayListen", Listen},
      {"relayUnlisten", Unlisten},
      {"relayRelease", Release},
      {"relaySetPassthrough", SetPassthrough},
      {"relaySetOwnerConnections", SetOwnerConnections},
      {"relayCloseAccepted", CloseAccepted},
      {"relayConnect", Connect},
  };
  for (const auto& f : fns) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
}

}  // namespace interpose
