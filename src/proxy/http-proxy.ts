/**
 * HTTP-level proxying for ServiceEntry HTTP ports and HTTP gateway servers, using Node's own
 * HTTP machinery on the accepted socket: each request is routed by its Host header and the
 * VirtualService routes (uri, authority, method, scheme, headers, query parameters, port,
 * gateway match; weights), gets the timeout of its route
 * (504 "upstream request timeout", flag UT), and is logged in Envoy's format. Unknown hosts are
 * passed through (ALLOW_ANY) or answered 502 (REGISTRY_ONLY), as Envoy's allow_any/block_all
 * virtual hosts do.
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { AccessLog, AccessLogEntry } from './access-log.js';
import { formatHostPort } from './address-format.js';
import type { ConnectionContext } from './connection-context.js';
import { hostMatches } from './host-table.js';
import { stripPort } from './http-request-head.js';
import { MESH_GATEWAY, type Destination } from './istio-types.js';
import type { ProxyMetrics } from './metrics.js';
import { isHttp, type Registry } from './registry.js';
import { pickDestination, selectHttpRoute } from './routes.js';
import { NoUpstreamError, type Upstream, type UpstreamResolver } from './upstream-resolver.js';

// Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's business, not the request's.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);

export interface HttpProxyOptions {
  registry: () => Registry;
  resolver: UpstreamResolver;
  accessLog: AccessLog;
  metrics: ProxyMetrics;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/** One HTTP server instance, fed accepted sockets via `handle()`. */
export class HttpProxy {
  private readonly server: Server;
  private readonly contexts = new WeakMap<Socket, ConnectionContext>();
  private readonly agent = new Agent({ keepAlive: true, scheduling: 'lifo', timeout: 60_000 });

  constructor(private readonly options: HttpProxyOptions) {
    this.server = createServer({ keepAliveTimeout: options.idleTimeoutMs, requestTimeout: 0 }, (req, res) => {
      const ctx = this.contexts.get(req.socket);
      if (!ctx) {
        res.destroy();
        return;
      }
      // A bug in routing must cost this request only, never the process.
      this.route(req, res, ctx).catch(() => res.destroy());
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  /** Takes over an accepted socket whose first bytes are an HTTP/1.x request (left unread). */
  handle(socket: Socket, ctx: ConnectionContext): void {
    this.contexts.set(socket, ctx);
    this.server.emit('connection', socket);
    socket.resume();
  }

  /** Closes idle keep-alive connections (used while draining). */
  closeIdle(): void {
    this.server.closeIdleConnections();
    this.agent.destroy();
  }

  private async route(req: IncomingMessage, res: ServerResponse, ctx: ConnectionContext): Promise<void> {
    const startTime = new Date();
    const t0 = performance.now();
    const registry = this.options.registry();
    const authority = req.headers.host ?? formatHostPort(ctx.originalDst.address, ctx.originalDst.port);
    const host = stripPort(authority);
    const port = ctx.originalDst.port;
    const log: AccessLogEntry = {
      startTime,
      method: req.method ?? '-',
      path: req.url ?? '/',
      protocol: `HTTP/${req.httpVersion}`,
      responseCode: 0,
      responseFlags: '-',
      bytesReceived: 0,
      bytesSent: 0,
      durationMs: 0,
      userAgent: req.headers['user-agent'],
      xForwardedFor: headerText(req.headers['x-forwarded-for']),
      authority,
      downstreamLocalAddress: formatHostPort(ctx.originalDst.address, ctx.originalDst.port),
      downstreamRemoteAddress: formatHostPort(ctx.downstreamRemote.address, ctx.downstreamRemote.port),
    };
    // Body bytes are counted in forward(): a 'data' listener here would start the flow before
    // the upstream request exists and lose the body.
    res.once('close', () => {
      log.durationMs = performance.now() - t0;
      log.responseCode = res.headersSent ? res.statusCode : log.responseCode;
      this.options.accessLog.write(log);
      if (log.upstreamCluster) this.options.metrics.response(log.upstreamCluster, log.responseCode);
    });

    // Which gateway is this request on? For gateway listeners, the server whose hosts match.
    let gateway = MESH_GATEWAY;
    if (ctx.gateway !== 'mesh') {
      const match = ctx.gateway.servers.find(
        (s) => isHttp(s.server.port.protocol) && s.server.hosts.some((h) => hostMatches(h, host)),
      );
      if (!match) return this.local(res, log, 404, 'NR', undefined);
      gateway = match.gateway;
    }

    let destination: Destination | undefined;
    let timeoutMs: number | undefined;
    let external = true;
    const vs = registry.virtualService(host, gateway);
    if (vs) {
      const route = selectHttpRoute(vs, {
        path: req.url ?? '/',
        authority,
        method: req.method ?? 'GET',
        scheme: 'http',
        port,
        gateway,
        rawHeaders: req.rawHeaders,
      });
      if (!route) return this.local(res, log, 404, 'NR', undefined);
      destination = pickDestination(route.route);
      timeoutMs = route.timeoutMs;
    } else if (gateway !== MESH_GATEWAY) {
      return this.local(res, log, 404, 'NR', undefined);
    } else {
      const binding = registry.byHost(host, port) ?? registry.byAddress(ctx.originalDst.address, port);
      if (binding && isHttp(binding.port.protocol)) destination = { host: binding.host, port };
    }

    let upstream: Upstream;
    if (destination) {
      try {
        upstream = await this.options.resolver.resolve(registry, destination, ctx.originalDst, host);
      } catch (err) {
        if (!(err instanceof NoUpstreamError)) throw err;
        log.upstreamCluster = err.cluster;
        return this.local(res, log, 503, err.flag, 'no healthy upstream');
      }
    } else if (registry.mode === 'ALLOW_ANY') {
      external = false;
      upstream = { ...ctx.originalDst, cluster: 'PassthroughCluster' };
    } else {
      log.upstreamCluster = 'BlackHoleCluster';
      return this.local(res, log, 502, '-', undefined);
    }
    log.upstreamCluster = upstream.cluster;
    log.upstreamHost = formatHostPort(upstream.address, upstream.port);
    this.forward(req, res, log, upstream, {
      external,
      decorator: destination ? `${destination.host}:${destination.port ?? port}/*` : undefined,
      timeoutMs,
      t0,
    });
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    log: AccessLogEntry,
    upstream: Upstream,
    opts: { external: boolean; decorator: string | undefined; timeoutMs: number | undefined; t0: number },
  ): void {
    const headers: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push([name, req.rawHeaders[i + 1]!]);
    }
    let requestId = headerText(req.headers['x-request-id']);
    if (opts.external) {
      // What Envoy adds on an outbound route to a ServiceEntry (seen in httpbin's /headers).
      if (!requestId) headers.push(['x-request-id', (requestId = randomUUID())]);
      headers.push(['x-forwarded-proto', 'http'], ['x-envoy-attempt-count', '1']);
      if (opts.decorator) headers.push(['x-envoy-decorator-operation', opts.decorator]);
      if (!req.headers['x-b3-traceid']) {
        headers.push(
          ['x-b3-traceid', randomBytes(16).toString('hex')],
          ['x-b3-spanid', randomBytes(8).toString('hex')],
          ['x-b3-sampled', '0'],
        );
      }
    }
    log.requestId = requestId;
    const metrics = this.options.metrics;
    let timer: NodeJS.Timeout | undefined;
    const upReq = httpRequest({
      host: upstream.address,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: headers as unknown as Record<string, string>,
      agent: this.agent,
      setHost: false,
    });
    upReq.on('socket', (socket: Socket) => {
      if (!(upReq as { reusedSocket?: boolean }).reusedSocket) {
        metrics.upstreamConnections.inc({ cluster_name: upstream.cluster });
      }
      // Bound only the connect: how long the answer may take is the route's timeout.
      if (socket.connecting) {
        const connectTimer = setTimeout(
          () => upReq.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
          this.options.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
        socket.once('close', () => clearTimeout(connectTimer));
      }
      const noteLocal = () => (log.upstreamLocalAddress = formatHostPort(socket.localAddress, socket.localPort));
      if (socket.localAddress) noteLocal();
      else socket.once('connect', noteLocal);
    });
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        upReq.destroy();
        if (!res.headersSent) this.local(res, log, 504, 'UT', 'upstream request timeout');
        else res.destroy();
      }, opts.timeoutMs);
    }
    upReq.on('response', (upRes) => {
      log.upstreamServiceTimeMs = Math.round(performance.now() - opts.t0);
      const out: [string, string][] = [];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
        const name = upRes.rawHeaders[i]!;
        if (!HOP_BY_HOP.has(name.toLowerCase())) out.push([name, upRes.rawHeaders[i + 1]!]);
      }
      if (opts.external) out.push(['x-envoy-upstream-service-time', String(log.upstreamServiceTimeMs)]);
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, out as unknown as Record<string, string>);
      upRes.on('data', (chunk: Buffer) => {
        log.bytesSent += chunk.length;
        metrics.bytesReceived.inc({ cluster_name: upstream.cluster }, chunk.length);
      });
      upRes.pipe(res);
      upRes.on('end', () => clearTimeout(timer));
      upRes.on('error', () => res.destroy());
    });
    upReq.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (res.headersSent || res.writableEnded) {
        res.destroy();
        return;
      }
      metrics.upstreamConnectFailures.inc({ cluster_name: upstream.cluster });
      const flag = err.code === 'ECONNRESET' ? 'UC' : 'UF';
      this.local(res, log, 503, flag, `upstream connect error or disconnect/reset before headers. reset reason: ${err.code ?? err.message}`);
    });
    req.on('data', (chunk: Buffer) => {
      log.bytesReceived += chunk.length;
      metrics.bytesSent.inc({ cluster_name: upstream.cluster }, chunk.length);
    });
    req.pipe(upReq);
    // The downstream went away: stop the upstream request too.
    res.once('close', () => {
      clearTimeout(timer);
      if (!res.writableFinished) upReq.destroy();
    });
  }

  /** A response Envoy itself would generate (404 NR, 502 block_all, 503 UF/UH, 504 UT). */
  private local(res: ServerResponse, log: AccessLogEntry, code: number, flag: string, body: string | undefined): void {
    log.responseCode = code;
    log.responseFlags = flag;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = body ?? '';
    log.bytesSent = Buffer.byteLength(text);
    res.writeHead(code, { 'content-length': String(log.bytesSent), 'content-type': 'text/plain', server: 'envoy' });
    res.end(text);
  }
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
