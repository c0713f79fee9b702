// N-API glue for the splice relay (relay/splice_relay.h): a type-tagged external owns one
// relay thread; completions come back to JS through a thread-safe function. TypeScript
// (src/proxy/splice-relay.linux.ts) validates every argument before it gets here.
#pragma once

#include <napi.h>

namespace interpose {

/** Registers relayCreate, relayAdd, relayAbort, relayRef, relayUnref and the listener calls. */
void InitRelayBindings(Napi::Env env, Napi::Object exports);

}  // namespace interpose
