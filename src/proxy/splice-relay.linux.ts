/**
 * The zero-copy relay: hands a connected downstream/upstream socket pair to the addon's
 * splice(2) thread (native/src/relay/splice_relay.h) and resolves when it has finished, with
 * the same result the stream relay (relay.ts) gives. Same semantics — half-close both ways,
 * RST forwarded, bounded buffering, idle timeout — but the bytes never enter the JS heap and no
 * JS runs per chunk, which is what lets the proxy keep up with HAProxy on bulk transfers.
 *
 * The handoff dup()s both descriptors inside the addon and then destroys the Node sockets, so
 * libuv stops watching them; the kernel sockets live on in the relay thread. Anything Node
 * had already read from the downstream (sniffed bytes, or what it read ahead while paused) is
 * taken out of its buffer and written upstream first.
 *
 * The relay can also own a listening socket (listen()): it accepts on its thread and reports
 * each connection with its original destination; the owner then has it connect upstream and
 * relay (connect()), takes the socket into Node (release()), or refuses it (closeAccepted()).
 * A passthrough connection then costs Node two callbacks and no sockets of its own.
 */
import { isIP, Socket } from 'node:net';
import { loadAddon, nativeError, socketFd, type NativeAddon } from '../native.js';
import { isPort, MAX_PORT } from '../net/port.js';
import type { Endpoint } from './original-destination.linux.js';
import type { RelayOptions, RelayResult } from './relay.js';

type RelayHandle = object & { readonly __spliceRelay: unique symbol };

type OnDone = (
  id: number,
  downToUp: number,
  upToDown: number,
  flag: string,
  errno: number,
  head: Buffer | undefined,
  upstreamLocalAddress: string | undefined,
  upstreamLocalPort: number | undefined,
  durationMs: number,
) => void;
type OnAccept = (
  id: number,
  listenerId: number,
  dstErrno: number,
  dstAddress: string,
  dstPort: number,
  peerAddress: string,
  peerPort: number,
  localAddress: string,
  localPort: number,
  passthrough: boolean,
  acceptedAtMs: number,
  refused: boolean,
) => void;

interface SpliceRelayAddon {
  relayCreate(onDone: OnDone, onAccept: OnAccept): RelayHandle;
  relayAdd(
    h: RelayHandle,
    id: number,
    downFd: number,
    upFd: number,
    head: Buffer | undefined,
    downEnded: boolean,
    idleMs: number,
    capture: number,
  ): number;
  relayAbort(h: RelayHandle, id: number, reset: boolean): void;
  relaySetPassthrough(
    h: RelayHandle,
    listenerId: number,
    ports: Uint8Array,
    connectTimeoutMs: number,
    idleMs: number,
    capture: number,
    maxConnections: number,
  ): void;
  relaySetOwnerConnections(h: RelayHandle, count: number): void;
  relayRef(h: RelayHandle): void;
  relayUnref(h: RelayHandle): void;
  relayListen(h: RelayHandle, listenerId: number, address: string, port: number, backlog: number): [number, number];
  relayUnlisten(h: RelayHandle, listenerId: number): void;
  relayRelease(h: RelayHandle, id: number): number;
  relayCloseAccepted(h: RelayHandle, id: number, reset: boolean): boolean;
  relayConnect(
    h: RelayHandle,
    id: number,
    address: string,
    port: number,
    bindAddress: string,
    connectTimeoutMs: number,
    idleMs: number,
    capture: number,
  ): number;
}

/** A connection the relay's own listener accepted; the owner must decide on it at once. */
export interface AcceptedConnection {
  id: number;
  /** Where it was going before REDIRECT; undefined when it was not redirected (errno in dstErrno). */
  originalDst: Endpoint | undefined;
  dstErrno: number;
  peer: Endpoint;
  local: Endpoint;
  /**
   * The listener's passthrough policy took it: the relay is already connecting it to its
   * original destination. Track it with adopt() (or abort() it); do not decide on it.
   */
  passthrough: boolean;
  /** When the relay accepted it (ms since the epoch): the access log's START_TIME. */
  acceptedAtMs: number;
  /**
   * The passthrough policy's connection limit was hit: the relay has reset and closed it
   * already; only report it.
   */
  refused: boolean;
}

/** See setPassthrough(). */
export interface PassthroughPolicy {
  /**
   * One flag per port number (65536 of them): connections redirected to a port whose flag is
   * not 0 are passed through; the rest wait for the owner's decision. The relay applies no
   * rule of its own beyond this (and never passes through a connection that was not redirected).
   */
  ports: Uint8Array;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** As SpliceRelayOptions.capture. */
  capture: number;
  /**
   * Open connections allowed together, counting the owner's others (setOwnerConnections);
   * the relay resets new ones beyond it and reports them refused. 0: no limit.
   */
  maxConnections: number;
}

/** A listening socket owned by the relay thread. */
export interface RelayListener {
  port: number;
  /**
   * Lets the relay pass connections through on its own, without asking (see
   * AcceptedConnection.passthrough); replaces the previous policy.
   */
  setPassthrough(policy: PassthroughPolicy): void;
  close(): void;
}

export interface SpliceRelayOptions extends RelayOptions {
  /** Peek up to this many of the client's first bytes and return them (to read an SNI for the log). */
  capture?: number;
}

export interface SpliceRelayResult extends RelayResult {
  /** The client's first bytes, when `capture` was asked for and the client sent any. */
  firstBytes?: Buffer;
  /** The upstream socket's local address (connections the relay connected itself). */
  upstreamLocal?: Endpoint;
  /** From the accept (connections the relay accepted) or the handoff to the end, in ms. */
  durationMs: number;
}

/** A started relay: its result, and a way to end it early (drain deadline). */
export interface SpliceRelaySession {
  done: Promise<SpliceRelayResult>;
  abort(): void;
}

interface Pending {
  resolve: (r: SpliceRelayResult) => void;
  /** Bytes taken from Node's buffers and written upstream by the relay: received, not spliced. */
  headBytes: number;
}

/** Ids picked here stay below 2^31: the relay's accepted connections use the top bit. */
const MAX_ID = 0x7fffffff;
const MAX_TIMEOUT_MS = 0xffffffff;

export class SpliceRelay {
  private readonly addon: NativeAddon & SpliceRelayAddon;
  private readonly handle: RelayHandle;
  private readonly pending = new Map<number, Pending>();
  private readonly acceptHandlers = new Map<number, (c: AcceptedConnection) => void>();
  private nextId = 1;
  private nextListenerId = 1;
  private referenced = false;

  /** Starts the relay thread. Throws InterceptError when the addon is not built. */
  constructor() {
    this.addon = loadAddon() as NativeAddon & SpliceRelayAddon;
    this.handle = this.addon.relayCreate(
      (...done) => this.finished(...done),
      (id, listenerId, dstErrno, dstAddress, dstPort, peerAddress, peerPort, localAddress, localPort, passthrough, acceptedAtMs, refused) => {
        const onAccept = this.acceptHandlers.get(listenerId);
        if (!onAccept && !refused) {
          if (passthrough) this.addon.relayAbort(this.handle, id, true);
          else this.addon.relayCloseAccepted(this.handle, id, true);
          return;
        }
        onAccept?.({
          id,
          originalDst: dstErrno === 0 ? { address: dstAddress, port: dstPort } : undefined,
          dstErrno,
          peer: { address: peerAddress, port: peerPort },
          local: { address: localAddress, port: localPort },
          passthrough,
          acceptedAtMs,
          refused,
        });
      },
    );
  }

  /**
   * Listens on address:port (an IP literal; "::" takes IPv4 too) with the relay thread doing
   * the accepts. Every accepted connection is reported to `onAccept`, which must call
   * connect(), release() or closeAccepted() for it.
   */
  listen(address: string, port: number, onAccept: (c: AcceptedConnection) => void, backlog = 4096): RelayListener {
    if (isIP(address) === 0) throw new TypeError(`listen: address must be an IP literal, got ${JSON.stringify(address)}`);
    if (!isPort(port, 0)) throw new RangeError(`listen: port ${port} is out of range: expected 0-65535`);
    const listenerId = this.nextListenerId++;
    const [errno, bound] = this.addon.relayListen(this.handle, listenerId, address, port, backlog);
    if (errno !== 0) {
      throw nativeError({ errno, syscall: `listen on ${address} port ${port}` });
    }
    this.acceptHandlers.set(listenerId, onAccept);
    this.updateRef();
    return {
      port: bound,
      setPassthrough: (policy) => {
        if (!(policy.ports instanceof Uint8Array) || policy.ports.length !== MAX_PORT + 1) {
          throw new TypeError('setPassthrough: ports must be a Uint8Array with one flag per port number (65536)');
        }
        this.addon.relaySetPassthrough(
          this.handle,
          listenerId,
          policy.ports,
          clampMs(policy.connectTimeoutMs),
          clampMs(policy.idleTimeoutMs),
          policy.capture,
          Math.max(0, Math.min(policy.maxConnections, 0xffffffff)),
        );
      },
      close: () => {
        if (!this.acceptHandlers.delete(listenerId)) return;
        this.addon.relayUnlisten(this.handle, listenerId);
        this.updateRef();
      },
    };
  }

  /**
   * Connects accepted connection `id` to `upstream` on the relay thread and relays. The
   * result's flag is "UF" when the connect fails or times out; a refused
   * connect resets the client.
   */
  connect(
    id: number,
    upstream: { address: string; port: number; localAddress?: string },
    options: { connectTimeoutMs: number; idleTimeoutMs: number; capture?: number },
  ): SpliceRelaySession {
    if (isIP(upstream.address) === 0) throw new TypeError(`connect: address must be an IP literal, got ${JSON.stringify(upstream.address)}`);
    if (upstream.localAddress !== undefined && isIP(upstream.localAddress) === 0) {
      throw new TypeError(`connect: localAddress must be an IP literal, got ${JSON.stringify(upstream.localAddress)}`);
    }
    const done = new Promise<SpliceRelayResult>((resolve) => this.pending.set(id, { resolve, headBytes: 0 }));
    const errno = this.addon.relayConnect(
      this.handle,
      id,
      upstream.address,
      upstream.port,
      upstream.localAddress ?? '',
      clampMs(options.connectTimeoutMs),
      clampMs(options.idleTimeoutMs),
      options.capture ?? 0,
    );
    if (errno !== 0) {
      this.pending.delete(id);
      return { done: Promise.resolve({ bytesReceived: 0, bytesSent: 0, flag: 'DC', durationMs: 0 }), abort: () => {} };
    }
    this.updateRef();
    return { done, abort: () => this.addon.relayAbort(this.handle, id, false) };
  }

  /** Tracks a connection the relay passed through on its own (AcceptedConnection.passthrough). */
  adopt(id: number): SpliceRelaySession {
    const done = new Promise<SpliceRelayResult>((resolve) => this.pending.set(id, { resolve, headBytes: 0 }));
    this.updateRef();
    return { done, abort: () => this.addon.relayAbort(this.handle, id, false) };
  }

  /** Ends a connection the relay carries; the client gets an RST when `reset`. */
  abort(id: number, reset: boolean): void {
    this.addon.relayAbort(this.handle, id, reset);
  }

  /** Tells the relay how many open connections the owner holds besides those its policies took. */
  setOwnerConnections(count: number): void {
    this.addon.relaySetOwnerConnections(this.handle, count);
  }

  /** Takes accepted connection `id` out of the relay as a paused Node socket, or undefined if gone. */
  release(id: number): Socket | undefined {
    const fd = this.addon.relayRelease(this.handle, id);
    if (fd < 0) return undefined;
    // pauseOnCreate: nothing is read until a handler resumes it, as with pauseOnConnect.
    return new Socket({ fd, readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: true } as ConstructorParameters<typeof Socket>[0]);
  }

  /** Closes accepted connection `id` without serving it (an RST when `reset`). */
  closeAccepted(id: number, reset: boolean): void {
    this.addon.relayCloseAccepted(this.handle, id, reset);
  }

  /** The relay thread keeps the process alive while it listens or relays. */
  private updateRef(): void {
    const wanted = this.pending.size > 0 || this.acceptHandlers.size > 0;
    if (wanted === this.referenced) return;
    this.referenced = wanted;
    if (wanted) this.addon.relayRef(this.handle);
    else this.addon.relayUnref(this.handle);
  }

  /**
   * Takes over `down` and `up` (both connected; `up` not yet read from) and relays between
   * them. The sockets are destroyed on return; use the session's result instead of their events.
   */
  start(down: Socket, up: Socket, options: SpliceRelayOptions): SpliceRelaySession {
    const id = this.allocateId();
    // What Node holds already: bytes unshifted by sniffing or read ahead while paused.
    const buffered: Buffer[] = [];
    if (options.downstreamEnded && options.head && options.head.length > 0) buffered.push(options.head);
    for (let chunk: Buffer | null; (chunk = down.read() as Buffer | null) !== null; ) buffered.push(chunk);
    const head = buffered.length > 0 ? Buffer.concat(buffered) : undefined;
    // Sniffed bytes are counted as received either way (see RelayOptions.head).
    const sniffedCounted = options.head?.length ?? 0;
    const headBytes = Math.max(head?.length ?? 0, sniffedCounted);

    const err = this.addon.relayAdd(
      this.handle,
      id,
      socketFd(down),
      socketFd(up),
      head,
      options.downstreamEnded === true,
      clampMs(options.idleTimeoutMs),
      options.capture ?? 0,
    );
    if (err !== 0) {
      down.destroy();
      up.destroy();
      return { done: Promise.resolve({ bytesReceived: headBytes, bytesSent: 0, flag: 'DC', durationMs: 0 }), abort: () => {} };
    }
    const done = new Promise<SpliceRelayResult>((resolve) => this.pending.set(id, { resolve, headBytes }));
    this.updateRef();
    // Node's copies of the descriptors go; the relay's dups keep the connections open.
    down.destroy();
    up.destroy();
    return { done, abort: () => this.addon.relayAbort(this.handle, id, false) };
  }

  private allocateId(): number {
    do {
      this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private readonly finished: OnDone = (id, downToUp, upToDown, flag, _errno, head, localAddress, localPort, durationMs) => {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.updateRef();
    p.resolve({
      bytesReceived: p.headBytes + downToUp,
      bytesSent: upToDown,
      durationMs,
      // An aborted relay ended by our own decision (the drain deadline): Envoy logs no flag.
      flag: flag === 'aborted' ? '-' : flag,
      ...(head ? { firstBytes: head } : {}),
      ...(localAddress !== undefined ? { upstreamLocal: { address: localAddress, port: localPort ?? 0 } } : {}),
    });
  };
}

function clampMs(ms: number): number {
  return Math.max(0, Math.min(Math.round(ms), MAX_TIMEOUT_MS));
}
