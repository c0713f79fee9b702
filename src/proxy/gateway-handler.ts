/**
 * Gateway mode (Istio's egress gateway for external services): a listener per Gateway server
 * port routes HTTP by Host through the VirtualService http routes bound to that gateway, and
 * TLS PASSTHROUGH by SNI through the tls routes, relaying without terminating TLS. HTTPS
 * servers with tls.mode SIMPLE terminate TLS (gateway-tls.ts) and route the HTTP inside by Host.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { unmapIPv4 } from './address-format.js';
import { terminateTls } from './gateway-tls.js';
import { hostMatches } from './host-table.js';
import type { HttpProxy } from './http-proxy.js';
import type { GatewayServer } from './istio-types.js';
import { isHttp, type Registry } from './registry.js';
import { pickDestination, selectTlsRoute } from './routes.js';
import { sniff, sniffWait } from './sniff.js';
import { refuseTcp, relayTcp, type TcpSessionDeps } from './tcp-session.js';
import { NoUpstreamError, type UpstreamResolver } from './upstream-resolver.js';

export interface GatewayDeps extends TcpSessionDeps {
  registry: () => Registry;
  resolver: UpstreamResolver;
  http: HttpProxy;
  log: Logger;
  sniffTimeoutMs: number;
}

/** Every (gateway, server) pair listening on `port` in this registry. */
export function serversOnPort(registry: Registry, port: number): { gateway: string; server: GatewayServer }[] {
  return registry.gateways.flatMap((g) =>
    g.servers.filter((s) => s.port.number === port).map((server) => ({ gateway: g.name, server })),
  );
}

/** The distinct ports the configuration's Gateway servers listen on. */
export function gatewayPorts(registry: Registry): number[] {
  return [...new Set(registry.gateways.flatMap((g) => g.servers.map((s) => s.port.number)))].sort((a, b) => a - b);
}

/** Serves one connection accepted on a gateway port. */
export async function handleGateway(deps: GatewayDeps, socket: Socket, port: number): Promise<void> {
  const startTime = new Date();
  const t0 = performance.now();
  socket.on('error', () => {});
  const registry = deps.registry();
  const servers = serversOnPort(registry, port);
  const local = { address: unmapIPv4(socket.localAddress ?? ''), port: socket.localPort ?? port };
  const remote = { address: unmapIPv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
  const info = { startTime, t0, downstreamLocal: local, downstreamRemote: remote } as Parameters<typeof relayTcp>[3];
  const sniffed = await sniff(socket, sniffWait(deps));
  if (sniffed.error) {
    socket.destroy();
    return;
  }
  const s = sniffed.sniffed;
  if (s.kind === 'http' && !sniffed.ended && servers.some((x) => isHttp(x.server.port.protocol))) {
    deps.http.handle(socket, { originalDst: local, downstreamRemote: remote, gateway: { servers } }, s.http2 === true);
    return;
  }
  if (s.kind === 'tls' && !sniffed.ended) {
    // tls.mode SIMPLE: terminate, then route the HTTP inside like any gateway HTTP request.
    const sni = s.sni ?? '';
    const terminating = servers.find((x) => x.server.tlsMode === 'SIMPLE' && x.server.hosts.some((h) => h === '*' || (sni !== '' && hostMatches(h, sni))));
    const context = terminating && registry.gatewayTls.get(terminating.server);
    if (context) {
      const tls = terminateTls(socket, context);
      tls.once('secure', () => deps.http.handle(tls, { originalDst: local, downstreamRemote: remote, gateway: { servers } }));
      return;
    }
  }
  if (s.kind === 'tls' && s.sni) {
    const sni = s.sni;
    info.sni = sni;
    const match = servers.find(
      (x) => x.server.tlsMode === 'PASSTHROUGH' && x.server.hosts.some((h) => hostMatches(h, sni)),
    );
    const vs = match && registry.virtualService(sni, match.gateway);
    const route = vs && match && selectTlsRoute(vs, { sni, port, gateway: match.gateway, destination: local.address, source: remote.address });
    if (route) {
      try {
        const upstream = await deps.resolver.resolve(registry, pickDestination(route.route), local, sni);
        return relayTcp(deps, socket, upstream, info, { head: sniffed.head, ended: sniffed.ended });
      } catch (err) {
        if (!(err instanceof NoUpstreamError)) throw err;
        refuseTcp(deps, socket, info, err.cluster, err.flag);
        return;
      }
    }
  }
  // Nothing on this gateway port routes this connection (Envoy: no filter chain match).
  refuseTcp(deps, socket, info, undefined, 'NR');
}
