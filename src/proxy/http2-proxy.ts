/**
 * Cleartext HTTP/2 (prior-knowledge h2c, gRPC) through the HTTP layer, per stream as Envoy's
 * HTTP connection manager does: each stream is routed like an HTTP/1.x request (http-routing.ts),
 * sent upstream in HTTP/2 when the ServiceEntry port says HTTP2 or GRPC (trailers and streaming
 * both ways kept, which gRPC needs) and in HTTP/1.1 otherwise, with the route's retries and
 * timeouts as any request has them (retry-driver.ts), and logged with protocol "HTTP/2".
 * Local replies to gRPC requests are gRPC status replies (a route timeout is
 * DEADLINE_EXCEEDED), as Envoy sends them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest, type Agent, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { constants, createServer, type Http2Server, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { AccessLog, AccessLogEntry } from './access-log.js';
import { formatHostPort } from './address-format.js';
import type { ConnectionContext } from './connection-context.js';
import { MAX_REQUEST_HEAD } from './http-request-head.js';
import { envoyRequestHeaders, requestEntry, routeRequest, type HttpRequestInfo, type RoutingDecision, type RoutingDeps } from './http-routing.js';
import type { Http2Upstreams } from './http2-upstream.js';
import { Http2UpstreamRequest, Http2UpstreamResponse } from './http2-upstream-request.js';
import { grpcStatusOf as grpcStatusHeader, setAttemptCount } from './http-retry.js';
import { applyHeaderOperations, applyHeaderOperationsToObject } from './http-rewrite.js';
import type { ProxyMetrics } from './metrics.js';
import { requestBody, RetryDriver } from './retry-driver.js';

// Connection-specific headers (RFC 9113 §8.2.2) never cross an HTTP/2 hop; `te: trailers` is
// re-added where gRPC needs it.
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings']);

type ForwardDecision = Extract<RoutingDecision, { kind: 'forward' }>;

/** An upstream's answer: HTTP/1.1 (Node's client) or HTTP/2 (http2-upstream-request.ts). */
type UpstreamResponse = IncomingMessage | Http2UpstreamResponse;

/** A routed stream on its way upstream. */
interface ForwardedRequest {
  stream: ServerHttp2Stream;
  info: HttpRequestInfo;
  log: AccessLogEntry;
  state: { ended: boolean };
  grpc: boolean;
  decision: ForwardDecision;
  /** When the request arrived (performance.now()), for the upstream service time. */
  t0: number;
}

export interface Http2ProxyOptions extends RoutingDeps {
  accessLog: AccessLog;
  metrics: ProxyMetrics;
  idleTimeoutMs: number;
  upstreams: Http2Upstreams;
  agent: Agent;
}

/** Envoy's Grpc::Utility::httpToGrpcStatus for local replies. */
function grpcStatusOf(code: number): number {
  switch (code) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}
const DEADLINE_EXCEEDED = 4;

export class Http2Proxy {
  private readonly server: Http2Server;
  private readonly sessions = new WeakMap<ServerHttp2Session, ConnectionContext>();
  private readonly open = new Set<ServerHttp2Session>();
  private pending: ConnectionContext | undefined;

  constructor(private readonly options: Http2ProxyOptions) {
    this.server = createServer({ maxHeaderSize: MAX_REQUEST_HEAD } as Parameters<typeof createServer>[0]);
    // The session is created synchronously by 'connection' (handle()), so `pending` is its context.
    this.server.on('session', (session: ServerHttp2Session) => {
      if (this.pending) this.sessions.set(session, this.pending);
      this.open.add(session);
      session.once('close', () => this.open.delete(session));
      session.on('error', () => {});
      if (options.idleTimeoutMs > 0) session.setTimeout(options.idleTimeoutMs, () => session.close());
    });
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      const ctx = this.sessions.get(stream.session as ServerHttp2Session);
      if (!ctx) {
        stream.close(constants.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      // A bug in routing must cost this stream only, never the process.
      this.route(stream, headers, ctx).catch(() => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    });
  }

  /** Takes over a socket whose unread first bytes are the HTTP/2 preface. */
  handle(socket: Socket, ctx: ConnectionContext): void {
    this.pending = ctx;
    try {
      this.server.emit('connection', socket);
    } finally {
      this.pending = undefined;
    }
  }

  /** Sends GOAWAY on every session: in-flight streams finish, new ones go elsewhere. */
  closeIdle(): void {
    for (const session of this.open) session.close();
  }

  private async route(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ctx: ConnectionContext): Promise<void> {
    const t0 = performance.now();
    stream.on('error', () => {});
    const authority = headers[':authority'] ?? headers.host ?? formatHostPort(ctx.originalDst.address, ctx.originalDst.port);
    const info: HttpRequestInfo = {
      method: String(headers[':method'] ?? 'GET'),
      path: String(headers[':path'] ?? '/'),
      authority: String(authority),
      headers,
      rawHeaders: rawHeaderList(headers),
    };
    const log = requestEntry(ctx, info, 'HTTP/2');
    const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
    const state = { ended: false };
    stream.once('close', () => {
      log.durationMs = performance.now() - t0;
      // The client reset the stream before its answer was complete (Envoy: DC). A reset before
      // any answer ends the writable side and emits 'finish' as well: `aborted` tells it.
      if ((stream.aborted || (!state.ended && !stream.writableEnded)) && log.responseFlags === '-') log.responseFlags = 'DC';
      this.options.accessLog.write(log);
      if (log.upstreamCluster) this.options.metrics.response(log.upstreamCluster, log.responseCode);
    });
    stream.once('finish', () => (state.ended = true));
    const decision = await routeRequest(this.options, ctx, info, true);
    if (stream.destroyed) return;
    if (decision.kind === 'local') {
      log.upstreamCluster = decision.cluster;
      return this.local(stream, log, state, grpc, decision.code, decision.flag, decision.body ?? '', false, decision.headers, decision.grpcStatus);
    }
    log.upstreamCluster = decision.upstream.cluster;
    log.upstreamHost = formatHostPort(decision.upstream.address, decision.upstream.port);
    this.forward({ stream, info, log, state, grpc, decision, t0 });
  }

  /**
   * Sends the stream upstream, in HTTP/2 (Http2UpstreamRequest) or HTTP/1.1 as the port says,
   * with the route's retries, per-try and route timeouts (retry-driver.ts).
   */
  private forward(request: ForwardedRequest): void {
    const { stream, info, log, state, grpc, decision } = request;
    const { upstream } = decision;
    const cluster = this.options.metrics.clusterLabels(upstream.cluster);
    const metrics = this.options.metrics;
    const { headers, requestId } = upstreamHeaders(info.headers, decision);
    log.requestId = requestId;
    if (decision.flags) log.responseFlags = decision.flags;
    // The body is kept while it streams, so that a retry can send it again (http-retry-body.ts).
    const body = requestBody(stream, stream.endAfterHeaders, log, metrics, cluster);
    const driver: RetryDriver<UpstreamResponse> = new RetryDriver<UpstreamResponse>(decision, body, metrics, cluster, {
      send: (attempt) => {
        setAttemptCount(headers, attempt);
        return decision.http2 ? this.http2Request(decision, info.method, headers, stream.endAfterHeaders, log) : this.http1Request(decision, info.method, headers, log);
      },
      outcome: (res) => ({ kind: 'response', status: res.statusCode ?? 502, grpcStatus: grpcStatusHeader(res.headers) }),
      relay: (res) => this.relay(request, res, driver),
      waiting: () => !stream.headersSent && !stream.destroyed,
      failed: (err) => {
        if (stream.destroyed) return undefined;
        // An HTTP/2 upstream's session counts its own connect failures (http2-upstream.ts).
        if (!decision.http2) metrics.upstreamConnectFailures.inc(cluster);
        return err.code ?? err.message;
      },
      cut: (flag) => {
        if (log.responseFlags === '-') log.responseFlags = flag;
        stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      },
      local: (code, flag, text, timeout) => this.local(stream, log, state, grpc, code, flag, text, timeout),
    });
    stream.once('close', () => driver.close(state.ended || stream.writableFinished));
    driver.start();
  }

  /** The upstream's answer to the client: headers, body, and for an HTTP/2 upstream its trailers (gRPC's status). */
  private relay(request: ForwardedRequest, res: UpstreamResponse, driver: RetryDriver<UpstreamResponse>): void {
    const { stream, log, state, decision, t0 } = request;
    // The client reset the stream while the answer was on its way: respond() would throw.
    if (stream.destroyed) {
      res.resume();
      return;
    }
    const cluster = this.options.metrics.clusterLabels(decision.upstream.cluster);
    const metrics = this.options.metrics;
    log.responseFlags = driver.flag(log.responseFlags);
    log.upstreamServiceTimeMs = Math.round(performance.now() - t0);
    log.responseCode = res.statusCode ?? 502;
    const out: OutgoingHttpHeaders = { ':status': log.responseCode };
    for (const [name, value] of Object.entries(res.headers)) {
      if (!CONNECTION_SPECIFIC.has(name) && value !== undefined) out[name] = value;
    }
    if (decision.external) out['x-envoy-upstream-service-time'] = String(log.upstreamServiceTimeMs);
    applyHeaderOperationsToObject(out, decision.responseHeaders);
    const h2 = res instanceof Http2UpstreamResponse ? res : undefined;
    // A trailers-only answer (gRPC errors) ends in its HEADERS frame, where its grpc-status is.
    if (h2?.headersOnly) {
      stream.respond(out, { endStream: true });
      state.ended = true;
      driver.finished();
      res.resume();
      return;
    }
    const withTrailers = h2 !== undefined && (String(out['content-type'] ?? '').startsWith('application/grpc') || out['trailer'] !== undefined);
    stream.respond(out, { waitForTrailers: withTrailers });
    if (withTrailers) stream.once('wantTrailers', () => stream.sendTrailers(h2.trailers ?? {}));
    res.on('data', (chunk: Buffer) => {
      log.bytesSent += chunk.length;
      metrics.bytesReceived.inc(cluster, chunk.length);
    });
    res.pipe(stream);
    res.on('end', () => driver.finished());
    // The upstream went away mid-answer (Envoy: UC, upstream connection termination).
    res.on('aborted', () => {
      if (log.responseFlags === '-') log.responseFlags = 'UC';
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    });
    res.on('error', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
  }

  /** A try on the upstream's HTTP/2 session (an HTTP2 or GRPC port); the session counts and bounds its own connect. */
  private http2Request(decision: ForwardDecision, method: string, headers: [string, string][], noBody: boolean, log: AccessLogEntry): Http2UpstreamRequest {
    const session = this.options.upstreams.session(decision.upstream);
    return new Http2UpstreamRequest(session, { method, path: decision.path, authority: decision.authority, headers, noBody, onLocalAddress: (a) => (log.upstreamLocalAddress = a) });
  }

  /** A try in HTTP/1.1 (an HTTP port, or passthrough). */
  private http1Request(decision: ForwardDecision, method: string, headers: [string, string][], log: AccessLogEntry): ClientRequest {
    const { upstream } = decision;
    // Pairs, as http.request takes them: the Host pair is the authority, repeated headers stay repeated.
    const upReq = httpRequest({ host: upstream.address, port: upstream.port, method, path: decision.path, headers: headers as unknown as Record<string, string>, agent: this.options.agent, setHost: false });
    upReq.on('socket', (s: Socket) => {
      const noteLocal = () => (log.upstreamLocalAddress = formatHostPort(s.localAddress, s.localPort));
      if (s.localAddress) noteLocal();
      else s.once('connect', noteLocal);
    });
    return upReq;
  }

  /** A reply Envoy itself would generate; for gRPC a trailers-only gRPC status. */
  private local(
    stream: ServerHttp2Stream,
    log: AccessLogEntry,
    state: { ended: boolean },
    grpc: boolean,
    code: number,
    flag: string,
    body: string | Buffer,
    timeout = false,
    headers: [string, string][] = [],
    grpcStatus?: number,
  ): void {
    log.responseFlags = flag;
    if (stream.destroyed) return;
    if (stream.headersSent) {
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (grpc) {
      log.responseCode = 200;
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': String(grpcStatus ?? (timeout ? DEADLINE_EXCEEDED : grpcStatusOf(code))),
          'grpc-message': encodeURIComponent(String(body)),
          server: 'envoy',
        },
        { endStream: true },
      );
      state.ended = true;
      return;
    }
    log.responseCode = code;
    log.bytesSent = Buffer.byteLength(body);
    const out: OutgoingHttpHeaders = { ':status': code, 'content-length': String(log.bytesSent), 'content-type': 'text/plain', server: 'envoy' };
    for (const [name, value] of headers) out[name] = value;
    stream.respond(out);
    stream.end(body);
  }
}

/** HTTP/2 headers as Node's rawHeaders list (pseudo-headers left out: matches never see them). */
function rawHeaderList(headers: IncomingHttpHeaders): string[] {
  const raw: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) raw.push(name, String(v));
  }
  return raw;
}

/**
 * The request's headers for upstream as name, value pairs: Host is the authority (an HTTP/2
 * upstream makes it :authority), pseudo-headers and connection-specific ones left out but
 * `te: trailers` (gRPC needs it), Envoy's added, the route's header operations applied.
 */
function upstreamHeaders(headers: IncomingHttpHeaders, decision: ForwardDecision): { headers: [string, string][]; requestId: string | undefined } {
  const out: [string, string][] = [['host', decision.authority]];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || CONNECTION_SPECIFIC.has(name) || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push([name, v]);
  }
  if (headers['te'] === 'trailers') out.push(['te', 'trailers']);
  const added = envoyRequestHeaders(headers, decision, (n) => randomBytes(n).toString('hex'), randomUUID);
  for (const h of added.add) out.push(h);
  return { headers: applyHeaderOperations(out, decision.requestHeaders), requestId: added.requestId };
}
