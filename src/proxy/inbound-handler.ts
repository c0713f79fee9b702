/**
 * The inbound listener's per-connection flow (port 15006): pass the connection through to the
 * workload's port, as Envoy's inbound passthrough cluster does. With REDIRECT the original
 * destination comes from conntrack; with TPROXY the socket's local address already is it.
 * The upstream connection is bound to 127.0.0.6 (::6 for IPv6), the source istio's rules
 * return early for, so it is not redirected back to us.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { unmapIPv4 } from './address-format.js';
import type { Endpoint } from './original-destination.linux.js';
import { refuseTcp, relayTcp, type TcpSessionDeps } from './tcp-session.js';

/** Istio's inbound passthrough source addresses. */
export const INBOUND_PASSTHROUGH_SOURCE = { 4: '127.0.0.6', 6: '::6' } as const;

export interface InboundDeps extends TcpSessionDeps {
  log: Logger;
  interceptionMode: 'REDIRECT' | 'TPROXY';
  listenerPort: number;
  originalDestination: (socket: Socket) => Endpoint | undefined;
}

/** Serves one accepted inbound connection. */
export function handleInbound(deps: InboundDeps, socket: Socket): Promise<void> | void {
  const startTime = new Date();
  const t0 = performance.now();
  socket.on('error', () => {});
  const local = { address: unmapIPv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
  let dst: Endpoint | undefined;
  try {
    dst = deps.interceptionMode === 'TPROXY' ? local : deps.originalDestination(socket);
  } catch (err) {
    deps.log.warn({ err }, 'cannot read the original destination; closing the connection');
  }
  const info = {
    startTime,
    t0,
    downstreamLocal: dst ?? local,
    downstreamRemote: { address: unmapIPv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
  };
  if (!dst || dst.port === deps.listenerPort) {
    refuseTcp(deps, socket, info, undefined, 'NR');
    return;
  }
  const v6 = dst.address.includes(':');
  return relayTcp(
    deps,
    socket,
    {
      ...dst,
      cluster: v6 ? 'InboundPassthroughClusterIpv6' : 'InboundPassthroughClusterIpv4',
      localAddress: INBOUND_PASSTHROUGH_SOURCE[v6 ? 6 : 4],
    },
    info,
  );
}
