// N-API glue for netlink/netlink_socket.*: sendNetlink (a request or an nf_tables transaction,
// off the event loop) and dumpNetlink (a GET dump request); src/native.ts wraps both.
#pragma once

#include <napi.h>

namespace interpose {

void InitNetlinkBindings(Napi::Env env, Napi::Object exports);

}  // namespace interpose
