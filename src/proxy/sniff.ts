/**
 * Looks at the first bytes a client sends — TLS ClientHello (SNI), HTTP/1.x request head
 * (Host) or the HTTP/2 preface — without consuming them: the bytes are handed back to the socket with unshift(), so
 * whatever reads the socket next (a relay or Node's HTTP parser) sees the stream untouched.
 * Bounded in time and size, so server-first protocols are only delayed by the timeout.
 */
import type { Socket } from 'node:net';
import { parseClientHello, MAX_CLIENT_HELLO } from './tls-client-hello.js';
import { parseRequestHead, MAX_REQUEST_HEAD } from './http-request-head.js';

export type Sniffed =
  | { kind: 'tls'; sni: string | undefined }
  /**
   * HTTP/1.x (host: the authority that counts, from an absolute-form target or Host), or
   * prior-knowledge h2c (`http2`; its streams each carry their own authority).
   */
  | { kind: 'http'; host: string | undefined; http2?: true }
  /** Bytes arrived but are neither TLS nor HTTP/1.x. */
  | { kind: 'other' }
  /** Nothing arrived before the timeout (a server-first protocol, or a slow client). */
  | { kind: 'none' };

export interface SniffResult {
  sniffed: Sniffed;
  /**
   * True when the client half-closed during sniffing. The stream cannot be rewound after its
   * end, so `head` then holds the bytes and the caller must forward them itself.
   */
  ended: boolean;
  head: Buffer;
  /** Set when the socket failed while sniffing; the caller drops the connection. */
  error?: Error;
}

/** Peeks at `socket` for up to `timeoutMs`; the socket is left paused with the bytes unread. */
export function sniff(socket: Socket, timeoutMs: number): Promise<SniffResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let done = false;
    const finish = (sniffed: Sniffed, ended = false, error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.pause();
      const head = Buffer.concat(chunks, length);
      if (!ended && !error && head.length > 0) socket.unshift(head);
      resolve({ sniffed, ended, head, ...(error ? { error } : {}) });
    };
    const classify = (final: boolean): Sniffed | undefined => {
      const buf = Buffer.concat(chunks, length);
      const tls = parseClientHello(buf);
      if (tls.kind === 'tls') return tls;
      const http = parseRequestHead(buf);
      if (http.kind === 'http') return { kind: 'http', host: http.host };
      if (http.kind === 'http2') return { kind: 'http', host: undefined, http2: true };
      if (tls.kind === 'not-tls' && http.kind === 'not-http') return { kind: 'other' };
      if (final || length >= Math.max(MAX_CLIENT_HELLO, MAX_REQUEST_HEAD)) {
        if (tls.kind === 'need-more' && buf[0] === 0x16) return { kind: 'tls', sni: undefined };
        if (http.kind === 'need-more') return { kind: 'http', host: undefined };
        return { kind: 'other' };
      }
      return undefined;
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const result = classify(false);
      if (result) finish(result);
    };
    const onEnd = () => finish(length === 0 ? { kind: 'none' } : classify(true)!, true);
    const onError = (err: Error) => finish({ kind: 'none' }, false, err);
    // Timers run before I/O polling in an event-loop turn: after a stall (a busy or descheduled
    // process) the timer could fire while the client's bytes already wait in the kernel. Decide
    // only after one more poll phase (setImmediate), so data that is there counts.
    const timer = setTimeout(
      () => setImmediate(() => finish(length === 0 ? { kind: 'none' } : classify(true)!)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.resume();
  });
}

/** The sniff bound: --sniff-timeout when set, else the idle timeout (0: wait as Istio's protocol detection does by default, protocolDetectionTimeout 0s, bounded by the idle timeout). */
export function sniffWait(deps: { sniffTimeoutMs: number; idleTimeoutMs: number }): number {
  if (deps.sniffTimeoutMs > 0) return deps.sniffTimeoutMs;
  return deps.idleTimeoutMs > 0 ? deps.idleTimeoutMs : 2 ** 31 - 1;
}
