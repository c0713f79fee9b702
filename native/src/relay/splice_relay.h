// TCP relay on its own thread: one epoll set; recv/send for small transfers, zero-copy
// splice(2) through a pipe per direction for bulk ones.
//
// Why: a Node stream relay copies every byte twice between the kernel and the JS heap and
// runs a handful of JS callbacks per chunk; splice(2) moves socket pages into a pipe and on to
// the other socket without them ever reaching user space (the technique HAProxy's
// "option splice-auto" and nginx use; see splice(2), vmsplice(2) and Linux's
// Documentation/filesystems/splice.rst).
//
// The relay takes over two connected, non-blocking TCP sockets (it dup()s them, so the caller
// may close its own descriptors at once) and keeps Envoy's TCP proxy semantics, as the JS relay
// (src/proxy/relay.ts) does:
//   - half-close in both directions: a FIN from one side is forwarded as shutdown(SHUT_WR)
//     once the bytes before it are delivered; the other direction keeps flowing;
//   - a reset (ECONNRESET/EPIPE) on one side becomes a reset on the other (SO_LINGER 0);
//   - backpressure: a direction reads only once what it read before is written, so at most one
//     16 KiB buffer (small transfers, recv/send) or one pipe (64 KiB by default, once a read
//     filled the buffer and the direction switched to splice) is in flight per direction, and a
//     slow reader slows the writer;
//   - an idle timeout over both directions;
//   - it ends when both directions are finished, or on the first reset, error or abort.
//
// It can also own listening sockets (listen()): it accepts on its thread, reads each
// connection's original destination (SO_ORIGINAL_DST) and addresses, and reports it; the
// owner then decides per connection — connect() upstream and relay (the upstream connect runs
// on the relay thread too, bounded by a timeout), release() the socket to handle it itself, or
// closeAccepted(). A listener's passthrough policy (setPassthrough(): the destination ports the
// owner lets through, as data) lets the relay connect the connections it covers at once,
// without asking: the owner only hears of them, in batches, and keeps no sockets for them.
//
// Threading: every public method may be called from any thread (state shared with the relay
// thread is queued under a mutex and the loop woken through an eventfd); the events callback
// runs on the relay thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sys/socket.h>

namespace interpose::relay {

/** How a relayed connection ended, in Envoy's response-flag vocabulary. */
enum class EndFlag {
  kNone,              // "-": both directions finished normally
  kDownstreamReset,   // "DC": the client reset or failed
  kUpstreamReset,     // "UC": the upstream reset or failed
  kIdleTimeout,       // "SI": no bytes either way for idle_ms
  kAborted,           // the owner aborted it (drain deadline, shutdown)
  kConnectFailed,     // "UF": the upstream connect failed or timed out (connect() only)
};

const char* EndFlagText(EndFlag flag);

struct RelayDone {
  uint32_t id = 0;
  uint64_t down_to_up = 0;  // bytes read from downstream and delivered upstream (head excluded)
  uint64_t up_to_down = 0;  // bytes read from upstream and delivered downstream
  EndFlag flag = EndFlag::kNone;
  int error = 0;            // errno behind a reset/failure, 0 otherwise
  std::string head;         // the first bytes the client sent, when capture was asked for
  std::string upstream_local;  // the upstream socket's local address (connect() only)
  uint16_t upstream_local_port = 0;
  double duration_ms = 0;   // from accept (accepted connections) or add() to the end
};

/** A connection accepted on a listen()ing socket, awaiting the owner's decision. */
struct Accepted {
  uint32_t id = 0;           // ids of accepted connections have the top bit set
  uint32_t listener_id = 0;
  int dst_error = 0;         // errno from SO_ORIGINAL_DST (ENOENT: not redirected), else 0
  std::string dst_address;
  uint16_t dst_port = 0;
  std::string peer_address;
  uint16_t peer_port = 0;
  std::string local_address;
  uint16_t local_port = 0;
  bool passthrough = false;  // the listener's passthrough policy took it: already connecting
  bool refused = false;      // the policy's connection limit was hit: it was reset and closed
  double accepted_at_ms = 0; // wall clock (ms since the epoch) of the accept
};

/**
 * Events for the owner, in order: accepted connections first, then finished ones. Batched:
 * an accepted connection waiting for a decision is delivered at once; bookkeeping (finished
 * connections, ones the passthrough policy took) waits up to a few milliseconds to share a
 * delivery with others, so the owner's thread is woken far less often than once per event.
 */
struct RelayEvents {
  std::vector<Accepted> accepted;
  std::vector<RelayDone> done;
};

/**
 * Which accepted connections the relay passes through on its own, connecting them to their
 * original destination at once instead of waiting for the owner's decision. The owner says which
 * destination ports qualify (why a port does is its business, not the relay's); a connection
 * qualifies when its original destination port is one of them and it was redirected to us (a
 * connection made straight to the listener has no original destination, or has the listener's
 * own address as one, and connecting there would loop back).
 */
struct PassthroughPolicy {
  // ports[p]: connections to port p pass through. Ports past the end do not; empty: none do.
  std::vector<bool> ports;
  uint32_t connect_timeout_ms = 0;
  uint32_t idle_ms = 0;
  uint32_t capture = 0;
  // Connections the policy may hold open together, counting the owner's other open ones
  // (setOwnerConnections); beyond it, new ones are reset and reported refused. 0: no limit.
  uint32_t max_connections = 0;

  bool covers(uint16_t port) const { return port < ports.size() && ports[port]; }
};

/** Where connect() goes: an address, optionally a local address to bind first. */
struct ConnectTarget {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  sockaddr_storage bind{};
  socklen_t bind_len = 0;    // 0: let the kernel choose
  uint32_t timeout_ms = 0;   // 0: no connect timeout
};

struct RelayRequest {
  uint32_t id = 0;
  int down_fd = -1;          // connected TCP sockets; the relay dup()s them
  int up_fd = -1;
  std::string head;          // bytes already read from downstream, written upstream first
  bool down_ended = false;   // the client's FIN was already read: forward it after `head`
  uint32_t idle_ms = 0;      // 0 = no idle timeout
  uint32_t capture = 0;      // peek up to this many first bytes of the client's data
  bool connect = false;      // up_fd is -1: connect to `target` first (accepted connections)
  ConnectTarget target;
  uint64_t accepted_us = 0;  // monotonic µs of the accept (accepted connections), for durations
};

class SpliceRelay {
 public:
  using EventsCallback = std::function<void(RelayEvents&&)>;

  /** Starts the relay thread. Throws std::system_error when epoll/eventfd/thread fail. */
  explicit SpliceRelay(EventsCallback on_events);
  /** Stops the thread and closes every connection still open (without callbacks). */
  ~SpliceRelay();
  SpliceRelay(const SpliceRelay&) = delete;
  SpliceRelay& operator=(const SpliceRelay&) = delete;

  /**
   * Takes over a connection. Returns 0, or an errno when the sockets could not be taken over
   * (then nothing was taken and no callback will come).
   */
  int add(RelayRequest&& request);
  /**
   * Ends connection `id` (both sockets closed, the client's with an RST when `reset`; callback
   * with kAborted); unknown ids are ignored.
   */
  void abort(uint32_t id, bool reset = false);

  /**
   * Listens on `addr` (SO_REUSEADDR; an IPv6 wildcard takes IPv4 too) and accepts on the relay
   * thread. Returns 0 and the bound port, or an errno (nothing listens then).
   */
  int listen(uint32_t listener_id, const sockaddr* addr, socklen_t len, int backlog, uint16_t* port);
  /** Stops accepting on `listener_id` and closes its socket. */
  void unlisten(uint32_t listener_id);
  /**
   * Sets the passthrough policy of listener `listener_id` (replacing the previous one): its
   * accepted connections that the policy covers are reported with passthrough = true and
   * connected upstream at once; the owner must not decide on them, only track them.
   */
  void setPassthrough(uint32_t listener_id, const PassthroughPolicy& policy);
  /** How many connections the owner holds besides those its passthrough policies took. */
  void setOwnerConnections(uint32_t count);
  /** Hands accepted connection `id` to the caller: its fd (caller owns it), or -1 if unknown. */
  int release(uint32_t id);
  /** Closes accepted connection `id` (with an RST when `reset`); false if unknown. */
  bool closeAccepted(uint32_t id, bool reset);
  /**
   * Connects accepted connection `id` to `target` on the relay thread and relays; the done
   * callback reports kConnectFailed (and resets the client on ECONNREFUSED) if that fails.
   * Returns 0, or ENOENT for an unknown id.
   */
  int connect(uint32_t id, const ConnectTarget& target, uint32_t idle_ms, uint32_t capture);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interpose::relay
