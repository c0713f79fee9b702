// N-API glue for nfnetlink/netfilter_batch.*: sendNetfilterBatch(bytes, netnsPath) returns a
// Promise of { replies: [{ seq, error, message }] }, or of { errno, syscall } when a system call
// failed; src/kernel/nft-netlink-apply.ts reads both.
#pragma once

#include <napi.h>

namespace interpose {

void InitNetlinkBindings(Napi::Env env, Napi::Object exports);

}  // namespace interpose
