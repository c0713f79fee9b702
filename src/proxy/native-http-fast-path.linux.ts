/**
 * The addon's native HTTP/1.1 fast path (native/src/http_fast_path/fast_path.h) as a typed
 * object: hands accepted connections to its thread, passes route answers to it, and turns its
 * batched reports into calls — route questions, the requests served (a record each, or their
 * counts summed and their log lines rendered), connections handed back (as a paused Node
 * socket with the bytes already read put back in front) and connections it closed. What
 * those mean for the proxy is http-fast-path.ts's business.
 *
 * The Node socket given to take() is destroyed once the addon holds its own dup of the
 * descriptor, as the splice relay does (splice-relay.linux.ts).
 */
import { Socket } from 'node:net';
import { loadAddon, socketFd, type NativeAddon } from '../native.js';
import type { FastRoute } from './http-fast-path-routes.js';

type FastPathHandle = object & { readonly __httpFastPath: unique symbol };

/** One finished request, as the addon reports it (log_batch.h RequestLog). */
export interface FastRequestRecord {
  code: number;
  flags: string;
  bytesReceived: number;
  bytesSent: number;
  cluster: string;
  upstreamConnections: number;
  connectFailures: number;
  /** Attempts sent again by the retry policy. */
  retries: number;
  /** A streamed request body outgrew the replay buffer before an answer: no retry could follow. */
  retryAbandoned: boolean;
  connId: number;
  startMs: number;
  method: string;
  path: string;
  authority: string;
  userAgent: string | undefined;
  forwardedFor: string | undefined;
  requestId: string;
  durationMs: number;
  upstreamServiceMs: number | undefined;
  upstreamHost: string;
  upstreamLocal: string | undefined;
}

/**
 * What the metrics count of the finished requests of one cluster and response code, summed
 * (request_counts.h RequestCounts): for one request, `requests` is 1.
 */
export interface FastRequestCounts {
  cluster: string;
  code: number;
  requests: number;
  bytesReceived: number;
  bytesSent: number;
  upstreamConnections: number;
  connectFailures: number;
  retries: number;
  /** Requests whose retries ran out on a retriable outcome (flagged URX). */
  retryLimitExceeded: number;
  /** Requests whose streamed body outgrew the replay buffer before an answer. */
  retryAbandoned: number;
}

/** What the addon reports of each finished request: records, rendered TEXT lines and counts, or counts. */
export type FastLogMode = 'records' | 'lines' | 'counts';

type OnEvents = (misses: (number | string)[], logNumbers: Float64Array, logText: string, handbacks: (number | Buffer)[], closed: number[],
  logLines: Buffer | undefined, countNumbers: Float64Array, countText: string) => void;

interface FastPathAddon {
  fastPathCreate(onEvents: OnEvents, connectTimeoutMs: number, idleMs: number, slowHeadMs: number, logMode: FastLogMode): FastPathHandle;
  fastPathAdd(h: FastPathHandle, connId: number, fd: number, bytes: Buffer | undefined, port: number, http2: boolean,
    downstreamLocal: string, downstreamRemote: string): number;
  fastPathSetRoute(h: FastPathHandle, port: number, authority: string, route: FastRoute | null, ttlMs: number): void;
  fastPathClearRoutes(h: FastPathHandle): void;
  fastPathCloseIdle(h: FastPathHandle): void;
  fastPathAbort(h: FastPathHandle, connId: number): void;
  fastPathRef(h: FastPathHandle): void;
  fastPathUnref(h: FastPathHandle): void;
}

export interface NativeHttpFastPathHooks<C> {
  /** The fast path has no answer for (port, authority): call setRoute() (always, even on failure). */
  routeMiss(port: number, authority: string): void;
  /** A request the fast path finished (log mode "records"). */
  request(record: FastRequestRecord, ctx: C): void;
  /** Log modes "lines" and "counts": requests the fast path finished, summed for the metrics … */
  counted(counts: FastRequestCounts): void;
  /** … and with "lines", the access-log lines of one delivery (UTF-8, one per request). */
  lines(lines: Buffer): void;
  /** A connection given back: serve it on the JS path (the socket is paused, its bytes unshifted). */
  handBack(socket: Socket, ctx: C): void;
  /** The fast path closed a connection it held. */
  closed(ctx: C): void;
  /** The end of one delivery of records (what request() accumulated can be flushed). */
  batchDone(): void;
}

/** Numbers per record in a packed batch (native/src/http_fast_path/log_batch.h LogBatch). */
const RECORD_FIELDS = 21;

/**
 * The records of a packed batch, in order: RECORD_FIELDS numbers each (log_batch.h lists
 * them), the last ten the lengths of its strings in `text` (-1: absent).
 */
function decodeRecords(numbers: Float64Array, text: string, each: (record: FastRequestRecord) => void): void {
  let off = 0;
  const str = (len: number): string | undefined => {
    if (len < 0) return undefined;
    const s = text.slice(off, off + len);
    off += len;
    return s;
  };
  for (let i = 0; i + RECORD_FIELDS <= numbers.length; i += RECORD_FIELDS) {
    const serviceMs = numbers[i + 6]!;
    each({
      connId: numbers[i]!,
      startMs: numbers[i + 1]!,
      code: numbers[i + 2]!,
      bytesReceived: numbers[i + 3]!,
      bytesSent: numbers[i + 4]!,
      durationMs: numbers[i + 5]!,
      upstreamServiceMs: serviceMs < 0 ? undefined : serviceMs,
      upstreamConnections: numbers[i + 7]!,
      connectFailures: numbers[i + 8]!,
      retries: numbers[i + 9]!,
      retryAbandoned: numbers[i + 10] !== 0,
      method: str(numbers[i + 11]!) ?? '',
      path: str(numbers[i + 12]!) ?? '',
      authority: str(numbers[i + 13]!) ?? '',
      userAgent: str(numbers[i + 14]!),
      forwardedFor: str(numbers[i + 15]!),
      requestId: str(numbers[i + 16]!) ?? '',
      flags: str(numbers[i + 17]!) ?? '-',
      upstreamHost: str(numbers[i + 18]!) ?? '',
      cluster: str(numbers[i + 19]!) ?? '',
      upstreamLocal: str(numbers[i + 20]!),
    });
  }
}

/** Numbers per row of summed counts (native/src/http_fast_path/request_counts.h RequestCounts). */
const COUNT_FIELDS = 10;

/**
 * The rows of summed counts of one delivery, in order: COUNT_FIELDS numbers each, the last the
 * length of its cluster in `text`. Returns how many requests they sum.
 */
function decodeCounts(numbers: Float64Array, text: string, each: (counts: FastRequestCounts) => void): number {
  let off = 0;
  let requests = 0;
  for (let i = 0; i + COUNT_FIELDS <= numbers.length; i += COUNT_FIELDS) {
    const len = numbers[i + 9]!;
    const cluster = text.slice(off, off + len);
    off += len;
    requests += numbers[i + 1]!;
    each({
      cluster,
      code: numbers[i]!,
      requests: numbers[i + 1]!,
      bytesReceived: numbers[i + 2]!,
      bytesSent: numbers[i + 3]!,
      upstreamConnections: numbers[i + 4]!,
      connectFailures: numbers[i + 5]!,
      retries: numbers[i + 6]!,
      retryLimitExceeded: numbers[i + 7]!,
      retryAbandoned: numbers[i + 8]!,
    });
  }
  return requests;
}

const MAX_U32 = 0xffffffff;
/** Connection ids stay below the addon's own ids for HTTP/2 streams (fast_path.h add()). */
const MAX_CONN_ID = 0x7fffffff;
const clampMs = (ms: number) => Math.max(0, Math.min(Math.round(ms), MAX_U32));

/** One fast-path thread; `C` is the owner's per-connection context. */
export class NativeHttpFastPath<C> {
  private readonly addon: NativeAddon & FastPathAddon;
  private readonly handle: FastPathHandle;
  private readonly contexts = new Map<number, C>();
  private nextId = 1;
  private referenced = false;
  /** Requests served natively so far (tests and debugging). */
  served = 0;
  /** Connections handed back to the JS path so far. */
  handedBack = 0;

  /**
   * Starts the thread. Throws InterceptError when the addon is not built. `logs`: "records"
   * (the default) reports each request to hooks.request(); "lines" has the thread write each
   * request's access-log line (Envoy's TEXT format) for hooks.lines(), and "counts" none, both
   * reporting the metrics' part summed to hooks.counted().
   */
  constructor(
    options: { connectTimeoutMs: number; idleTimeoutMs: number; slowHeadMs?: number; logs?: FastLogMode },
    private readonly hooks: NativeHttpFastPathHooks<C>,
  ) {
    this.addon = loadAddon() as NativeAddon & FastPathAddon;
    this.handle = this.addon.fastPathCreate(
      (misses, logNumbers, logText, handbacks, closed, logLines, countNumbers, countText) =>
        this.events(misses, logNumbers, logText, handbacks, closed, logLines, countNumbers, countText),
      clampMs(options.connectTimeoutMs),
      clampMs(options.idleTimeoutMs),
      clampMs(options.slowHeadMs ?? 5000),
      options.logs ?? 'records',
    );
  }

  /** Connections the fast path holds now. */
  get size(): number {
    return this.contexts.size;
  }

  /**
   * Takes over `socket` (an accepted connection whose original destination port is `port`;
   * `http2`: it starts with the HTTP/2 preface; `ends`: its two ends as access-log lines name
   * them): its id, or undefined when the addon could not take it (the socket is then untouched).
   */
  take(socket: Socket, port: number, ctx: C, http2 = false, ends = { local: '', remote: '' }): number | undefined {
    let fd: number;
    try {
      fd = socketFd(socket);
    } catch {
      return undefined;
    }
    // What Node holds already: bytes unshifted by sniffing, or read ahead while paused.
    const buffered: Buffer[] = [];
    for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) buffered.push(chunk);
    const bytes = buffered.length > 0 ? Buffer.concat(buffered) : undefined;
    const id = this.allocateId();
    const err = this.addon.fastPathAdd(this.handle, id, fd, bytes, port, http2, ends.local, ends.remote);
    if (err !== 0) {
      if (bytes) socket.unshift(bytes);
      return undefined;
    }
    this.contexts.set(id, ctx);
    this.updateRef();
    // Node's descriptor goes; the addon's dup keeps the connection open.
    socket.destroy();
    return id;
  }

  /** Ends connection `id` now (drain deadline); a request in flight is logged DC. */
  abort(id: number): void {
    this.addon.fastPathAbort(this.handle, id);
  }

  /** Answers a route miss (null: not eligible) for `ttlMs`. */
  setRoute(port: number, authority: string, route: FastRoute | undefined, ttlMs: number): void {
    this.addon.fastPathSetRoute(this.handle, port, authority, route ?? null, clampMs(ttlMs));
  }

  /** The configuration changed: every route is asked for again. */
  clearRoutes(): void {
    this.addon.fastPathClearRoutes(this.handle);
  }

  /** Closes idle keep-alive connections (draining). */
  closeIdle(): void {
    this.addon.fastPathCloseIdle(this.handle);
  }

  private allocateId(): number {
    do {
      this.nextId = this.nextId >= MAX_CONN_ID ? 1 : this.nextId + 1;
    } while (this.contexts.has(this.nextId));
    return this.nextId;
  }

  /** The thread keeps the process alive while it holds connections. */
  private updateRef(): void {
    const wanted = this.contexts.size > 0;
    if (wanted === this.referenced) return;
    this.referenced = wanted;
    if (wanted) this.addon.fastPathRef(this.handle);
    else this.addon.fastPathUnref(this.handle);
  }

  private events(misses: (number | string)[], logNumbers: Float64Array, logText: string, handbacks: (number | Buffer)[], closed: number[],
    logLines: Buffer | undefined, countNumbers: Float64Array, countText: string): void {
    for (let i = 0; i < misses.length; i += 2) this.hooks.routeMiss(misses[i] as number, misses[i + 1] as string);
    this.handedBack += handbacks.length / 3;
    if (logLines !== undefined) this.hooks.lines(logLines);
    this.served += decodeCounts(countNumbers, countText, (counts) => this.hooks.counted(counts));
    this.served += logNumbers.length / RECORD_FIELDS;
    decodeRecords(logNumbers, logText, (record) => {
      const ctx = this.contexts.get(record.connId);
      if (ctx !== undefined) this.hooks.request(record, ctx);
    });
    if (logNumbers.length > 0 || countNumbers.length > 0) this.hooks.batchDone();
    for (let i = 0; i < handbacks.length; i += 3) {
      const id = handbacks[i] as number;
      const fd = handbacks[i + 1] as number;
      const bytes = handbacks[i + 2] as Buffer;
      const ctx = this.contexts.get(id);
      this.contexts.delete(id);
      // pauseOnCreate: nothing is read until the JS path resumes it.
      const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: true } as ConstructorParameters<typeof Socket>[0]);
      if (ctx === undefined) {
        socket.destroy();
        continue;
      }
      if (bytes.length > 0) socket.unshift(bytes);
      this.hooks.handBack(socket, ctx);
    }
    for (const id of closed) {
      const ctx = this.contexts.get(id);
      this.contexts.delete(id);
      if (ctx !== undefined) this.hooks.closed(ctx);
    }
    this.updateRef();
  }
}
