// N-API glue for the CIDR trie: argument unpacking only. The trie lives in a napi_external
// (type-tagged, freed by its finalizer); every function takes that handle first. Plain
// Node-API rather than node-addon-api's ObjectWrap: lookup4/lookup6 are called once per
// connection on the redirect target's hot path, and skipping napi_unwrap and the wrapper's
// CallbackInfo roughly halves the cost of the call. TypeScript (src/net/cidr-trie.ts) has
// validated every argument; the checks here only stop misuse from crashing the process.
#pragma once

#include <node_api.h>

#include "lpm/lpm_trie.h"

namespace interpose {

/** Registers createTrie, trieInsert4 … trieMemoryBytes, trieInsertMany4/6 on exports. */
void InitTrieBindings(napi_env env, napi_value exports);

/** The trie behind a handle from createTrie, or nullptr (with a TypeError pending). */
const lpm::LpmTrie* TrieFromHandle(napi_env env, napi_value handle);

}  // namespace interpose
