/**
 * The native HTTP/1.1 fast path as the HTTP layer uses it: takes sidecar connections off Node's
 * HTTP server (http-proxy.ts handle()), answers the addon's route questions with the JS path's
 * own routing (http-fast-path-routes.ts), writes the access-log line and counts the metrics of
 * each request it served exactly as the JS path would, keeps the connection tracker counting
 * the connections it holds, and gives the connections it hands back to `serve` (Node's server).
 */
import type { Socket } from 'node:net';
import type { AccessLog, AccessLogEntry } from './access-log.js';
import { formatHostPort } from './address-format.js';
import type { ConnectionContext } from './connection-context.js';
import { compileFastRoute } from './http-fast-path-routes.js';
import type { RoutingDeps } from './http-routing.js';
import type { ProxyMetrics } from './metrics.js';
import { NativeHttpFastPath, type FastRequestCounts, type FastRequestRecord } from './native-http-fast-path.linux.js';
import type { TcpSessionDeps } from './tcp-session.js';

export interface HttpFastPathOptions extends RoutingDeps {
  accessLog: AccessLog;
  metrics: ProxyMetrics;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** How long a route answer holds (the DNS refresh period). */
  routeTtlMs: number;
  /** The connection tracker's hold, through the splice relay's deps (read per connection). */
  splice?: () => TcpSessionDeps['splice'];
  /** Serves a connection handed back (Node's HTTP server, or node:http2's when `http2`). */
  serve(socket: Socket, ctx: ConnectionContext, http2: boolean): void;
}

/** A connection the native fast path holds: its context, and how to stop counting it. */
interface FastConnection {
  ctx: ConnectionContext;
  release: () => void;
  /** The downstream addresses as the log prints them, formatted once per connection. */
  local: string;
  remote: string;
  /** The Node socket the fast path took it from (the connection tracker knows it by that). */
  taken?: Socket;
  /** Taken as prior-knowledge HTTP/2 (h2c): its requests are logged as HTTP/2. */
  http2: boolean;
}

interface ClusterCounts {
  codes: Map<number, number>;
  bytesIn: number;
  bytesOut: number;
  connections: number;
  failures: number;
  retries: number;
  /** Requests whose retries ran out on a retriable outcome (URX). */
  retryLimitExceeded: number;
  retryAbandoned: number;
}

export class HttpFastPath {
  private readonly native: NativeHttpFastPath<FastConnection>;
  /** The metrics of the requests of one delivery, per cluster, added once at its end. */
  private readonly counts = new Map<string, ClusterCounts>();

  /** Starts the addon's fast-path thread. Throws InterceptError when the addon is not built. */
  constructor(private readonly options: HttpFastPathOptions) {
    this.native = new NativeHttpFastPath(
      // TEXT lines are written by the fast path's thread, and with no access log none are made:
      // formatting them here was most of what this thread did per request. Either way the
      // thread sums the counts, so this thread's work is per delivery, not per request.
      {
        connectTimeoutMs: options.connectTimeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        logs: options.accessLog.writesText ? 'lines' : options.accessLog.writes ? 'records' : 'counts',
      },
      {
        routeMiss: (port, authority) => {
          compileFastRoute(options, port, authority).then(
            (route) => this.native.setRoute(port, authority, route, options.routeTtlMs),
            () => this.native.setRoute(port, authority, undefined, options.routeTtlMs),
          );
        },
        request: (record, conn) => this.requestDone(record, conn),
        counted: (counts) => this.count(counts),
        lines: (lines) => this.options.accessLog.writeLines(lines),
        handBack: (socket, conn) => {
          // Still the same connection for the tracker: counted until this socket closes, and
          // ended through it at the drain deadline.
          if (conn.taken) conn.release = options.splice?.()?.hold(conn.taken, () => socket.destroy()) ?? conn.release;
          socket.once('close', conn.release);
          options.serve(socket, conn.ctx, conn.http2);
        },
        closed: (conn) => conn.release(),
        batchDone: () => this.flushCounts(),
      },
    );
  }

  /** Requests served, connections handed back and connections held now. */
  get stats(): { served: number; handedBack: number; open: number } {
    return { served: this.native.served, handedBack: this.native.handedBack, open: this.native.size };
  }

  /**
   * Takes a sidecar HTTP/1.x connection, or a prior-knowledge HTTP/2 one (`http2`); false when
   * the addon could not (serve it on the JS path).
   */
  take(socket: Socket, ctx: ConnectionContext, http2 = false): boolean {
    const conn: FastConnection = {
      ctx,
      http2,
      release: () => {},
      local: formatHostPort(ctx.originalDst.address, ctx.originalDst.port),
      remote: formatHostPort(ctx.downstreamRemote.address, ctx.downstreamRemote.port),
    };
    const id = this.native.take(socket, ctx.originalDst.port, conn, http2, conn);
    if (id === undefined) return false;
    // The connection outlives its Node socket (destroyed by take()): the tracker keeps
    // counting it until the fast path closes or hands it back.
    conn.taken = socket;
    conn.release = this.options.splice?.()?.hold(socket, () => this.native.abort(id)) ?? (() => {});
    return true;
  }

  /** The routes learnt no longer hold (the configuration was reloaded). */
  routesChanged(): void {
    this.native.clearRoutes();
  }

  /** Closes idle keep-alive connections (draining). */
  closeIdle(): void {
    this.native.closeIdle();
  }

  /** A request the fast path served: its log line, as http-proxy.ts closed() writes it, and its counts. */
  private requestDone(r: FastRequestRecord, conn: FastConnection): void {
    const log: AccessLogEntry = {
      startTime: new Date(r.startMs),
      method: r.method,
      path: r.path,
      protocol: conn.http2 ? 'HTTP/2' : 'HTTP/1.1',
      responseCode: r.code,
      responseFlags: r.flags,
      bytesReceived: r.bytesReceived,
      bytesSent: r.bytesSent,
      durationMs: r.durationMs,
      userAgent: r.userAgent,
      xForwardedFor: r.forwardedFor,
      requestId: r.requestId,
      authority: r.authority,
      upstreamHost: r.upstreamHost,
      upstreamCluster: r.cluster,
      upstreamLocalAddress: r.upstreamLocal,
      downstreamLocalAddress: conn.local,
      downstreamRemoteAddress: conn.remote,
    };
    if (r.upstreamServiceMs !== undefined) log.upstreamServiceTimeMs = r.upstreamServiceMs;
    this.options.accessLog.write(log);
    this.count({
      cluster: r.cluster,
      code: r.code,
      requests: 1,
      bytesReceived: r.bytesReceived,
      bytesSent: r.bytesSent,
      upstreamConnections: r.upstreamConnections,
      connectFailures: r.connectFailures,
      retries: r.retries,
      retryLimitExceeded: r.flags.includes('URX') ? 1 : 0,
      retryAbandoned: r.retryAbandoned ? 1 : 0,
    });
  }

  /**
   * Requests' counts, added once per delivery (flushCounts()): each counter increment costs a
   * label lookup, which per request was a good part of the fast path's JS time.
   */
  private count(r: FastRequestCounts): void {
    let c = this.counts.get(r.cluster);
    if (!c) this.counts.set(r.cluster, (c = { codes: new Map(), bytesIn: 0, bytesOut: 0, connections: 0, failures: 0, retries: 0, retryLimitExceeded: 0, retryAbandoned: 0 }));
    c.codes.set(r.code, (c.codes.get(r.code) ?? 0) + r.requests);
    c.bytesIn += r.bytesReceived;
    c.bytesOut += r.bytesSent;
    c.connections += r.upstreamConnections;
    c.failures += r.connectFailures;
    c.retries += r.retries;
    c.retryLimitExceeded += r.retryLimitExceeded;
    c.retryAbandoned += r.retryAbandoned;
  }

  /** The same counters the JS path increments per request (http-proxy.ts forward(), closed()). */
  private flushCounts(): void {
    const metrics = this.options.metrics;
    for (const [cluster, c] of this.counts) {
      for (const [code, n] of c.codes) metrics.response(cluster, code, n);
      const labels = metrics.clusterLabels(cluster);
      if (c.bytesIn > 0) metrics.bytesSent.inc(labels, c.bytesIn);
      if (c.bytesOut > 0) metrics.bytesReceived.inc(labels, c.bytesOut);
      if (c.connections > 0) metrics.upstreamConnections.inc(labels, c.connections);
      if (c.failures > 0) metrics.upstreamConnectFailures.inc(labels, c.failures);
      if (c.retries > 0) metrics.retries.inc(labels, c.retries);
      if (c.retryLimitExceeded > 0) metrics.retryLimitExceeded.inc(labels, c.retryLimitExceeded);
      if (c.retryAbandoned > 0) metrics.retryAbandoned.inc(labels, c.retryAbandoned);
    }
    this.counts.clear();
  }
}
