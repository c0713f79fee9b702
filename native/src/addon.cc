// Module registration only; the bindings live in trie_binding.cc and socket_binding.cc.
#include <napi.h>

#include "socket_binding.h"
#include "trie_binding.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  interpose::InitTrieBindings(env, exports);
  interpose::InitSocketBindings(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(interpose_native, Init)
