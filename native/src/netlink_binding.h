// N-API glue for nfnetlink/netfilter_batch.*: sendNetfilterBatch (a transaction, off the event
// loop) and dumpNetfilter (a GET dump request); src/native.ts wraps both.
#pragma once

#include <napi.h>

namespace interpose {

void InitNetlinkBindings(Napi::Env env, Napi::Object exports);

}  // namespace interpose
