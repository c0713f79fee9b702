// An exclusive flock(2) taken without waiting: Node has no flock, and spawning flock(1) for an
// uncontended lock costs a process. Plain C++; no Node types.
#pragma once

namespace interpose {

/**
 * flock(fd, LOCK_EX | LOCK_NB). Returns 0 with `*locked` = true when the lock is now held
 * through `fd`'s open file description, 0 with `*locked` = false when another open file
 * description holds it (EWOULDBLOCK), or an errno with `*syscall` naming the call. Retries EINTR.
 */
int tryLockExclusive(int fd, bool* locked, const char** syscall);

}  // namespace interpose
