#include "http_fast_path_binding.h"

#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "event_loop_util.h"
#include "http_fast_path/fast_path.h"

namespace interpose {
namespace {

namespace fp = http_fast_path;

constexpr napi_type_tag kFastPathTag = {0x696e74657270736full, 0x6874747066617374ull};

// Request bytes as JS strings, one character per byte, as Node's HTTP parser gives header
// values (latin1), so that a byte outside ASCII reads the same on both paths (and no UTF-8
// decoding is spent on it).
Napi::Value Latin1(Napi::Env env, const std::string& s) {
  napi_value v = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, s.data(), s.size(), &v), Napi::Value());
  return Napi::Value(env, v);
}

// The reverse of Latin1(): a JS string as bytes (the route's names go back into request heads).
std::string Latin1Bytes(const Napi::Value& v) {
  napi_env env = v.Env();
  size_t len = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_latin1(env, v, nullptr, 0, &len), std::string());
  std::string out(len + 1, '\0');
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_latin1(env, v, out.data(), out.size(), &len), std::string());
  out.resize(len);
  return out;
}

// Runs on the JS thread for each batch: onEvents(misses, logNumbers, logText, handbacks, closed, logLines,
// countNumbers, countText) with
//   misses:    [port, authority, port, authority, …]
//   logNumbers, logText: the finished requests, packed (log_batch.h LogBatch), with LogMode::kRecords
//   handbacks: [connId, fd, bytes: Buffer, …] — the fd is JS's from here on
//   closed:    [connId, …]
//   logLines:  their access-log lines (UTF-8 Buffer), with LogMode::kLines; else undefined
//   countNumbers, countText: their counts summed (request_counts.h), with kLines and kCounts
// With env null the function is being torn down: handed-back descriptors are closed.
void Deliver(Napi::Env env, Napi::Function on_events, std::nullptr_t*, fp::Events* events) {
  std::unique_ptr<fp::Events> owned(events);
  if (env == nullptr || on_events.IsEmpty()) {
    for (fp::HandBack& h : owned->handbacks) close(h.fd);
    return;
  }
  Napi::Array misses = Napi::Array::New(env, owned->misses.size() * 2);
  uint32_t i = 0;
  for (const fp::RouteMiss& m : owned->misses) {
    misses.Set(i++, Napi::Number::New(env, m.port));
    misses.Set(i++, Latin1(env, m.authority));
  }
  // The finished requests packed (log_batch.h): their numbers, then their strings back to back.
  const std::vector<double>& numbers = owned->logs.numbers();
  Napi::Float64Array log_numbers = Napi::Float64Array::New(env, numbers.size());
  if (!numbers.empty()) std::memcpy(log_numbers.Data(), numbers.data(), numbers.size() * sizeof(double));
  Napi::Value log_text = Latin1(env, owned->logs.text());
  Napi::Array handbacks = Napi::Array::New(env, owned->handbacks.size() * 3);
  i = 0;
  for (const fp::HandBack& h : owned->handbacks) {
    handbacks.Set(i++, Napi::Number::New(env, h.conn_id));
    handbacks.Set(i++, Napi::Number::New(env, h.fd));
    handbacks.Set(i++, Napi::Buffer<char>::Copy(env, h.bytes.data(), h.bytes.size()));
  }
  Napi::Array closed = Napi::Array::New(env, owned->closed.size());
  i = 0;
  for (uint32_t id : owned->closed) closed.Set(i++, Napi::Number::New(env, id));
  const std::string& lines = owned->logs.lines();
  Napi::Value log_lines = lines.empty() ? env.Undefined() : Napi::Buffer<char>::Copy(env, lines.data(), lines.size()).As<Napi::Value>();
  const std::vector<double> counted = owned->counts.numbers();
  Napi::Float64Array count_numbers = Napi::Float64Array::New(env, counted.size());
  if (!counted.empty()) std::memcpy(count_numbers.Data(), counted.data(), counted.size() * sizeof(double));
  on_events.Call({misses, log_numbers, log_text, handbacks, closed, log_lines, count_numbers, Latin1(env, owned->counts.text())});
}

using EventsFn = Napi::TypedThreadSafeFunction<std::nullptr_t, fp::Events, Deliver>;

// Owned jointly by the JS handle and the thread-safe function, as in relay_binding.cc: whichever
// finalizer runs first stops the thread; the second frees the box.
struct Box {
  EventsFn fn;
  std::unique_ptr<fp::FastPath> fast_path;
  bool fn_finalized = false;
  bool handle_finalized = false;
};

void FinalizeFn(Napi::Env, Box* box, std::nullptr_t*) {
  box->fast_path.reset();
  box->fn_finalized = true;
  if (box->handle_finalized) delete box;
}

void FinalizeHandle(Napi::Env, Box* box) {
  box->fast_path.reset();
  box->handle_finalized = true;
  if (box->fn_finalized) {
    delete box;
  } else {
    box->fn.Release();
  }
}

Box* BoxOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok = false;
  if (info.Length() < 1 || !info[0].IsExternal() || napi_check_object_type_tag(env, info[0], &kFastPathTag, &ok) != napi_ok || !ok) {
    throw Napi::TypeError::New(env, "expected a fast path handle from fastPathCreate");
  }
  Box* box = info[0].As<Napi::External<Box>>().Data();
  if (!box->fast_path) throw Napi::Error::New(env, "the fast path is stopped");
  return box;
}

uint32_t U32(const Napi::Value& v) { return v.As<Napi::Number>().Uint32Value(); }

// fastPathCreate(onEvents, connectTimeoutMs, idleMs, slowHeadMs, logMode?: "records" | "lines" | "counts")
// -> handle (unreferenced).
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "onEvents must be a function");
  fp::Options options;
  options.connect_timeout_ms = U32(info[1]);
  options.idle_ms = U32(info[2]);
  options.slow_head_ms = U32(info[3]);
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    const std::string mode = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : std::string();
    if (mode == "lines") {
      options.log_mode = fp::LogMode::kLines;
    } else if (mode == "counts") {
      options.log_mode = fp::LogMode::kCounts;
    } else if (mode != "records") {
      throw Napi::TypeError::New(env, "logMode must be \"records\", \"lines\" or \"counts\"");
    }
  }
  auto* box = new Box();
  box->fn = EventsFn::New(env, info[0].As<Napi::Function>(), "interpose-http-fast-path", 0, 1, nullptr, FinalizeFn, box);
  box->fn.Unref(env);
  try {
    EventsFn fn = box->fn;
    box->fast_path = std::make_unique<fp::FastPath>(options, [fn](fp::Events&& events) mutable {
      auto* batch = new fp::Events(std::move(events));
      if (fn.BlockingCall(batch) != napi_ok) {
        for (fp::HandBack& h : batch->handbacks) close(h.fd);
        delete batch;
      }
    });
  } catch (const std::system_error& e) {
    box->handle_finalized = true;
    box->fn.Release();
    throw Napi::Error::New(env, std::string("cannot start the HTTP fast path: ") + e.what());
  }
  auto handle = Napi::External<Box>::New(env, box, FinalizeHandle);
  napi_type_tag_object(env, handle, &kFastPathTag);
  return handle;
}

// fastPathAdd(handle, connId, fd, bytes: Buffer | undefined, port, http2?: boolean, downstreamLocal?: string,
// downstreamRemote?: string) -> errno (0: taken; the caller closes its fd)
Napi::Value Add(const Napi::CallbackInfo& info) {
  Box* box = BoxOf(info);
  std::string bytes;
  if (info[3].IsBuffer()) {
    auto b = info[3].As<Napi::Buffer<char>>();
    bytes.assign(b.Data(), b.Length());
  }
  const bool http2 = info.Length() > 5 && info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
  std::string local = info.Length() > 6 && info[6].IsString() ? Latin1Bytes(info[6]) : std::string();
  std::string remote = info.Length() > 7 && info[7].IsString() ? Latin1Bytes(info[7]) : std::string();
  const int err = box->fast_path->add(U32(info[1]), info[2].As<Napi::Number>().Int32Value(), std::move(bytes),
                                      static_cast<uint16_t>(U32(info[4])), http2, std::move(local), std::move(remote));
  return Napi::Number::New(info.Env(), err);
}

std::vector<int> IntList(const Napi::Value& v) {
  std::vector<int> out;
  if (!v.IsArray()) return out;
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  return out;
}

// fastPathSetRoute(handle, port, authority, route | null, ttlMs). route: { address, port,
// upstreamHost, cluster, decorator, timeoutMs, http2?, retry?: { retries, backoffBaseMs, on5xx,
// onGatewayError, onReset, onConnectFailure, onRetriable4xx, onStatusCodes, onRefusedStream,
// statusCodes, grpcStatuses } }
Napi::Value SetRoute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Box* box = BoxOf(info);
  std::unique_ptr<fp::Route> route;
  if (info[3].IsObject()) {
    Napi::Object o = info[3].As<Napi::Object>();
    route = std::make_unique<fp::Route>();
    if (!toSockaddr(o.Get("address").As<Napi::String>().Utf8Value(), U32(o.Get("port")), &route->addr, &route->addr_len)) {
      throw Napi::TypeError::New(env, "route.address must be an IP literal");
    }
    route->upstream_host = Latin1Bytes(o.Get("upstreamHost"));
    route->cluster = Latin1Bytes(o.Get("cluster"));
    route->decorator = Latin1Bytes(o.Get("decorator"));
    route->timeout_ms = U32(o.Get("timeoutMs"));
    route->http2 = o.Get("http2").ToBoolean();
    Napi::Value r = o.Get("retry");
    if (r.IsObject()) {
      Napi::Object p = r.As<Napi::Object>();
      route->has_retry = true;
      route->retry.retries = U32(p.Get("retries"));
      route->retry.backoff_base_ms = U32(p.Get("backoffBaseMs"));
      route->retry.on_5xx = p.Get("on5xx").ToBoolean();
      route->retry.on_gateway_error = p.Get("onGatewayError").ToBoolean();
      route->retry.on_reset = p.Get("onReset").ToBoolean();
      route->retry.on_connect_failure = p.Get("onConnectFailure").ToBoolean();
      route->retry.on_retriable_4xx = p.Get("onRetriable4xx").ToBoolean();
      route->retry.on_status_codes = p.Get("onStatusCodes").ToBoolean();
      route->retry.on_refused_stream = p.Get("onRefusedStream").ToBoolean();
      route->retry.status_codes = IntList(p.Get("statusCodes"));
      route->retry.grpc_statuses = IntList(p.Get("grpcStatuses"));
    }
  }
  box->fast_path->setRoute(static_cast<uint16_t>(U32(info[1])), Latin1Bytes(info[2]), std::move(route), U32(info[4]));
  return env.Undefined();
}

Napi::Value ClearRoutes(const Napi::CallbackInfo& info) {
  BoxOf(info)->fast_path->clearRoutes();
  return info.Env().Undefined();
}

Napi::Value CloseIdle(const Napi::CallbackInfo& info) {
  BoxOf(info)->fast_path->closeIdle();
  return info.Env().Undefined();
}

// fastPathAbort(handle, connId)
Napi::Value Abort(const Napi::CallbackInfo& info) {
  BoxOf(info)->fast_path->abort(U32(info[1]));
  return info.Env().Undefined();
}

Napi::Value Ref(const Napi::CallbackInfo& info) {
  BoxOf(info)->fn.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value Unref(const Napi::CallbackInfo& info) {
  BoxOf(info)->fn.Unref(info.Env());
  return info.Env().Undefined();
}

}  // namespace

void InitHttpFastPathBindings(Napi::Env env, Napi::Object exports) {
  const struct {
    const char* name;
    Napi::Function::Callback fn;
  } fns[] = {
      {"fastPathCreate", Create},       {"fastPathAdd", Add},           {"fastPathSetRoute", SetRoute},
      {"fastPathClearRoutes", ClearRoutes}, {"fastPathCloseIdle", CloseIdle}, {"fastPathRef", Ref},
      {"fastPathUnref", Unref},         {"fastPathAbort", Abort},
  };
  for (const auto& f : fns) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
}

}  // namespace interpose
