#include "relay_binding.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <memory>
#include <system_error>
#include <utility>

#include "relay/splice_relay.h"

namespace interpose {
namespace {

constexpr napi_type_tag kRelayTag = {0x696e74657270736full, 0x72656c6179303031ull};

struct Callbacks {
  Napi::FunctionReference on_accept;
};

Napi::Value PortOrUndefined(Napi::Env env, const std::string& address, uint16_t port) {
  return address.empty() ? env.Undefined() : Napi::Number::New(env, port);
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
    callbacks->on_accept.Call({
        Napi::Number::New(env, a.id),
        Napi::Number::New(env, a.listener_id),
        Napi::Number::New(env, a.dst_error),
        Napi::String::New(env, a.dst_address),
        Napi::Number::New(env, a.dst_port),
        Napi::String::New(env, a.peer_address),
        Napi::Number::New(env, a.peer_port),
        Napi::String::New(env, a.local_address),
        Napi::Number::New(env, a.local_port),
        Napi::Boolean::New(env, a.passthrough),
        Napi::Number::New(env, a.accepted_at_ms),
        Napi::Boolean::New(env, a.refused),
    });
  }
  for (const relay::RelayDone& d : owned->done) {
    Napi::Value head = env.Undefined();
    if (!d.head.empty()) head = Napi::Buffer<char>::Copy(env, d.head.data(), d.head.size());
    on_done.Call({
        Napi::Number::New(env, d.id),
        Napi::Number::New(env, static_cast<double>(d.down_to_up)),
        Napi::Number::New(env, static_cast<double>(d.up_to_down)),
        Napi::String::New(env, relay::EndFlagText(d.flag)),
        Napi::Number::New(env, d.error),
        head,
        d.upstream_local.empty() ? env.Undefined() : Napi::String::New(env, d.upstream_local),
        PortOrUndefined(env, d.upstream_local, d.upstream_local_port),
        Napi::Number::New(env, d.duration_ms),
    });
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

// Parses an IP literal and port into a sockaddr (TypeScript has checked both).
bool ToSockaddr(const std::string& address, uint32_t port, sockaddr_storage* out, socklen_t* len) {
  *out = sockaddr_storage{};
  auto* in = reinterpret_cast<sockaddr_in*>(out);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET, address.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// relayListen(handle, listenerId, address, port, backlog) -> [errno, boundPort]
Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RelayBox* box = Box(info);
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!ToSockaddr(info[2].As<Napi::String>().Utf8Value(), info[3].As<Napi::Number>().Uint32Value(), &addr, &len)) {
    throw Napi::TypeError::New(env, "address must be an IP literal");
  }
  uint16_t port = 0;
  const int err = box->relay->listen(info[1].As<Napi::Number>().Uint32Value(), reinterpret_cast<sockaddr*>(&addr),
                                     len, info[4].As<Napi::Number>().Int32Value(), &port);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, err));
  out.Set(1u, Napi::Number::New(env, port));
  return out;
}

Napi::Value Unlisten(const Napi::CallbackInfo& info) {
  Box(info)->relay->unlisten(info[1].As<Napi::Number>().Uint32Value());
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
  policy.connect_timeout_ms = info[3].As<Napi::Number>().Uint32Value();
  policy.idle_ms = info[4].As<Napi::Number>().Uint32Value();
  policy.capture = info[5].As<Napi::Number>().Uint32Value();
  policy.max_connections = info[6].As<Napi::Number>().Uint32Value();
  box->relay->setPassthrough(info[1].As<Napi::Number>().Uint32Value(), policy);
  return info.Env().Undefined();
}

// relaySetOwnerConnections(handle, count)
Napi::Value SetOwnerConnections(const Napi::CallbackInfo& info) {
  Box(info)->relay->setOwnerConnections(info[1].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// relayRelease(handle, id) -> fd | -1
Napi::Value Release(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Box(info)->relay->release(info[1].As<Napi::Number>().Uint32Value()));
}

// relayCloseAccepted(handle, id, reset) -> boolean
Napi::Value CloseAccepted(const Napi::CallbackInfo& info) {
  const bool ok = Box(info)->relay->closeAccepted(info[1].As<Napi::Number>().Uint32Value(), info[2].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), ok);
}

// relayConnect(handle, id, address, port, bindAddress, connectTimeoutMs, idleMs, capture) -> errno
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RelayBox* box = Box(info);
  relay::ConnectTarget target;
  if (!ToSockaddr(info[2].As<Napi::String>().Utf8Value(), info[3].As<Napi::Number>().Uint32Value(), &target.addr,
                  &target.addr_len)) {
    throw Napi::TypeError::New(env, "address must be an IP literal");
  }
  const std::string bind_address = info[4].As<Napi::String>().Utf8Value();
  if (!bind_address.empty() && !ToSockaddr(bind_address, 0, &target.bind, &target.bind_len)) {
    throw Napi::TypeError::New(env, "bindAddress must be an IP literal or empty");
  }
  target.timeout_ms = info[5].As<Napi::Number>().Uint32Value();
  const int err = box->relay->connect(info[1].As<Napi::Number>().Uint32Value(), target,
                                      info[6].As<Napi::Number>().Uint32Value(), info[7].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(env, err);
}

// relayAdd(handle, id, downFd, upFd, head: Buffer | undefined, downEnded, idleMs, capture) -> errno (0 = taken)
Napi::Value Add(const Napi::CallbackInfo& info) {
  RelayBox* box = Box(info);
  relay::RelayRequest req;
  req.id = info[1].As<Napi::Number>().Uint32Value();
  req.down_fd = info[2].As<Napi::Number>().Int32Value();
  req.up_fd = info[3].As<Napi::Number>().Int32Value();
  if (info[4].IsBuffer()) {
    auto head = info[4].As<Napi::Buffer<char>>();
    req.head.assign(head.Data(), head.Length());
  }
  req.down_ended = info[5].ToBoolean().Value();
  req.idle_ms = info[6].As<Napi::Number>().Uint32Value();
  req.capture = info[7].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(info.Env(), box->relay->add(std::move(req)));
}

// relayAbort(handle, id, reset)
Napi::Value Abort(const Napi::CallbackInfo& info) {
  Box(info)->relay->abort(info[1].As<Napi::Number>().Uint32Value(), info[2].ToBoolean().Value());
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
  exports.Set("relayCreate", Napi::Function::New<Create>(env, "relayCreate"));
  exports.Set("relayAdd", Napi::Function::New<Add>(env, "relayAdd"));
  exports.Set("relayAbort", Napi::Function::New<Abort>(env, "relayAbort"));
  exports.Set("relayRef", Napi::Function::New<Ref>(env, "relayRef"));
  exports.Set("relayListen", Napi::Function::New<Listen>(env, "relayListen"));
  exports.Set("relayUnlisten", Napi::Function::New<Unlisten>(env, "relayUnlisten"));
  exports.Set("relayRelease", Napi::Function::New<Release>(env, "relayRelease"));
  exports.Set("relaySetPassthrough", Napi::Function::New<SetPassthrough>(env, "relaySetPassthrough"));
  exports.Set("relaySetOwnerConnections", Napi::Function::New<SetOwnerConnections>(env, "relaySetOwnerConnections"));
  exports.Set("relayCloseAccepted", Napi::Function::New<CloseAccepted>(env, "relayCloseAccepted"));
  exports.Set("relayConnect", Napi::Function::New<Connect>(env, "relayConnect"));
  exports.Set("relayUnref", Napi::Function::New<Unref>(env, "relayUnref"));
}

}  // namespace interpose
