// Reading a /proc/net file as a given network namespace sees it (e.g. ip_tables_names, which
// says whether legacy iptables holds any table there) without starting a process in it.
// Plain C++; no Node types.
#pragma once

#include <cstddef>
#include <string>

namespace interpose {

// Reads /proc/thread-self/net/`name` from a short-lived thread that entered the network
// namespace bound at `netnsPath` (the calling thread's namespace never changes), at most
// `limit` bytes. `name` must be a plain file name (no '/'; checked by the caller). Returns 0
// with `*content` set, or an errno with `*syscall` naming the failing call (open, setns, read).
int ReadProcNetIn(const std::string& netnsPath, const std::string& name, size_t limit, std::string* content,
                  const char** syscall);

}  // namespace interpose
