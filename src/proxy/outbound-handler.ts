/**
 * The outbound listener's per-connection flow (port 15001, fed by the REDIRECT rules):
 * original destination → sniff (only when the address alone cannot decide) → classify →
 * relay, proxy at HTTP level, pass through, or refuse.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { unmapIPv4 } from './address-format.js';
import { classifyOutbound, needsSniffing, passesThroughUnseen } from './classify.js';
import type { HttpProxy } from './http-proxy.js';
import type { Endpoint } from './original-destination.linux.js';
import type { Registry } from './registry.js';
import { sniff, sniffWait, type SniffResult } from './sniff.js';
import { MAX_CLIENT_HELLO } from './tls-client-hello.js';
import type { DetachedAdmission } from './connection-tracker.js';
import type { AcceptedConnection } from './splice-relay.linux.js';
import { connectTcp, refuseTcp, relayTcp, type TcpSessionDeps, type TcpSessionInfo } from './tcp-session.js';
import { NoUpstreamError, type UpstreamResolver } from './upstream-resolver.js';

export interface OutboundDeps extends TcpSessionDeps {
  registry: () => Registry;
  resolver: UpstreamResolver;
  http: HttpProxy;
  log: Logger;
  /**
   * How long to wait for a client's first bytes where only they can decide; 0 waits as
   * Istio's protocol detection does by default (protocolDetectionTimeout 0s), bounded here by
   * the idle timeout, so a slow client is never refused for being slow.
   */
  sniffTimeoutMs: number;
  /** Finds the original destination (the native SO_ORIGINAL_DST in production). */
  originalDestination: (socket: Socket) => Endpoint | undefined;
}

/**
 * Serves one outbound connection the splice relay accepted on its own listener. The common
 * case — a destination whose address alone decides passthrough — never becomes a Node socket:
 * the relay connects and relays it. Anything that needs its bytes looked at (sniffing, HTTP,
 * refusal) is released into Node and takes the socket path below.
 */
export function handleAcceptedOutbound(
  deps: OutboundDeps,
  conn: AcceptedConnection,
  admission: DetachedAdmission,
): Promise<void> {
  const relay = deps.splice!.relay;
  const dst = conn.originalDst && { address: unmapIPv4(conn.originalDst.address), port: conn.originalDst.port };
  if (!wasRedirected(dst, conn.local)) {
    deps.log.debug({ remote: conn.peer.address }, 'connection was not redirected; closing');
    relay.closeAccepted(conn.id, false);
    admission.done();
    return Promise.resolve();
  }
  // The relay passed it through on its own (it has unseenPassthroughPorts), or we do.
  if (conn.passthrough || passesThroughUnseen(deps.registry(), dst.port)) {
    // Times come from the relay: its events reach us batched, a few milliseconds late.
    const info: TcpSessionInfo = {
      startTime: new Date(conn.acceptedAtMs),
      t0: performance.now(),
      downstreamLocal: dst,
      downstreamRemote: conn.peer,
      sniFromFirstBytes: true,
    };
    const session = conn.passthrough
      ? relay.adopt(conn.id)
      : relay.connect(conn.id, dst, {
          connectTimeoutMs: deps.connectTimeoutMs,
          idleTimeoutMs: deps.idleTimeoutMs,
          capture: MAX_CLIENT_HELLO,
        });
    return connectTcp(deps, session, { ...dst, cluster: 'PassthroughCluster' }, info, admission);
  }
  const socket = relay.release(conn.id);
  if (!socket) {
    admission.done();
    return Promise.resolve();
  }
  admission.attach(socket);
  return handleOutbound(deps, socket);
}

/** Serves one accepted outbound connection. Never throws: failures stay on this connection. */
export async function handleOutbound(deps: OutboundDeps, socket: Socket): Promise<void> {
  const startTime = new Date();
  const t0 = performance.now();
  socket.on('error', () => {});
  let dst: Endpoint | undefined;
  try {
    dst = deps.originalDestination(socket);
  } catch (err) {
    deps.log.warn({ err }, 'cannot read the original destination; closing the connection');
    socket.destroy();
    return;
  }
  const local = { address: unmapIPv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
  if (!wasRedirected(dst, local)) {
    deps.log.debug({ remote: socket.remoteAddress }, 'connection was not redirected; closing');
    socket.destroy();
    return;
  }
  const registry = deps.registry();
  const info: TcpSessionInfo = {
    startTime,
    t0,
    downstreamLocal: dst,
    downstreamRemote: { address: unmapIPv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
  };
  if (passesThroughUnseen(registry, dst.port)) {
    // Connect upstream at once; the SNI for the log line is read from the first bytes as they
    // flow by.
    info.sniFromFirstBytes = true;
    return relayTcp(deps, socket, { ...dst, cluster: 'PassthroughCluster' }, info);
  }
  let sniffed: SniffResult = { sniffed: { kind: 'none' }, head: Buffer.alloc(0), ended: false };
  if (needsSniffing(registry, dst.address, dst.port)) {
    sniffed = await sniff(socket, sniffWait(deps));
    if (sniffed.error) {
      socket.destroy();
      return;
    }
  }
  if (sniffed.sniffed.kind === 'tls' && sniffed.sniffed.sni) info.sni = sniffed.sniffed.sni;
  let decision = classifyOutbound(registry, { ...dst, source: info.downstreamRemote.address }, sniffed.sniffed);
  if (decision.action === 'http' && sniffed.ended) {
    // The client already sent its FIN: Node's HTTP server cannot take a finished stream, so
    // treat the bytes as TCP (rare: a one-shot request written with shutdown()).
    decision = registry.mode === 'ALLOW_ANY' ? { action: 'passthrough' } : { action: 'refuse' };
  }
  const head = { head: sniffed.head, ended: sniffed.ended };
  switch (decision.action) {
    case 'http':
      deps.http.handle(
        socket,
        { originalDst: dst, downstreamRemote: info.downstreamRemote, gateway: 'mesh' },
        sniffed.sniffed.kind === 'http' && sniffed.sniffed.http2 === true,
      );
      return;
    case 'passthrough':
      return relayTcp(deps, socket, { ...dst, cluster: 'PassthroughCluster' }, info, head);
    case 'refuse':
      refuseTcp(deps, socket, info, 'BlackHoleCluster', 'UH');
      return;
    case 'relay': {
      try {
        const upstream = await deps.resolver.resolve(registry, decision.destination, dst, decision.requestedName);
        return relayTcp(deps, socket, upstream, info, head);
      } catch (err) {
        if (!(err instanceof NoUpstreamError)) throw err;
        deps.log.debug({ cluster: err.cluster }, err.message);
        refuseTcp(deps, socket, info, err.cluster, err.flag);
        return;
      }
    }
  }
}

/**
 * False for a connection made straight to the listener: it has no original destination, or the
 * listener's own address as one. Serving it would connect back to ourselves.
 */
function wasRedirected(dst: Endpoint | undefined, local: Endpoint): dst is Endpoint {
  return dst !== undefined && !(dst.address === local.address && dst.port === local.port);
}

