// Module registration only; the bindings live in trie_binding.cc, socket_binding.cc,
// relay_binding.cc, netlink_binding.cc, file_lock_binding.cc and
// http_fast_path_binding.cc.
#include <napi.h>

#include "file_lock_binding.h"
#include "http_fast_path_binding.h"
#include "netlink_binding.h"
#include "relay_binding.h"
#include "socket_binding.h"
#include "trie_binding.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  interpose::InitTrieBindings(env, exports);
  interpose::InitSocketBindings(env, exports);
  interpose::InitRelayBindings(env, exports);
  interpose::InitNetlinkBindings(env, exports);
  interpose::InitFileLockBindings(env, exports);
  interpose::InitHttpFastPathBindings(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(interpose_native, Init)
