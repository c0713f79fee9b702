#include "relay_binding.h"

#include <memory>
#include <system_error>
#include <utility>

#include "relay/splice_relay.h"

namespace interpose {
namespace {

constexpr napi_type_tag kRelayTag = {0x696e74657270736full, 0x72656c6179303031ull};

// Runs on the JS thread for each completion: callback(id, downToUp, upToDown, flag, errno, head?).
// With env null the function is being torn down and only the data is freed.
void DeliverDone(Napi::Env env, Napi::Function callback, std::nullptr_t*, relay::RelayDone* done) {
  std::unique_ptr<relay::RelayDone> owned(done);
  if (env == nullptr || callback.IsEmpty()) return;
  Napi::Value head = env.Undefined();
  if (!owned->head.empty()) head = Napi::Buffer<char>::Copy(env, owned->head.data(), owned->head.size());
  callback.Call({
      Napi::Number::New(env, owned->id),
      Napi::Number::New(env, static_cast<double>(owned->down_to_up)),
      Napi::Number::New(env, static_cast<double>(owned->up_to_down)),
      Napi::String::New(env, relay::EndFlagText(owned->flag)),
      Napi::Number::New(env, owned->error),
      head,
  });
}

using DoneFn = Napi::TypedThreadSafeFunction<std::nullptr_t, relay::RelayDone, DeliverDone>;

// Owned jointly by the JS handle (an external) and the thread-safe function, which Node may
// finalize first (at environment teardown) or last (after Release). Whichever finalizer runs
// first stops the relay thread, so it never calls a finalized function; the second frees the box.
// Both run on the JS thread.
struct RelayBox {
  DoneFn done_fn;
  std::unique_ptr<relay::SpliceRelay> relay;
  bool fn_finalized = false;
  bool handle_finalized = false;
};

void FinalizeDoneFn(Napi::Env, RelayBox* box, std::nullptr_t*) {
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

// relayCreate(onDone) -> handle. The thread-safe function starts unreferenced: an idle relay
// must not keep the process alive (relayRef while connections are open).
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "onDone must be a function");
  auto* box = new RelayBox();
  box->done_fn = DoneFn::New(env, info[0].As<Napi::Function>(), "interpose-splice-relay", 0, 1,
                             nullptr, FinalizeDoneFn, box);
  box->done_fn.Unref(env);
  try {
    DoneFn fn = box->done_fn;
    box->relay = std::make_unique<relay::SpliceRelay>([fn](relay::RelayDone&& done) mutable {
      auto* copy = new relay::RelayDone(std::move(done));
      if (fn.NonBlockingCall(copy) != napi_ok) delete copy;
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

Napi::Value Abort(const Napi::CallbackInfo& info) {
  Box(info)->relay->abort(info[1].As<Napi::Number>().Uint32Value());
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
  exports.Set("relayUnref", Napi::Function::New<Unref>(env, "relayUnref"));
}

}  // namespace interpose
