/**
 * One TCP/TLS connection from accept to close: connect upstream (bounded by the connect
 * timeout), relay, then write Envoy's "- - -" access log line and the cluster's counters.
 * Also logs refusals and failures in the same shape, so every accepted connection leaves
 * exactly one line.
 */
import { connect, type Socket } from 'node:net';
import type { AccessLog, AccessLogEntry } from './access-log.js';
import { formatHostPort } from './address-format.js';
import type { ProxyMetrics } from './metrics.js';
import { relay, type RelayResult } from './relay.js';
import type { DetachedAdmission } from './connection-tracker.js';
import type { SpliceRelay, SpliceRelaySession } from './splice-relay.linux.js';
import { MAX_CLIENT_HELLO, parseClientHello } from './tls-client-hello.js';

export interface TcpSessionDeps {
  accessLog: AccessLog;
  metrics: ProxyMetrics;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /**
   * The zero-copy relay and the connection tracker's hold (the relay outlives the Node
   * sockets). Absent: relay through Node streams (relay.ts).
   */
  splice?: { relay: SpliceRelay; hold(down: Socket, abort: () => void): () => void };
}

export interface TcpSessionInfo {
  startTime: Date;
  t0: number;
  downstreamLocal: { address: string; port: number };
  downstreamRemote: { address: string; port: number };
  sni?: string;
  /**
   * Read the SNI for the log line from the client's first bytes as they flow by (passthrough
   * without sniffing; a ClientHello split across segments leaves it "-").
   */
  sniFromFirstBytes?: boolean;
}

/** The log entry of a connection relayed to `upstream`, filled in as it goes. */
function upstreamEntry(info: TcpSessionInfo, upstream: { address: string; port: number; cluster: string }): AccessLogEntry {
  return {
    ...baseEntry(info),
    upstreamCluster: upstream.cluster,
    upstreamHost: formatHostPort(upstream.address, upstream.port),
  };
}

/**
 * The upstream has connected: counted active, unless the client left meanwhile, in which case
 * `up` is closed and the entry flagged DC. True when the relay may start.
 */
export function upstreamJoined(metrics: ProxyMetrics, cluster: { cluster_name: string }, entry: AccessLogEntry, down: Socket, up: Socket): boolean {
  metrics.upstreamActive.inc(cluster);
  if (!down.destroyed) return true;
  up.destroy();
  metrics.upstreamActive.dec(cluster);
  entry.responseFlags = 'DC';
  return false;
}

/**
 * Byte counters and log fields of a finished relay (the cluster's active gauge drops by one);
 * `sentBefore` counts bytes the client got before the relay began (an upgrade's response head).
 */
export function recordRelayEnd(metrics: ProxyMetrics, cluster: { cluster_name: string }, entry: AccessLogEntry, r: RelayResult, sentBefore = 0): void {
  metrics.upstreamActive.dec(cluster);
  metrics.bytesSent.inc(cluster, r.bytesReceived);
  metrics.bytesReceived.inc(cluster, r.bytesSent + sentBefore);
  entry.bytesReceived = r.bytesReceived;
  entry.bytesSent = r.bytesSent + sentBefore;
  entry.responseFlags = r.flag;
}

function baseEntry(info: TcpSessionInfo): AccessLogEntry {
  return {
    startTime: info.startTime,
    responseCode: 0,
    responseFlags: '-',
    bytesReceived: 0,
    bytesSent: 0,
    durationMs: 0,
    downstreamLocalAddress: formatHostPort(info.downstreamLocal.address, info.downstreamLocal.port),
    downstreamRemoteAddress: formatHostPort(info.downstreamRemote.address, info.downstreamRemote.port),
    requestedServerName: info.sni,
  };
}

/** Closes a connection we will not serve and logs it (BlackHoleCluster, NR, UH …). */
export function refuseTcp(
  deps: TcpSessionDeps,
  down: Socket,
  info: TcpSessionInfo,
  cluster: string | undefined,
  flag: string,
): void {
  const entry = { ...baseEntry(info), upstreamCluster: cluster, responseFlags: flag };
  const read0 = down.bytesRead;
  down.once('close', () => {
    entry.bytesReceived = down.bytesRead - read0;
    entry.durationMs = performance.now() - info.t0;
    deps.accessLog.write(entry);
  });
  // A plain close (FIN), as Envoy's BlackHoleCluster does: a TLS client sees the handshake
  // cut short (curl exit 35).
  down.destroy();
}

/** Connects to `upstream` and relays; resolves when both sides have closed and the line is logged. */
export function relayTcp(
  deps: TcpSessionDeps,
  down: Socket,
  upstream: { address: string; port: number; cluster: string; localAddress?: string },
  info: TcpSessionInfo,
  sniffed: { head: Buffer; ended: boolean } = { head: Buffer.alloc(0), ended: false },
): Promise<void> {
  const entry = upstreamEntry(info, upstream);
  const { metrics } = deps;
  const cluster = { cluster_name: upstream.cluster };
  return new Promise((resolve) => {
    const up = connect({
      host: upstream.address,
      port: upstream.port,
      allowHalfOpen: true,
      ...(upstream.localAddress ? { localAddress: upstream.localAddress } : {}),
    });
    // The splice relay takes `up` over right after it connects: Node must not read from it first.
    if (deps.splice) up.pause();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      // The SNI may have been read while relaying (passthrough without sniffing).
      entry.requestedServerName = info.sni;
      entry.durationMs = performance.now() - info.t0;
      deps.accessLog.write(entry);
      resolve();
    };
    // Until connected, a client going away cancels the attempt.
    const onDownClose = () => {
      up.destroy();
      entry.responseFlags = 'DC';
      finish();
    };
    down.once('close', onDownClose);
    down.on('error', () => {});
    up.setTimeout(deps.connectTimeoutMs, () => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })));
    up.once('error', (err: NodeJS.ErrnoException) => {
      if (up.connecting || !entry.upstreamLocalAddress) {
        metrics.upstreamConnectFailures.inc(cluster);
        entry.responseFlags = 'UF';
        down.off('close', onDownClose);
        // Refused upstream → reset the client too, so it sees what a direct connect would.
        if (err.code === 'ECONNREFUSED') down.resetAndDestroy();
        else down.destroy();
        down.once('close', finish);
        if (down.closed) finish();
      }
    });
    up.once('connect', () => {
      down.off('close', onDownClose);
      up.setTimeout(0);
      entry.upstreamLocalAddress = formatHostPort(up.localAddress, up.localPort);
      metrics.upstreamConnections.inc(cluster);
      if (!upstreamJoined(metrics, cluster, entry, down, up)) {
        finish();
        return;
      }
      void startRelay(deps, down, up, info, sniffed).then((r) => {
        recordRelayEnd(metrics, cluster, entry, r);
        finish();
      });
    });
  });
}

/**
 * Relays a connection the HTTP layer upgraded (WebSocket …) to its connected upstream; `head`
 * is what the client sent after its request head, put back on `down` (counted as received).
 * The caller logs; the result has the byte counts and how it ended.
 */
export function relayConnected(deps: TcpSessionDeps, down: Socket, up: Socket, head: Buffer): Promise<RelayResult> {
  return startRelay(deps, down, up, {}, { head, ended: false });
}

/** Relays a connected pair with the splice relay when there is one, else with Node streams. */
function startRelay(
  deps: TcpSessionDeps,
  down: Socket,
  up: Socket,
  info: Pick<TcpSessionInfo, 'sni' | 'sniFromFirstBytes'>,
  sniffed: { head: Buffer; ended: boolean },
): Promise<RelayResult> {
  const options = { idleTimeoutMs: deps.idleTimeoutMs, head: sniffed.head, downstreamEnded: sniffed.ended };
  if (!deps.splice) {
    if (info.sniFromFirstBytes) down.once('data', (chunk: Buffer) => readSni(info, chunk));
    return relay(down, up, options);
  }
  let abort = () => {};
  const release = deps.splice.hold(down, () => abort());
  const session = deps.splice.relay.start(down, up, { ...options, capture: info.sniFromFirstBytes ? MAX_CLIENT_HELLO : 0 });
  abort = session.abort;
  return session.done.then((r) => {
    release();
    if (r.firstBytes) readSni(info, r.firstBytes);
    return r;
  });
}

/**
 * relayTcp for a connection the splice relay accepted itself and connects upstream on its own
 * thread (`session`, from SpliceRelay.connect or adopt): this writes the log line and the
 * counters when it ends. The cluster's active gauge counts it from the connect attempt on.
 */
export function connectTcp(
  deps: TcpSessionDeps,
  session: SpliceRelaySession,
  upstream: { address: string; port: number; cluster: string },
  info: TcpSessionInfo,
  admission: DetachedAdmission,
): Promise<void> {
  const entry = upstreamEntry(info, upstream);
  const { metrics } = deps;
  const cluster = { cluster_name: upstream.cluster };
  metrics.upstreamActive.inc(cluster);
  admission.setAbort(session.abort);
  return session.done.then((r) => {
    admission.done();
    metrics[r.flag === 'UF' ? 'upstreamConnectFailures' : 'upstreamConnections'].inc(cluster);
    recordRelayEnd(metrics, cluster, entry, r);
    if (r.upstreamLocal) entry.upstreamLocalAddress = formatHostPort(r.upstreamLocal.address, r.upstreamLocal.port);
    if (r.firstBytes) readSni(info, r.firstBytes);
    entry.requestedServerName = info.sni;
    entry.durationMs = r.durationMs;
    deps.accessLog.write(entry);
  });
}

/** The TLS SNI in a connection's first bytes, for its log line. */
function readSni(info: Pick<TcpSessionInfo, 'sni'>, firstBytes: Buffer): void {
  const hello = parseClientHello(firstBytes);
  if (hello.kind === 'tls' && hello.sni) info.sni = hello.sni;
}
