/**
 * A request sent upstream as one HTTP/2 stream, for ServiceEntry ports whose protocol is HTTP2
 * or GRPC: Envoy gives such clusters http2_protocol_options, so it speaks HTTP/2 upstream
 * whatever the client spoke. The request and its answer look like Node's ClientRequest and
 * IncomingMessage to the forward paths (http-proxy.ts, http2-proxy.ts), so routes, timeouts,
 * retries (retry-driver.ts) and the access log work the same for every upstream:
 * - request: `:method`, `:path`, `:authority` (from Host), `:scheme` http; headers lower-cased,
 *   connection-specific ones (RFC 9113 §8.2.2) left out; the body streamed as DATA frames.
 * - answer: `:status`, the other headers minus pseudo and connection-specific ones; no reason
 *   phrase (Node writes the standard one, as Envoy's HTTP/1 codec does); its trailers, which
 *   an HTTP/2 client gets (gRPC's status) and an HTTP/1.1 one does not, as Envoy's HTTP/1
 *   codec drops them unless `enable_trailers` is set (Istio does not set it); whether it
 *   ended with its headers (a gRPC trailers-only answer, relayed to an HTTP/2 client as such).
 * A reset or lost connection after the answer began ends the answer with 'aborted' then an
 * error (flag UC).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { Readable, Writable } from 'node:stream';
import { formatHostPort } from './address-format.js';

// Connection-specific headers never cross an HTTP/2 hop (RFC 9113 §8.2.2); Host becomes :authority.
const NOT_IN_HTTP2 = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

export interface Http2UpstreamRequestOptions {
  method: string;
  path: string;
  authority: string;
  /** name, value pairs as the HTTP/1 forward path builds them (Host included). */
  headers: readonly (readonly [string, string])[];
  /** The request has no body: its HEADERS frame ends the stream. */
  noBody: boolean;
  /** The upstream connection's local address as the log prints it, once known. */
  onLocalAddress: (address: string) => void;
}

/** The request headers as one HTTP/2 header block. */
export function http2RequestHeaders(o: Pick<Http2UpstreamRequestOptions, 'method' | 'path' | 'authority' | 'headers'>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = { ':method': o.method, ':path': o.path, ':authority': o.authority, ':scheme': 'http' };
  for (const [name, value] of o.headers) {
    const lower = name.toLowerCase();
    // Host as the forward path left it (after the route's header operations) is the authority.
    if (lower === 'host') {
      out[':authority'] = value;
      continue;
    }
    // `te: trailers` is the one TE value HTTP/2 allows (gRPC needs it).
    if (NOT_IN_HTTP2.has(lower) || (lower === 'te' && value.trim().toLowerCase() !== 'trailers')) continue;
    const prior = out[lower];
    if (prior === undefined) out[lower] = value;
    else out[lower] = Array.isArray(prior) ? [...prior, value] : [prior, value];
  }
  return out;
}

/** The upstream's answer, shaped as the parts of IncomingMessage the forward path reads. */
export class Http2UpstreamResponse extends Readable {
  readonly statusCode: number;
  /** HTTP/2 has no reason phrase. */
  readonly statusMessage = undefined;
  readonly headers: IncomingHttpHeaders = {};
  readonly rawHeaders: string[] = [];
  /** The upstream sent the whole answer (it may still wait in this stream's buffer). */
  complete = false;
  /** The answer's trailers (pseudo-headers left out), once they arrived. */
  trailers: Record<string, string | string[]> | undefined;

  constructor(
    private readonly stream: ClientHttp2Stream,
    headers: IncomingHttpHeaders,
    /** The HEADERS frame ended the stream: no body, no trailers (gRPC's trailers-only answer). */
    readonly headersOnly = false,
  ) {
    // destroy() cancels the stream, so it must not run on its own once the answer has ended.
    super({ autoDestroy: false });
    this.statusCode = Number(headers[':status'] ?? 502);
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(':') || NOT_IN_HTTP2.has(name) || value === undefined) continue;
      this.headers[name] = value;
      for (const v of Array.isArray(value) ? value : [value]) this.rawHeaders.push(name, String(v));
    }
    stream.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stream.pause();
    });
    stream.once('trailers', (trailers: IncomingHttpHeaders) => {
      const kept: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(trailers)) if (!name.startsWith(':') && value !== undefined) kept[name] = value;
      this.trailers = kept;
    });
    stream.once('end', () => {
      // A lost connection ends the stream too, with its reset code set (CANCEL): not an answer's end.
      if (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR) return;
      this.complete = true;
      this.push(null);
    });
  }

  override _read(): void {
    this.stream.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL);
    cb(err);
  }
}

/**
 * One request over `session`: a Writable for the body that emits 'response'
 * (Http2UpstreamResponse) or 'error' like a ClientRequest; destroy() cancels the stream.
 */
export class Http2UpstreamRequest extends Writable {
  private readonly stream: ClientHttp2Stream;
  private response: Http2UpstreamResponse | undefined;

  constructor(session: ClientHttp2Session, options: Http2UpstreamRequestOptions) {
    // destroy() cancels the stream, so it must not run on its own once the body has been sent.
    super({ autoDestroy: false });
    const stream = session.request(http2RequestHeaders(options), { endStream: options.noBody });
    this.stream = stream;
    const noteLocal = () => {
      const s = session.socket;
      if (s?.localAddress) options.onLocalAddress(formatHostPort(s.localAddress, s.localPort));
    };
    if (session.connecting) session.once('connect', noteLocal);
    else noteLocal();
    stream.once('response', (headers: IncomingHttpHeaders, flags: number) => {
      this.response = new Http2UpstreamResponse(stream, headers, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
      this.emit('response', this.response);
    });
    stream.on('error', (err: Error) => this.fail(err));
    stream.once('close', () => {
      const response = this.response;
      // Closed (even with NO_ERROR) before the answer's end: the answer is cut short.
      if (response && !response.complete && !response.destroyed) this.fail(Object.assign(new Error('upstream reset'), { code: 'ECONNRESET' }));
      else if (!response && !this.destroyed) this.destroy(Object.assign(new Error('upstream reset before headers'), { code: 'ECONNRESET' }));
    });
  }

  private fail(err: Error): void {
    const response = this.response;
    if (!response) {
      if (!this.destroyed) this.destroy(err);
      return;
    }
    if (response.complete || response.destroyed) return;
    response.emit('aborted');
    response.destroy(err);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.stream.writableEnded) return cb();
    this.stream.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.stream.writableEnded) return cb();
    this.stream.end(cb);
  }

  /** Cancelled by the forward path (timeout, retry, client gone): the answer just stops. */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.response && !this.response.complete) this.response.destroy();
    if (!this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL);
    cb(err);
  }
}
