// Zero-copy TCP relay: one thread, one epoll set, splice(2) through a pipe per direction.
//
// Why: a Node stream relay copies every byte twice between the kernel and the JS heap and
// runs a handful of JS callbacks per chunk; splice(2) moves socket pages into a pipe and on to
// the other socket without them ever reaching user space (the technique HAProxy's
// "option splice-auto" and nginx use; see splice(2), vmsplice(2) and Linux's
// Documentation/filesystems/splice.rst).
//
// The relay takes over two connected, non-blocking TCP sockets (it dup()s them, so the caller
// may close its own descriptors at once) and keeps Envoy's TCP proxy semantics, as the JS relay
// (src/target/relay.ts) does:
//   - half-close in both directions: a FIN from one side is forwarded as shutdown(SHUT_WR)
//     once the bytes before it are delivered; the other direction keeps flowing;
//   - a reset (ECONNRESET/EPIPE) on one side becomes a reset on the other (SO_LINGER 0);
//   - backpressure: a direction reads only while its pipe is empty, so at most one pipe's
//     worth (64 KiB by default) is in flight per direction and a slow reader slows the writer;
//   - an idle timeout over both directions;
//   - it ends when both directions are finished, or on the first reset, error or abort.
//
// Threading: add() and abort() may be called from any thread (they queue and wake the loop
// through an eventfd); the completion callback runs on the relay thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace interpose::relay {

/** How a relayed connection ended, in Envoy's response-flag vocabulary. */
enum class EndFlag {
  kNone,              // "-": both directions finished normally
  kDownstreamReset,   // "DC": the client reset or failed
  kUpstreamReset,     // "UC": the upstream reset or failed
  kIdleTimeout,       // "SI": no bytes either way for idle_ms
  kAborted,           // the owner aborted it (drain deadline, shutdown)
};

const char* EndFlagText(EndFlag flag);

struct RelayDone {
  uint32_t id = 0;
  uint64_t down_to_up = 0;  // bytes read from downstream and delivered upstream (head excluded)
  uint64_t up_to_down = 0;  // bytes read from upstream and delivered downstream
  EndFlag flag = EndFlag::kNone;
  int error = 0;            // errno behind a reset/failure, 0 otherwise
  std::string head;         // the first bytes the client sent, when capture was asked for
};

struct RelayRequest {
  uint32_t id = 0;
  int down_fd = -1;          // connected TCP sockets; the relay dup()s them
  int up_fd = -1;
  std::string head;          // bytes already read from downstream, written upstream first
  bool down_ended = false;   // the client's FIN was already read: forward it after `head`
  uint32_t idle_ms = 0;      // 0 = no idle timeout
  uint32_t capture = 0;      // peek up to this many first bytes of the client's data
};

class SpliceRelay {
 public:
  using DoneCallback = std::function<void(RelayDone&&)>;

  /** Starts the relay thread. Throws std::system_error when epoll/eventfd/thread fail. */
  explicit SpliceRelay(DoneCallback on_done);
  /** Stops the thread and closes every connection still open (without callbacks). */
  ~SpliceRelay();
  SpliceRelay(const SpliceRelay&) = delete;
  SpliceRelay& operator=(const SpliceRelay&) = delete;

  /**
   * Takes over a connection. Returns 0, or an errno when the sockets could not be taken over
   * (then nothing was taken and no callback will come).
   */
  int add(RelayRequest&& request);
  /** Ends connection `id` (both sockets closed, callback with kAborted); unknown ids are ignored. */
  void abort(uint32_t id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interpose::relay
