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
 */
import type { Socket } from 'node:net';
import { loadAddon, socketFd, type NativeAddon } from '../native.js';
import type { RelayOptions, RelayResult } from './relay.js';

type RelayHandle = object & { readonly __spliceRelay: unique symbol };

interface SpliceRelayAddon {
  relayCreate(
    onDone: (id: number, downToUp: number, upToDown: number, flag: string, errno: number, head?: Buffer) => void,
  ): RelayHandle;
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
  relayAbort(h: RelayHandle, id: number): void;
  relayRef(h: RelayHandle): void;
  relayUnref(h: RelayHandle): void;
}

export interface SpliceRelayOptions extends RelayOptions {
  /** Peek up to this many of the client's first bytes and return them (to read an SNI for the log). */
  capture?: number;
}

export interface SpliceRelayResult extends RelayResult {
  /** The client's first bytes, when `capture` was asked for and the client sent any. */
  firstBytes?: Buffer;
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

const MAX_ID = 0xffffffff;

export class SpliceRelay {
  private readonly addon: NativeAddon & SpliceRelayAddon;
  private readonly handle: RelayHandle;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /** Starts the relay thread. Throws InterceptError when the addon is not built. */
  constructor() {
    this.addon = loadAddon() as NativeAddon & SpliceRelayAddon;
    this.handle = this.addon.relayCreate((id, downToUp, upToDown, flag, errno, head) =>
      this.finished(id, downToUp, upToDown, flag, errno, head),
    );
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
      Math.max(0, Math.min(options.idleTimeoutMs, MAX_ID)),
      options.capture ?? 0,
    );
    if (err !== 0) {
      down.destroy();
      up.destroy();
      return { done: Promise.resolve({ bytesReceived: headBytes, bytesSent: 0, flag: 'DC' }), abort: () => {} };
    }
    if (this.pending.size === 0) this.addon.relayRef(this.handle);
    const done = new Promise<SpliceRelayResult>((resolve) => this.pending.set(id, { resolve, headBytes }));
    // Node's copies of the descriptors go; the relay's dups keep the connections open.
    down.destroy();
    up.destroy();
    return { done, abort: () => this.addon.relayAbort(this.handle, id) };
  }

  private allocateId(): number {
    do {
      this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private finished(id: number, downToUp: number, upToDown: number, flag: string, _errno: number, head?: Buffer): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.addon.relayUnref(this.handle);
    p.resolve({
      bytesReceived: p.headBytes + downToUp,
      bytesSent: upToDown,
      // An aborted relay ended by our own decision (the drain deadline): Envoy logs no flag.
      flag: flag === 'aborted' ? '-' : flag,
      ...(head ? { firstBytes: head } : {}),
    });
  }
}
