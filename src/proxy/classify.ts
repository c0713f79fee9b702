/**
 * What to do with one outbound connection, decided from its original destination and what
 * its first bytes said — the job Envoy's outbound listeners, filter chains and the
 * Passthrough/BlackHole clusters do for a sidecar. Pure: the Registry is the only input state.
 */
import { MESH_GATEWAY, type Destination } from './istio-types.js';
import { isHttp, type Registry } from './registry.js';
import { selectTcpRoute, selectTlsRoute, pickDestination } from './routes.js';
import type { Sniffed } from './sniff.js';

export type OutboundDecision =
  /** Proxy at HTTP level; each request is routed on its own (Host, VirtualService). */
  | { action: 'http' }
  /** Relay bytes to a registry destination (TLS after SNI match, TCP by address or port). */
  | { action: 'relay'; destination: Destination; requestedName?: string }
  /** ALLOW_ANY and unknown: relay to the original destination (PassthroughCluster). */
  | { action: 'passthrough' }
  /** REGISTRY_ONLY and unknown: close (BlackHoleCluster). */
  | { action: 'refuse' };

/**
 * True when the connection passes through whatever its bytes say: ALLOW_ANY, and nothing in
 * the registry can claim this address or port. The upstream connect then need not wait for
 * the client to speak (server-first protocols and connection setup latency both gain).
 */
export function passesThroughUnseen(registry: Registry, address: string, port: number): boolean {
  return registry.mode === 'ALLOW_ANY' && !registry.portMayMatchByName(port) && !registry.byAddress(address, port);
}

/** True when the decision can be made from the address alone (no need to wait for bytes). */
export function needsSniffing(registry: Registry, address: string, port: number): boolean {
  const byAddress = registry.byAddress(address, port);
  return !(byAddress && byAddress.port.protocol === 'TCP' && !registry.virtualService(byAddress.host));
}

/** Classifies a connection to `address:port` whose first bytes were `sniffed`. */
export function classifyOutbound(
  registry: Registry,
  dst: { address: string; port: number },
  sniffed: Sniffed,
  random: () => number = Math.random,
): OutboundDecision {
  const port = dst.port;
  const sni = sniffed.kind === 'tls' ? sniffed.sni : undefined;
  const httpHost = sniffed.kind === 'http' ? sniffed.host : undefined;

  // 1. ServiceEntry `addresses` claim the destination outright, whatever the bytes say.
  const byAddress = registry.byAddress(dst.address, port);
  if (byAddress) {
    if (isHttp(byAddress.port.protocol) && sniffed.kind === 'http') return { action: 'http' };
    const routed = sni ? tlsRoute(registry, sni, port, random) : tcpRoute(registry, byAddress.host, port, random);
    return routed ?? { action: 'relay', destination: { host: byAddress.host, port }, ...(sni ? { requestedName: sni } : {}) };
  }

  // 2. TLS: the SNI picks a VirtualService tls route or a TLS/HTTPS ServiceEntry port.
  if (sni) {
    const routed = tlsRoute(registry, sni, port, random);
    if (routed) return routed;
    const byName = registry.byHost(sni, port);
    if (byName && !isHttp(byName.port.protocol)) {
      return { action: 'relay', destination: { host: byName.host, port }, requestedName: sni };
    }
  }

  // 3. HTTP on a port where the registry has HTTP services (Envoy has an HTTP listener there):
  //    routing, passthrough and refusal all happen per request.
  if (sniffed.kind === 'http') {
    if (registry.hasHttpPort(port) || (httpHost && registry.virtualService(httpHost)?.http.length)) return { action: 'http' };
  }

  // 4. An address-less TCP ServiceEntry owns its whole port.
  const tcp = registry.tcpServiceOnPort(port);
  if (tcp) return { action: 'relay', destination: { host: tcp.host, port } };

  // 5. Not in the registry.
  if (registry.mode === 'ALLOW_ANY') return { action: 'passthrough' };
  // Plain HTTP gets Envoy's 502 from the HTTP layer; anything else is closed.
  return sniffed.kind === 'http' ? { action: 'http' } : { action: 'refuse' };
}

function tlsRoute(registry: Registry, sni: string, port: number, random: () => number): OutboundDecision | undefined {
  const vs = registry.virtualService(sni, MESH_GATEWAY);
  const route = vs && selectTlsRoute(vs, { sni, port, gateway: MESH_GATEWAY });
  return route ? { action: 'relay', destination: pickDestination(route.route, random), requestedName: sni } : undefined;
}

function tcpRoute(registry: Registry, host: string, port: number, random: () => number): OutboundDecision | undefined {
  const vs = registry.virtualService(host, MESH_GATEWAY);
  const route = vs && selectTcpRoute(vs, { port, gateway: MESH_GATEWAY });
  return route ? { action: 'relay', destination: pickDestination(route.route, random) } : undefined;
}
