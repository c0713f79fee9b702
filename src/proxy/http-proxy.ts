/**
 * HTTP-level proxying for ServiceEntry HTTP ports and HTTP gateway servers, using Node's own
 * HTTP machinery on the accepted socket: each request is routed (http-routing.ts) by its
 * authority — an absolute-form target's, else Host — and the VirtualService routes, gets the
 * timeout of its route (504 "upstream request timeout", flag UT), and is logged in Envoy's
 * format. Upgrades (WebSocket and any other) are routed the same way and then relayed both ways
 * (http-upgrade.ts); prior-knowledge h2c connections go to the HTTP/2 side (http2-proxy.ts).
 */
import { Agent, createServer, request as httpRequest, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { AccessLog, AccessLogEntry } from './access-log.js';
import { formatHostPort } from './address-format.js';
import type { ConnectionContext } from './connection-context.js';
import { absoluteFormAuthority, MAX_REQUEST_HEAD, originForm } from './http-request-head.js';
import { envoyRequestHeaders, requestEntry, routeRequest, type HttpRequestInfo, type RoutingDecision } from './http-routing.js';
import { Http2Proxy } from './http2-proxy.js';
import { setAttemptCount } from './http-retry.js';
import { applyHeaderOperations } from './http-rewrite.js';
import { Http2Upstreams } from './http2-upstream.js';
import { Http2UpstreamRequest } from './http2-upstream-request.js';
import { Http1UpstreamRequest } from './http1-upstream-request.js';
import { Agent as UndiciAgent } from 'undici';
import { forwardUpgrade, type UpgradeDeps, isH2cUpgrade, replayWithoutH2cUpgrade, writeRawResponse } from './http-upgrade.js';
import type { ProxyMetrics } from './metrics.js';
import { randomHex } from './random-hex.js';
import type { Registry } from './registry.js';
import { requestBody, RetryDriver } from './retry-driver.js';
import type { TcpSessionDeps } from './tcp-session.js';
import type { UpstreamCall } from './upstream-call.js';
import { HttpFastPath } from './http-fast-path.js';
import type { Upstream, UpstreamResolver } from './upstream-resolver.js';

// Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's business, not the request's.
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'http2-settings']);

/** upstreamHeaders() keeps no hop-by-hop header unless told. */
const KEEP_NONE: ReadonlySet<string> = new Set();

/** One downstream request's state, shared by routing, forwarding and the end of the exchange. */
interface Exchange {
  log: AccessLogEntry;
  /** performance.now() when the request arrived. */
  t0: number;
  /** The tries upstream, their timeouts and retries, once forwarded. */
  driver: RetryDriver<IncomingMessage> | undefined;
  /** The pool slot of a DestinationRule's cluster, given back when the exchange ends. */
  call: UpstreamCall | undefined;
}

/** "HTTP/1.1" as the log prints it, without building the string on every request. */
function protocolOf(req: IncomingMessage): string {
  const v = req.httpVersion;
  return v === '1.1' ? 'HTTP/1.1' : v === '1.0' ? 'HTTP/1.0' : `HTTP/${v}`;
}

/** grpc-status from raw headers, as grpcStatusOf() reads it from a header object (repeats joined). */
function grpcStatusOfRaw(raw: readonly string[]): number | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 11 && name.toLowerCase() === 'grpc-status') value = value === undefined ? raw[i + 1]! : `${value}, ${raw[i + 1]!}`;
  }
  return value === undefined ? undefined : Number(value);
}

export interface HttpProxyOptions {
  registry: () => Registry;
  resolver: UpstreamResolver;
  accessLog: AccessLog;
  metrics: ProxyMetrics;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** The splice relay for upgraded connections, when the proxy runs one (read per upgrade). */
  splice?: () => TcpSessionDeps['splice'];
  /**
   * Serve plain HTTP/1.1 keep-alive requests on eligible routes with the addon's native fast
   * path (http-fast-path.ts); its route answers are kept `routeTtlMs` (the DNS refresh
   * period). Undefined: every request takes the Node path (`--no-native-http`).
   */
  nativeHttp?: { routeTtlMs: number };
}

/** One HTTP server instance, fed accepted sockets via `handle()`. */
export class HttpProxy {
  private readonly server: Server;
  private readonly contexts = new WeakMap<Duplex, ConnectionContext>();
  private readonly agent = new Agent({ keepAlive: true, scheduling: 'lifo', timeout: 60_000 });
  /**
   * undici's client for plain HTTP/1.1 upstreams without a DestinationRule (the common case): it
   * costs less CPU per request than Node's. Like the agent above: keep-alive connections kept
   * up to 60 s idle, no limit on connections; only the connect is bounded, how long the answer
   * may take is the route's timeout.
   */
  private dispatcher: UndiciAgent;
  /** Each upstream socket's local address as the log prints it, noted once per connection. */
  private readonly upstreamLocal = new WeakMap<Socket, string>();
  private readonly http2: Http2Proxy;
  readonly upstreams2: Http2Upstreams;
  private readonly fastPath: HttpFastPath | undefined;

  constructor(private readonly options: HttpProxyOptions) {
    // Envoy's default max_request_headers_kb is 60; beyond it the answer is 431.
    this.server = createServer(
      { keepAliveTimeout: options.idleTimeoutMs, requestTimeout: 0, maxHeaderSize: MAX_REQUEST_HEAD },
      (req, res) => {
        const ctx = this.contexts.get(req.socket);
        if (!ctx) {
          res.destroy();
          return;
        }
        // A bug in routing must cost this request only, never the process.
        this.route(req, res, ctx).catch(() => res.destroy());
      },
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.clientError(err, socket));
    // Upgrades (WebSocket, h2c …) and CONNECT leave Node's request/response flow.
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const ctx = this.contexts.get(socket);
      if (!ctx) {
        socket.destroy();
        return;
      }
      this.upgrade(req, socket as Socket, head, ctx).catch(() => socket.destroy());
    };
    this.server.on('upgrade', onUpgrade);
    this.server.on('connect', onUpgrade);
    this.dispatcher = this.newDispatcher();
    this.upstreams2 = new Http2Upstreams(options.connectTimeoutMs, options.metrics);
    this.http2 = new Http2Proxy({ ...options, upstreams: this.upstreams2, agent: this.agent });
    this.fastPath = options.nativeHttp
      ? new HttpFastPath({
          ...options,
          routeTtlMs: options.nativeHttp.routeTtlMs,
          serve: (socket, ctx, http2) => (http2 ? this.http2.handle(socket, ctx) : this.serve(socket, ctx)),
        })
      : undefined;
  }

  /** Requests the native fast path served, connections it handed back and holds now (undefined: it is off). */
  get nativeHttpStats(): { served: number; handedBack: number; open: number } | undefined {
    return this.fastPath?.stats;
  }

  /** The configuration was reloaded: routes the fast path learnt no longer hold. */
  routesChanged(): void {
    this.fastPath?.routesChanged();
  }

  /**
   * Takes over an accepted socket whose first bytes (left unread) are an HTTP/1.x request, or
   * the HTTP/2 preface when `http2`.
   */
  handle(socket: Socket, ctx: ConnectionContext, http2 = false): void {
    // No Nagle, as Envoy and HAProxy (and Node's own HTTP server) set: a response written in
    // two parts (a streamed body, a chunked terminator) would otherwise hold its second write
    // for the client's ACK of the first, which a client with nothing to send delays ~40 ms.
    // Accepted sockets come from our own listener or the splice relay, which set nothing.
    socket.setNoDelay(true);
    // Sidecar traffic goes to the native fast path, which hands back what it does not serve
    // (an HTTP/2 connection whole, before anything but an empty SETTINGS was sent to it). h2c
    // only where some route can be native: a ServiceEntry HTTP, HTTP2 or GRPC port.
    if (
      this.fastPath &&
      ctx.gateway === 'mesh' &&
      (!http2 || this.options.registry().hasHttpPort(ctx.originalDst.port)) &&
      this.fastPath.take(socket, ctx, http2)
    ) {
      return;
    }
    if (http2) this.http2.handle(socket, ctx);
    else this.serve(socket, ctx);
  }

  /** Node's HTTP server takes the socket. */
  private serve(socket: Socket, ctx: ConnectionContext): void {
    this.contexts.set(socket, ctx);
    this.server.emit('connection', socket);
    socket.resume();
  }

  private newDispatcher(): UndiciAgent {
    return new UndiciAgent({ connect: { timeout: this.options.connectTimeoutMs }, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 });
  }

  /** Closes idle keep-alive connections (used while draining). */
  closeIdle(): void {
    this.server.closeIdleConnections();
    this.fastPath?.closeIdle();
    this.agent.destroy();
    // A closed undici Agent takes no more requests: a new one serves those still to come.
    const old = this.dispatcher;
    this.dispatcher = this.newDispatcher();
    old.destroy().catch(() => undefined);
    this.http2.closeIdle();
    this.upstreams2.closeAll();
  }

  private requestInfo(req: IncomingMessage, ctx: ConnectionContext): HttpRequestInfo {
    const target = req.url ?? '/';
    // RFC 9112 §3.2.2: an absolute-form target's authority is the one that counts, Host is ignored.
    // Origin form ("/…", nearly every request) cannot be absolute form: no regex for it.
    const fromUri = target.charCodeAt(0) === 47 ? undefined : absoluteFormAuthority(target);
    const authority = fromUri ?? req.headers.host ?? formatHostPort(ctx.originalDst.address, ctx.originalDst.port);
    return { method: req.method ?? 'GET', path: fromUri !== undefined ? originForm(target) : target, authority, headers: req.headers, rawHeaders: req.rawHeaders };
  }

  private async route(req: IncomingMessage, res: ServerResponse, ctx: ConnectionContext): Promise<void> {
    const t0 = performance.now();
    const info = this.requestInfo(req, ctx);
    const exchange: Exchange = { log: requestEntry(ctx, info, protocolOf(req)), t0, driver: undefined, call: undefined };
    // Body bytes are counted in forward(): a 'data' listener here would start the flow before
    // the upstream request exists and lose the body. One 'close' listener per request does
    // everything the end of the exchange needs (listeners are a cost on every request).
    res.once('close', () => this.closed(res, exchange));
    const decision = await routeRequest(this.options, ctx, info, false);
    const log = exchange.log;
    if (decision.kind === 'local') {
      log.upstreamCluster = decision.cluster;
      return this.local(res, log, decision.code, decision.flag, decision.body, decision.headers);
    }
    log.upstreamCluster = decision.upstream.cluster;
    log.upstreamHost = formatHostPort(decision.upstream.address, decision.upstream.port);
    this.forward(req, res, exchange, decision);
  }

  /** The downstream exchange is over (answered, or the client went away): log it, free what it held. */
  private closed(res: ServerResponse, exchange: Exchange): void {
    const log = exchange.log;
    log.durationMs = performance.now() - exchange.t0;
    log.responseCode = res.headersSent ? res.statusCode : log.responseCode;
    // The client went away before its answer was complete (Envoy: DC, downstream connection termination).
    if (!res.writableFinished && log.responseFlags === '-') log.responseFlags = 'DC';
    this.options.accessLog.write(log);
    if (log.upstreamCluster) this.options.metrics.response(log.upstreamCluster, log.responseCode);
    exchange.call?.end();
    // The downstream went away: stop the upstream request too.
    exchange.driver?.close(res.writableFinished);
  }

  /** The request's headers for upstream: hop-by-hop ones dropped, Host set to the authority, Envoy's added. */
  private upstreamHeaders(req: IncomingMessage, decision: Extract<RoutingDecision, { kind: 'forward' }>, keep: ReadonlySet<string> = KEEP_NONE) {
    const headers: [string, string][] = [];
    let hostSeen = false;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      const lower = name.toLowerCase();
      if (lower === 'host') {
        // An absolute-form target's authority replaces Host (as Envoy forwards it).
        if (!hostSeen) headers.push([name, decision.authority]);
        hostSeen = true;
      } else if (!HOP_BY_HOP.has(lower) || keep.has(lower)) {
        headers.push([name, req.rawHeaders[i + 1]!]);
      }
    }
    if (!hostSeen) headers.push(['host', decision.authority]);
    const added = envoyRequestHeaders(req.headers, decision, randomHex, randomUUID);
    for (const h of added.add) headers.push(h);
    return { headers: applyHeaderOperations(headers, decision.requestHeaders), requestId: added.requestId };
  }

  private forward(req: IncomingMessage, res: ServerResponse, exchange: Exchange, decision: Extract<RoutingDecision, { kind: 'forward' }>): void {
    const log = exchange.log;
    const upstream = decision.upstream;
    const { headers, requestId } = this.upstreamHeaders(req, decision);
    log.requestId = requestId;
    if (decision.flags) log.responseFlags = decision.flags;
    const metrics = this.options.metrics;
    const labels = metrics.clusterLabels(upstream.cluster);
    // The body is kept while it streams, so that a retry can send it again (http-retry-body.ts).
    const noBody = req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0');
    const body = requestBody(req, noBody, log, metrics, labels);
    // A DestinationRule's cluster: its pool admits the request (else 503 UO), its agent sends it (TLS origination).
    const call = upstream.policy?.start();
    if (upstream.policy && !call) return this.local(res, log, 503, 'UO', 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
    exchange.call = call;
    // The same options for every attempt (http.request copies them). servername '' spares the
    // plain agent working out a TLS server name from Host on every request; it has no TLS.
    const options = call
      ? { host: upstream.address, port: upstream.port, method: req.method, path: decision.path, headers: headers as unknown as Record<string, string>, setHost: false }
      : { host: upstream.address, port: upstream.port, method: req.method, path: decision.path, headers: headers as unknown as Record<string, string>, setHost: false, agent: this.agent, servername: '' };
    // undici where it does all Node's client does here: not for `Expect` (undici refuses it).
    const viaUndici = !decision.http2 && !call && req.headers.expect === undefined;
    const driver: RetryDriver<IncomingMessage> = new RetryDriver<IncomingMessage>(decision, body, metrics, labels, {
      send: (attempt) => {
        setAttemptCount(headers, attempt);
        const upReq = decision.http2
          ? this.http2Request(decision, req.method ?? 'GET', headers, noBody, log)
          : viaUndici
            ? this.undiciRequest(upstream, req.method ?? 'GET', decision.path, headers, noBody, log)
            : call
              ? call.request(options)
              : httpRequest(options);
        if (!viaUndici) this.watchConnect(upReq, upstream, log);
        // The transport failure of an earlier try is not this one's.
        if (call) log.upstreamTransportFailureReason = undefined;
        return upReq;
      },
      outcome: (upRes) => {
        const status = upRes.statusCode ?? 502;
        call?.answered(status);
        // From the raw headers: upRes.headers would build a header object for every response.
        return { kind: 'response', status, grpcStatus: grpcStatusOfRaw(upRes.rawHeaders) };
      },
      relay: (upRes) => {
        log.responseFlags = driver.flag(log.responseFlags);
        log.upstreamServiceTimeMs = Math.round(performance.now() - exchange.t0);
        let out: [string, string][] = [];
        const raw = upRes.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i]!;
          if (!HOP_BY_HOP.has(name.toLowerCase())) out.push([name, raw[i + 1]!]);
        }
        if (decision.external) out.push(['x-envoy-upstream-service-time', String(log.upstreamServiceTimeMs)]);
        out = applyHeaderOperations(out, decision.responseHeaders);
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, out as unknown as Record<string, string>);
        // Relayed by hand rather than with pipe(), which adds and removes half a dozen listeners
        // on both streams for every request.
        upRes.on('data', (chunk: Buffer) => {
          log.bytesSent += chunk.length;
          metrics.bytesReceived.inc(labels, chunk.length);
          if (!res.write(chunk)) {
            upRes.pause();
            res.once('drain', () => upRes.resume());
          }
        });
        upRes.on('end', () => {
          driver.finished();
          res.end();
        });
        upRes.on('error', () => res.destroy());
        // The upstream went away mid-body (Envoy: UC, upstream connection termination).
        upRes.on('aborted', () => {
          if (log.responseFlags === '-') log.responseFlags = 'UC';
        });
      },
      waiting: () => !res.headersSent && !res.destroyed,
      failed: (err) => {
        const tlsFailure = call?.failed(err);
        if (res.destroyed) return undefined;
        // An HTTP/2 upstream's session counts its own connect failures (http2-upstream.ts).
        if (!decision.http2) metrics.upstreamConnectFailures.inc(labels);
        if (!tlsFailure) return err.code ?? err.message;
        log.upstreamTransportFailureReason = tlsFailure;
        return `connection failure, transport failure reason: ${tlsFailure}`;
      },
      cut: (flag) => {
        if (log.responseFlags === '-' && !res.destroyed) log.responseFlags = flag;
        res.destroy();
      },
      local: (code, flag, text) => this.local(res, log, code, flag, text),
    });
    exchange.driver = driver;
    driver.start();
  }

  /**
   * The request as a stream on the upstream's HTTP/2 session (an HTTP2 or GRPC port), shaped
   * like a ClientRequest for forward(); the session counts and bounds its own connect.
   */
  private http2Request(decision: Extract<RoutingDecision, { kind: 'forward' }>, method: string, headers: [string, string][], noBody: boolean, log: AccessLogEntry): ClientRequest {
    const session = this.upstreams2.session(decision.upstream);
    const options = { method, path: decision.path, authority: decision.authority, headers, noBody, onLocalAddress: (a: string) => (log.upstreamLocalAddress = a) };
    return new Http2UpstreamRequest(session, options) as unknown as ClientRequest;
  }

  /** The request through undici, shaped like a ClientRequest for forward(). */
  private undiciRequest(upstream: Upstream, method: string, path: string, headers: [string, string][], noBody: boolean, log: AccessLogEntry): ClientRequest {
    const watch = {
      onSocket: (socket: Socket) => {
        const known = this.upstreamLocal.get(socket);
        if (known !== undefined) {
          log.upstreamLocalAddress = known;
          return;
        }
        // First request on this connection: count it and note its address (it is connected: undici writes the head).
        this.options.metrics.upstreamConnections.inc({ cluster_name: upstream.cluster });
        const text = formatHostPort(socket.localAddress, socket.localPort);
        this.upstreamLocal.set(socket, text);
        log.upstreamLocalAddress = text;
      },
    };
    const origin = `http://${formatHostPort(upstream.address, upstream.port)}`;
    return new Http1UpstreamRequest(this.dispatcher, { origin, method, path, headers, noBody, watch }) as unknown as ClientRequest;
  }

  /** Counts the upstream connection, bounds the connect and notes the local address for the log. */
  private watchConnect(upReq: import('node:http').ClientRequest, upstream: Upstream, log: AccessLogEntry): void {
    upReq.on('socket', (socket: Socket) => {
      // A kept-alive socket: counted, connected and its address formatted on its first request.
      const known = this.upstreamLocal.get(socket);
      if (known !== undefined) {
        log.upstreamLocalAddress = known;
        return;
      }
      if (!(upReq as { reusedSocket?: boolean }).reusedSocket) {
        this.options.metrics.upstreamConnections.inc({ cluster_name: upstream.cluster });
      }
      // Bound only the connect: how long the answer may take is the route's timeout.
      if (socket.connecting) {
        const connectTimer = setTimeout(
          () => upReq.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
          upstream.policy?.connectTimeoutMs ?? this.options.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
        socket.once('close', () => clearTimeout(connectTimer));
      }
      const noteLocal = () => {
        const text = formatHostPort(socket.localAddress, socket.localPort);
        this.upstreamLocal.set(socket, text);
        log.upstreamLocalAddress = text;
      };
      if (socket.localAddress) noteLocal();
      else socket.once('connect', noteLocal);
    });
  }

  /** An Upgrade request (WebSocket or any other), or CONNECT: routed like any request, then relayed. */
  private async upgrade(req: IncomingMessage, socket: Socket, head: Buffer, ctx: ConnectionContext): Promise<void> {
    if (isH2cUpgrade(req)) {
      // Envoy's HTTP/1 codec drops an h2c upgrade and answers in HTTP/1.1 (RFC 9113 §3.1
      // deprecates it; clients then carry on in HTTP/1.1): parse the request again without it.
      replayWithoutH2cUpgrade(req, socket, head);
      this.server.emit('connection', socket);
      socket.resume();
      return;
    }
    const t0 = performance.now();
    const info = this.requestInfo(req, ctx);
    const log = requestEntry(ctx, info, protocolOf(req));
    const finish = () => {
      log.durationMs = performance.now() - t0;
      this.options.accessLog.write(log);
      if (log.upstreamCluster) this.options.metrics.response(log.upstreamCluster, log.responseCode);
    };
    const decision = await routeRequest(this.options, ctx, info, false);
    if (decision.kind === 'local') {
      log.upstreamCluster = decision.cluster;
      log.responseCode = decision.code;
      log.responseFlags = decision.flag;
      log.bytesSent = writeRawResponse(socket, decision.code, String(decision.body ?? ''));
      finish();
      return;
    }
    log.upstreamCluster = decision.upstream.cluster;
    log.upstreamHost = formatHostPort(decision.upstream.address, decision.upstream.port);
    const { headers, requestId } = this.upstreamHeaders(req, decision, new Set(['connection', 'upgrade']));
    log.requestId = requestId;
    await forwardUpgrade(
      { ...this.options, splice: this.options.splice?.() } as UpgradeDeps,
      { socket, head, method: info.method, path: decision.path, headers, log, t0, timeoutMs: decision.timeoutMs, upstream: decision.upstream, external: decision.external },
    );
    finish();
  }

  /** A request Node's parser refused: 431 for headers over the limit (logged, as Envoy does), else close. */
  private clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const ctx = this.contexts.get(socket);
    if (err.code !== 'HPE_HEADER_OVERFLOW' || !ctx || !socket.writable) {
      socket.destroy();
      return;
    }
    const log: AccessLogEntry = {
      ...requestEntry(ctx, { method: '', path: '', authority: '', headers: {}, rawHeaders: [] }, ''),
      method: undefined,
      path: undefined,
      protocol: undefined,
      authority: undefined,
      responseCode: 431,
      // Envoy: DPE, a downstream protocol error (http1.headers_too_large).
      responseFlags: 'DPE',
    };
    log.bytesSent = writeRawResponse(socket, 431, 'Request Header Fields Too Large');
    this.options.accessLog.write(log);
  }

  /** A response Envoy itself would generate (404 NR, 502 block_all, 503 UF/UH, 504 UT). */
  private local(res: ServerResponse, log: AccessLogEntry, code: number, flag: string, body: string | Buffer | undefined, headers: [string, string][] = []): void {
    log.responseCode = code;
    log.responseFlags = flag;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = body ?? '';
    log.bytesSent = Buffer.byteLength(text);
    res.writeHead(code, [['content-length', String(log.bytesSent)], ['content-type', 'text/plain'], ['server', 'envoy'], ...headers].flat());
    res.end(text);
  }
}
