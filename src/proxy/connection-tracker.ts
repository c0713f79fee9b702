/**
 * Counts and holds every accepted connection: enforces --max-connections (with one clear log
 * line per second while the limit is hit, not one per refused connection), and lets SIGTERM
 * drain them within a bound.
 *
 * A connection is usually a Node socket, but it may live without one: accepted by the splice
 * relay's own listener (admitDetached), or handed to the relay after Node closed its socket
 * (hold). Each entry therefore carries how to end it early and is forgotten exactly once.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ProxyMetrics } from './metrics.js';

interface Entry {
  /** Ends the connection now (drain deadline). */
  abort: () => void;
  /** Its socket's 'close' no longer ends it: the splice relay carries it (hold). */
  held: boolean;
  listener: string;
  /** Taken by the splice relay's passthrough policy, which counts (and limits) those itself. */
  byRelayPolicy: boolean;
}

/** A connection admitted without a socket; see admitDetached. */
export interface DetachedAdmission {
  /** How to end it early (drain deadline); replaces the previous one. */
  setAbort(abort: () => void): void;
  /** From now on the connection lives and dies with `socket`. */
  attach(socket: Socket): void;
  /** The connection has ended. Idempotent. */
  done(): void;
}

export class ConnectionTracker {
  private readonly open = new Set<Entry>();
  private readonly bySocket = new WeakMap<Socket, Entry>();
  private lastLimitLog = 0;
  private refusedSinceLog = 0;
  private drainWaiters: (() => void)[] = [];
  private ownCount = 0;
  /**
   * Told how many open connections are not the relay policy's own, whenever that changes:
   * the splice relay needs it to apply --max-connections to the ones it passes through.
   */
  onOwnCountChange: ((count: number) => void) | undefined;

  constructor(
    private readonly maxConnections: number,
    private readonly log: Logger,
    private readonly metrics: ProxyMetrics,
  ) {}

  get size(): number {
    return this.open.size;
  }

  /** Registers an accepted socket; false (and the socket reset) when the limit is reached. */
  admit(socket: Socket, listener: string): boolean {
    if (!this.hasRoom(listener)) {
      socket.resetAndDestroy();
      return false;
    }
    const entry = this.add(listener, () => socket.destroy());
    this.follow(socket, entry);
    return true;
  }

  /**
   * Registers a connection that has no Node socket (yet); undefined when the limit is reached
   * (the caller refuses it). One the relay's passthrough policy took (`byRelayPolicy`) was
   * admitted by the relay already and is only counted.
   */
  admitDetached(listener: string, options: { byRelayPolicy?: boolean } = {}): DetachedAdmission | undefined {
    const byRelayPolicy = options.byRelayPolicy === true;
    if (!byRelayPolicy && !this.hasRoom(listener)) return undefined;
    const entry = this.add(listener, () => {}, byRelayPolicy);
    return {
      setAbort: (abort) => {
        entry.abort = abort;
      },
      attach: (socket) => {
        entry.abort = () => socket.destroy();
        this.follow(socket, entry);
      },
      done: () => this.forget(entry),
    };
  }

  /**
   * Keeps `socket`'s connection counted after the socket itself closes: the splice relay has
   * taken its descriptor over. `abort` ends it early (drain deadline). Call the returned
   * function once the connection has really ended.
   */
  hold(socket: Socket, abort: () => void): () => void {
    const entry = this.bySocket.get(socket);
    if (!entry || !this.open.has(entry)) return () => {};
    entry.held = true;
    entry.abort = abort;
    return () => this.forget(entry);
  }

  /** Resolves when every connection has closed, or after `timeoutMs` having ended the rest. */
  drain(timeoutMs: number): Promise<{ remaining: number }> {
    if (this.open.size === 0) return Promise.resolve({ remaining: 0 });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const remaining = this.open.size;
        for (const entry of [...this.open]) entry.abort();
        resolve({ remaining });
      }, timeoutMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve({ remaining: 0 });
      });
    });
  }

  /** A connection the relay refused at the limit on its own: counted and logged like ours. */
  refusedByRelay(listener: string): void {
    this.refuse(listener);
  }

  private hasRoom(listener: string): boolean {
    if (this.open.size < this.maxConnections) return true;
    this.refuse(listener);
    return false;
  }

  private refuse(listener: string): void {
    this.metrics.overflow.inc();
    this.refusedSinceLog++;
    const now = Date.now();
    if (now - this.lastLimitLog >= 1000) {
      this.log.warn(
        { limit: this.maxConnections, refused: this.refusedSinceLog, listener },
        `connection limit reached (--max-connections ${this.maxConnections}): refusing new connections`,
      );
      this.lastLimitLog = now;
      this.refusedSinceLog = 0;
    }
  }

  private add(listener: string, abort: () => void, byRelayPolicy = false): Entry {
    const entry: Entry = { abort, held: false, listener, byRelayPolicy };
    this.open.add(entry);
    if (!byRelayPolicy) this.countOwn(1);
    this.metrics.downstreamTotal.inc({ listener });
    this.metrics.downstreamActive.inc({ listener });
    return entry;
  }

  private follow(socket: Socket, entry: Entry): void {
    this.bySocket.set(socket, entry);
    socket.once('close', () => {
      if (!entry.held) this.forget(entry);
    });
  }

  private forget(entry: Entry): void {
    if (!this.open.delete(entry)) return;
    if (!entry.byRelayPolicy) this.countOwn(-1);
    this.metrics.downstreamActive.dec({ listener: entry.listener });
    if (this.open.size === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  private countOwn(delta: number): void {
    this.ownCount += delta;
    this.onOwnCountChange?.(this.ownCount);
  }
}
