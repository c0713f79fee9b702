/**
 * Cleartext HTTP/2 (prior-knowledge h2c, gRPC) through the HTTP layer, per stream as Envoy's
 * HTTP connection manager does: each stream is routed like an HTTP/1.x request (http-routing.ts),
 * sent upstream in HTTP/2 when the ServiceEntry port says HTTP2 or GRPC (trailers and streaming
 * both ways kept, which gRPC needs) and in HTTP/1.1 otherwise, and logged with protocol
 * "HTTP/2". Local replies to gRPC requests are gRPC status replies (a route timeout is
 * DEADLINE_EXCEEDED), as Envoy sends them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest, type Agent, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import {
  constants,
  createServer,
  type ClientHttp2Stream,
  type Http2Server,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { AccessLog, AccessLogEntry } from './access-log.js';
import { formatHostPort } from './address-format.js';
import type { ConnectionContext } from './connection-context.js';
import { MAX_REQUEST_HEAD } from './http-request-head.js';
import { envoyRequestHeaders, requestEntry, routeRequest, type HttpRequestInfo, type RoutingDecision, type RoutingDeps } from './http-routing.js';
import type { Http2Upstreams } from './http2-upstream.js';
import { Attempt, grpcStatusOf as grpcStatusHeader, outcomeOfError, RetryState } from './http-retry.js';
import { ReplayableBody } from './http-retry-body.js';
import { applyHeaderOperationsToObject } from './http-rewrite.js';
import type { ProxyMetrics } from './metrics.js';

// Connection-specific headers (RFC 9113 §8.2.2) never cross an HTTP/2 hop; `te: trailers` is
// re-added where gRPC needs it.
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings']);

/** A routed request on its way upstream: what the HTTP/2 and the HTTP/1.1 forwarder both start from. */
interface ForwardedRequest {
  stream: ServerHttp2Stream;
  info: HttpRequestInfo;
  /** The request headers for the upstream: pseudo-headers and connection-specific ones removed. */
  headers: OutgoingHttpHeaders;
  log: AccessLogEntry;
  state: { ended: boolean };
  grpc: boolean;
  decision: Extract<RoutingDecision, { kind: 'forward' }>;
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
      // The client reset the stream before its answer was complete (Envoy: DC).
      if (!state.ended && !stream.writableEnded && log.responseFlags === '-') log.responseFlags = 'DC';
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
    const added = envoyRequestHeaders(headers, decision, (n) => randomBytes(n).toString('hex'), randomUUID);
    log.requestId = added.requestId;
    const upstreamHeaders: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(':') || CONNECTION_SPECIFIC.has(name) || value === undefined) continue;
      upstreamHeaders[name] = value;
    }
    for (const [name, value] of added.add) upstreamHeaders[name] = value;
    applyHeaderOperationsToObject(upstreamHeaders, decision.requestHeaders);
    if (decision.flags) log.responseFlags = decision.flags;
    const request: ForwardedRequest = { stream, info, headers: upstreamHeaders, log, state, grpc, decision, t0 };
    if (decision.http2) this.forwardHttp2(request);
    else this.forwardHttp1(request);
  }

  private forwardHttp2(request: ForwardedRequest): void {
    const { stream, info, headers, log, state, grpc, decision, t0 } = request;
    const { upstream } = decision;
    const cluster = { cluster_name: upstream.cluster };
    const metrics = this.options.metrics;
    const session = this.options.upstreams.session(upstream);
    const te = info.headers['te'];
    const upStream: ClientHttp2Stream = session.request({
      ...headers,
      ...(te === 'trailers' ? { te } : {}),
      ':method': info.method,
      ':path': decision.path,
      ':authority': decision.authority,
      ':scheme': 'http',
    });
    const noteLocal = () => {
      const s = session.socket;
      if (s?.localAddress) log.upstreamLocalAddress = formatHostPort(s.localAddress, s.localPort);
    };
    if (session.connecting) session.once('connect', noteLocal);
    else noteLocal();
    let responded = false;
    let timer: NodeJS.Timeout | undefined;
    if (decision.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        upStream.close(constants.NGHTTP2_CANCEL);
        if (!responded) this.local(stream, log, state, grpc, 504, 'UT', 'upstream request timeout', true);
        else stream.close(constants.NGHTTP2_CANCEL);
      }, decision.timeoutMs);
    }
    let trailers: OutgoingHttpHeaders | undefined;
    upStream.on('response', (responseHeaders, flags) => {
      responded = true;
      log.upstreamServiceTimeMs = Math.round(performance.now() - t0);
      log.responseCode = Number(responseHeaders[':status'] ?? 502);
      const out: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(responseHeaders)) {
        if ((name.startsWith(':') && name !== ':status') || CONNECTION_SPECIFIC.has(name) || value === undefined) continue;
        out[name] = value;
      }
      if (decision.external) out['x-envoy-upstream-service-time'] = String(log.upstreamServiceTimeMs);
      applyHeaderOperationsToObject(out, decision.responseHeaders);
      // A trailers-only answer (gRPC errors) ends in its HEADERS frame.
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) {
        clearTimeout(timer);
        stream.respond(out, { endStream: true });
        state.ended = true;
        return;
      }
      const withTrailers = String(out['content-type'] ?? '').startsWith('application/grpc') || out['trailer'] !== undefined;
      stream.respond(out, { waitForTrailers: withTrailers });
      if (withTrailers) stream.once('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
      upStream.pipe(stream);
    });
    upStream.on('trailers', (t) => {
      trailers = {};
      for (const [name, value] of Object.entries(t)) if (!name.startsWith(':') && value !== undefined) trailers[name] = value as string | string[];
    });
    upStream.on('data', (chunk: Buffer) => {
      log.bytesSent += chunk.length;
      metrics.bytesReceived.inc(cluster, chunk.length);
    });
    upStream.on('end', () => clearTimeout(timer));
    upStream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (stream.destroyed || (log.responseFlags !== '-' && log.responseFlags !== decision.flags)) return;
      if (responded) {
        log.responseFlags = 'UC';
        stream.close(constants.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      const flag = err.code === 'ECONNREFUSED' || err.code === 'ETIMEDOUT' || err.code === 'EHOSTUNREACH' ? 'UF' : 'UC';
      this.local(stream, log, state, grpc, 503, flag, `upstream connect error or disconnect/reset before headers. reset reason: ${err.code ?? err.message}`);
    });
    upStream.on('close', () => {
      clearTimeout(timer);
      // Reset by the upstream after its answer began: pass the reset on (UC).
      if (responded && upStream.rstCode !== constants.NGHTTP2_NO_ERROR && !state.ended && !stream.destroyed) {
        if (log.responseFlags === '-') log.responseFlags = 'UC';
        stream.close(upStream.rstCode ?? constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    stream.on('data', (chunk: Buffer) => {
      log.bytesReceived += chunk.length;
      metrics.bytesSent.inc(cluster, chunk.length);
    });
    stream.pipe(upStream);
    stream.once('close', () => {
      clearTimeout(timer);
      if (!upStream.closed) upStream.close(constants.NGHTTP2_CANCEL);
    });
  }

  private forwardHttp1(request: ForwardedRequest): void {
    const { stream, info, headers, log, state, grpc, decision, t0 } = request;
    const { upstream } = decision;
    const cluster = { cluster_name: upstream.cluster };
    const metrics = this.options.metrics;
    // The body is kept while it streams, so that a retry can send it again (http-retry-body.ts).
    const body = new ReplayableBody(stream, (n) => {
      log.bytesReceived += n;
      metrics.bytesSent.inc(cluster, n);
    });
    const retry = new RetryState(decision.retry, body);
    let timer: NodeJS.Timeout | undefined;
    let current: ClientRequest | undefined;
    const attempt = () => {
      if (headers['x-envoy-attempt-count'] !== undefined) headers['x-envoy-attempt-count'] = String(retry.attempt);
      const upReq = httpRequest({
        host: upstream.address,
        port: upstream.port,
        method: info.method,
        path: decision.path,
        headers: { host: decision.authority, ...headers } as Record<string, string>,
        agent: this.options.agent,
        setHost: false,
      });
      current = upReq;
      upReq.on('socket', (s: Socket) => {
        const noteLocal = () => (log.upstreamLocalAddress = formatHostPort(s.localAddress, s.localPort));
        if (s.localAddress) noteLocal();
        else s.once('connect', noteLocal);
      });
      const tried = new Attempt(
        retry,
        body,
        upReq,
        {
          waiting: () => !stream.headersSent && !stream.destroyed,
          next: attempt,
          timedOut: () => this.local(stream, log, state, grpc, 504, retry.flag('UT'), 'upstream request timeout', true),
        },
        decision.retry?.perTryTimeoutMs,
      );
      upReq.on('response', (upRes) => {
        if (tried.superseded) return upRes.resume();
        tried.settle();
        if (tried.retried({ kind: 'response', status: upRes.statusCode ?? 502, grpcStatus: grpcStatusHeader(upRes.headers) })) {
          upRes.resume();
          return;
        }
        log.responseFlags = retry.flag(log.responseFlags);
        log.upstreamServiceTimeMs = Math.round(performance.now() - t0);
        log.responseCode = upRes.statusCode ?? 502;
        const out: OutgoingHttpHeaders = { ':status': log.responseCode };
        for (const [name, value] of Object.entries(upRes.headers)) {
          if (!CONNECTION_SPECIFIC.has(name) && value !== undefined) out[name] = value;
        }
        if (decision.external) out['x-envoy-upstream-service-time'] = String(log.upstreamServiceTimeMs);
        applyHeaderOperationsToObject(out, decision.responseHeaders);
        stream.respond(out);
        upRes.on('data', (chunk: Buffer) => {
          log.bytesSent += chunk.length;
          metrics.bytesReceived.inc(cluster, chunk.length);
        });
        upRes.pipe(stream);
        upRes.on('end', () => clearTimeout(timer));
        upRes.on('aborted', () => {
          if (log.responseFlags === '-') log.responseFlags = 'UC';
          stream.close(constants.NGHTTP2_INTERNAL_ERROR);
        });
      });
      upReq.on('error', (err: NodeJS.ErrnoException) => {
        if (tried.superseded) return;
        tried.settle();
        if (stream.destroyed || (log.responseFlags !== '-' && log.responseFlags !== decision.flags)) return;
        if (stream.headersSent) {
          clearTimeout(timer);
          log.responseFlags = 'UC';
          stream.close(constants.NGHTTP2_INTERNAL_ERROR);
          return;
        }
        metrics.upstreamConnectFailures.inc(cluster);
        if (tried.retried(outcomeOfError(err))) return;
        clearTimeout(timer);
        this.local(stream, log, state, grpc, 503, retry.flag(err.code === 'ECONNRESET' ? 'UC' : 'UF'), `upstream connect error or disconnect/reset before headers. reset reason: ${err.code ?? err.message}`);
      });
      body.sendTo(upReq);
    };
    if (decision.timeoutMs !== undefined) {
      // The route timeout covers every attempt, as Envoy's.
      timer = setTimeout(() => {
        current?.destroy();
        if (!stream.headersSent) this.local(stream, log, state, grpc, 504, 'UT', 'upstream request timeout', true);
        else stream.close(constants.NGHTTP2_CANCEL);
      }, decision.timeoutMs);
    }
    attempt();
    stream.once('close', () => {
      clearTimeout(timer);
      if (current && (!current.writableFinished || !current.destroyed)) current.destroy();
    });
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
