/**
 * HTTP/2 connections to upstreams whose ServiceEntry port says HTTP2 or GRPC (Envoy's
 * http2_protocol_options on the cluster): one session per upstream address, shared by every
 * stream to it, replaced when it closes or fails. The connect is bounded by the connect timeout.
 */
import { connect, type ClientHttp2Session } from 'node:http2';
import { formatHostPort } from './address-format.js';
import type { ProxyMetrics } from './metrics.js';
import type { Upstream } from './upstream-resolver.js';

export class Http2Upstreams {
  private readonly sessions = new Map<string, ClientHttp2Session>();

  constructor(
    private readonly connectTimeoutMs: number,
    private readonly metrics: ProxyMetrics,
  ) {}

  /** The open session to `upstream`, or a new one (counted as an upstream connection). */
  session(upstream: Upstream): ClientHttp2Session {
    const key = formatHostPort(upstream.address, upstream.port);
    const open = this.sessions.get(key);
    if (open && !open.closed && !open.destroyed) return open;
    const session = connect(`http://${key}`);
    this.sessions.set(key, session);
    this.metrics.upstreamConnections.inc({ cluster_name: upstream.cluster });
    const timer = setTimeout(() => {
      session.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
    }, this.connectTimeoutMs);
    let connected = false;
    session.once('connect', () => {
      connected = true;
      clearTimeout(timer);
    });
    const forget = () => {
      clearTimeout(timer);
      if (this.sessions.get(key) === session) this.sessions.delete(key);
    };
    session.on('error', () => {
      if (!connected) this.metrics.upstreamConnectFailures.inc({ cluster_name: upstream.cluster });
      forget();
    });
    session.once('close', forget);
    session.once('goaway', forget);
    // An idle session must not keep the process (or a drain) waiting.
    session.setTimeout(60_000, () => session.close());
    return session;
  }

  closeAll(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}
