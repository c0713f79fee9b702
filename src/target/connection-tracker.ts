/**
 * Counts and holds every accepted connection: enforces --max-connections (with one clear log
 * line per second while the limit is hit, not one per refused connection), and lets SIGTERM
 * drain them within a bound.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ProxyMetrics } from './metrics.js';

export class ConnectionTracker {
  private readonly open = new Set<Socket>();
  /** Sockets whose connection lives on in the splice relay after Node closed them; see hold(). */
  private readonly held = new Map<Socket, () => void>();
  private lastLimitLog = 0;
  private refusedSinceLog = 0;
  private drainWaiters: (() => void)[] = [];
  private readonly closers = new WeakMap<Socket, () => void>();

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
    if (this.open.size >= this.maxConnections) {
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
      socket.resetAndDestroy();
      return false;
    }
    this.open.add(socket);
    this.metrics.downstreamTotal.inc({ listener });
    this.metrics.downstreamActive.inc({ listener });
    const forget = () => {
      if (!this.open.delete(socket)) return;
      this.metrics.downstreamActive.dec({ listener });
      if (this.open.size === 0) for (const w of this.drainWaiters.splice(0)) w();
    };
    socket.once('close', () => {
      if (!this.held.has(socket)) forget();
    });
    this.closers.set(socket, forget);
    return true;
  }

  /**
   * Keeps `socket`'s connection counted after the socket itself closes: the splice relay has
   * taken its descriptor over. `abort` ends it early (drain deadline). Call the returned
   * function once the connection has really ended.
   */
  hold(socket: Socket, abort: () => void): () => void {
    if (!this.open.has(socket)) return () => {};
    this.held.set(socket, abort);
    return () => {
      if (!this.held.delete(socket)) return;
      const forget = this.closers.get(socket);
      this.closers.delete(socket);
      forget?.();
    };
  }

  /** Resolves when every connection has closed, or after `timeoutMs` having destroyed the rest. */
  drain(timeoutMs: number): Promise<{ remaining: number }> {
    if (this.open.size === 0) return Promise.resolve({ remaining: 0 });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const remaining = this.open.size;
        for (const s of this.open) {
          const abort = this.held.get(s);
          if (abort) abort();
          else s.destroy();
        }
        resolve({ remaining });
      }, timeoutMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve({ remaining: 0 });
      });
    });
  }
}
