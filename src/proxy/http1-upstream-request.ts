/**
 * A plain HTTP/1.1 upstream request sent with undici's dispatcher instead of Node's
 * http.request: undici's client parses and writes with less work per request (measured in
 * bench:http). The request and its answer look like the parts of Node's ClientRequest and
 * IncomingMessage that the HTTP/1 forward path (http-proxy.ts) uses, so routes, timeouts,
 * retries and the access log work there unchanged:
 * - the request: a body sink (write/end/'drain', backpressure from undici's socket) that emits
 *   'response' or 'error'; destroy() aborts the request (its connection is closed, as Node does).
 * - errors carry the codes Node's client gives, which the forward path reads for UF/UC and the
 *   reset reason: a connection lost before the answer is ECONNRESET, a connect timeout ETIMEDOUT.
 * - the answer: statusCode, statusMessage, rawHeaders as strings, 'data'/'end', pause()/resume()
 *   (undici stops reading the socket while paused), 'aborted' then 'error' when cut short.
 * The socket of each request is learnt from undici's `undici:client:sendHeaders` diagnostics
 * channel, published synchronously right after the request's onConnect: its local address for
 * the log, and whether it is a new connection (counted).
 */
import { subscribe } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** What undici says an upstream socket is, for the log and the connection count. */
export interface UpstreamSocketWatch {
  /** The request went out on `socket` (new or kept alive). */
  onSocket(socket: Socket): void;
}

/** The request whose onConnect ran last; its headers are published next, in the same turn. */
let connecting: Http1UpstreamRequest | undefined;
subscribe('undici:client:sendHeaders', (message) => {
  const request = connecting;
  connecting = undefined;
  request?.watch.onSocket((message as { socket: Socket }).socket);
});

/** Node's client error codes for undici's: what outcomeOfError() and the reset reason read. */
function nodeError(err: Error & { code?: string }): Error & { code?: string } {
  switch (err.code) {
    case 'UND_ERR_SOCKET':
      return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', cause: err });
    case 'UND_ERR_CONNECT_TIMEOUT':
      return Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT', cause: err });
    default:
      return err;
  }
}

/** The upstream's answer, shaped as the parts of IncomingMessage the forward path reads. */
export class Http1UpstreamResponse extends EventEmitter {
  readonly rawHeaders: string[];
  paused = false;

  constructor(
    readonly statusCode: number,
    readonly statusMessage: string,
    raw: Buffer[],
    private readonly resumeSocket: () => void,
  ) {
    super();
    const headers: string[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i++) headers[i] = raw[i]!.toString('latin1');
    this.rawHeaders = headers;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (this.paused) {
      this.paused = false;
      this.resumeSocket();
    }
    return this;
  }
}

export interface Http1UpstreamRequestOptions {
  /** "http://ip:port" */
  origin: string;
  method: string;
  path: string;
  /** name, value pairs as the forward path builds them (Host included, no hop-by-hop ones). */
  headers: readonly (readonly [string, string])[];
  /** The request has no body: none is sent, whatever is written. */
  noBody: boolean;
  watch: UpstreamSocketWatch;
}

/** One request through `dispatcher`, emitting 'response' (Http1UpstreamResponse) or 'error' like a ClientRequest. */
export class Http1UpstreamRequest extends EventEmitter implements Dispatcher.DispatchHandlers {
  destroyed = false;
  readonly watch: UpstreamSocketWatch;
  private readonly body: Readable | undefined;
  private wantsDrain = false;
  private abort: ((err?: Error) => void) | undefined;
  private response: Http1UpstreamResponse | undefined;
  private done = false;

  constructor(dispatcher: Dispatcher, options: Http1UpstreamRequestOptions) {
    super();
    this.watch = options.watch;
    const headers: string[] = [];
    for (const [name, value] of options.headers) {
      // undici frames the body itself (chunked when there is no content-length).
      if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') continue;
      headers.push(name, value);
    }
    if (!options.noBody) {
      this.body = new Readable({
        read: () => {
          if (this.wantsDrain) {
            this.wantsDrain = false;
            this.emit('drain');
          }
        },
      });
    }
    dispatcher.dispatch({ origin: options.origin, method: options.method as Dispatcher.HttpMethod, path: options.path, headers, body: this.body ?? null }, this);
  }

  /** A body chunk; false asks the writer to wait for 'drain'. */
  write(chunk: Buffer): boolean {
    if (!this.body || this.body.destroyed) return true;
    const more = this.body.push(chunk);
    if (!more) this.wantsDrain = true;
    return more;
  }

  end(): void {
    if (this.body && !this.body.destroyed && !this.body.readableEnded) this.body.push(null);
  }

  /** Cancelled by the forward path (timeout, retry, client gone): the request and its connection are dropped. */
  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (this.done) return this;
    // Before onConnect the request waits in the pool's queue: it is aborted there when its turn comes.
    this.abort?.(err ?? Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    return this;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.destroyed) {
      abort(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      return;
    }
    connecting = this;
  }

  onHeaders(statusCode: number, headers: Buffer[] | string[] | null, resume: () => void, statusText?: string): boolean {
    // 1xx answers are not relayed (Node's client reports them apart from the response too).
    if (statusCode < 200) return true;
    const response = new Http1UpstreamResponse(statusCode, statusText ?? '', (headers ?? []) as Buffer[], resume);
    this.response = response;
    this.emit('response', response);
    return !response.paused;
  }

  onData(chunk: Buffer): boolean {
    const response = this.response!;
    response.emit('data', chunk);
    return !response.paused;
  }

  onComplete(): void {
    this.done = true;
    this.response?.emit('end');
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    const error = nodeError(err as Error & { code?: string });
    // Reported on the next tick, as Node reports a socket's loss after the call that caused it.
    process.nextTick(() => {
      const response = this.response;
      if (response) {
        response.emit('aborted');
        if (response.listenerCount('error') > 0) response.emit('error', error);
        return;
      }
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
  }
}
