/**
 * What to do with one outbound connection, decided from its original destination and what
 * its first bytes said — the job Envoy's outbound listeners, filter chains and the
 * Passthrough/BlackHole clusters do for a sidecar. Pure: the Registry is the only input state.
 */
import { MESH_GATEWAY, type Destination } from './istio-types.js';
import { isHttp, type Registry } from './registry.js';
import { selectTcpRoute, selectTlsRoute, pickDestination, type ConnectionFacts } from './routes.js';
import type { Sniffed } from './sniff.js';
import { MAX_PORT } from '../net/port.js';

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
 * The ports on which a connection passes through whatever its bytes say, as one flag per port
 * number (1: it does): ALLOW_ANY, no VirtualService (its routes may match any host), and no
 * ServiceEntry declares the port (nothing else could claim the connection: hosts, HTTP
 * services and addresses all come with their entry's ports). The upstream connect then need
 * not wait for the client to speak (server-first protocols and connection setup latency both
 * gain).
 *
 * This is the one statement of that rule: the outbound handler asks passesThroughUnseen(); the
 * splice relay, which decides on its own thread without calling into JavaScript, gets this
 * array as plain data. Shared per registry: read it, never write to it.
 */
export function unseenPassthroughPorts(registry: Registry): Uint8Array {
  let ports = unseenPortsByRegistry.get(registry);
  if (ports) return ports;
  ports = new Uint8Array(MAX_PORT + 1);
  if (registry.mode === 'ALLOW_ANY' && registry.config.virtualServices.length === 0) {
    ports.fill(1);
    for (const port of registry.servicePorts()) ports[port] = 0;
  }
  unseenPortsByRegistry.set(registry, ports);
  return ports;
}

// A registry never changes (a reload builds a new one), so its ports are worked out once.
const unseenPortsByRegistry = new WeakMap<Registry, Uint8Array>();

/** True when a connection to `port` passes through whatever its bytes say (see unseenPassthroughPorts). */
export function passesThroughUnseen(registry: Registry, port: number): boolean {
  return unseenPassthroughPorts(registry)[port] === 1;
}

/** True when the decision can be made from the address alone (no need to wait for bytes). */
export function needsSniffing(registry: Registry, address: string, port: number): boolean {
  const byAddress = registry.byAddress(address, port);
  return !(byAddress && byAddress.port.protocol === 'TCP' && !registry.virtualService(byAddress.host));
}

/**
 * Classifies a connection to `address:port` (from `source`, the client's address, which
 * VirtualService tcp `sourceSubnet` matches) whose first bytes were `sniffed`.
 */
export function classifyOutbound(
  registry: Registry,
  dst: { address: string; port: number; source?: string },
  sniffed: Sniffed,
  random: () => number = Math.random,
): OutboundDecision {
  const port = dst.port;
  const conn: ConnectionFacts = { port, gateway: MESH_GATEWAY, destination: dst.address, source: dst.source ?? '' };
  const sni = sniffed.kind === 'tls' ? sniffed.sni : undefined;
  const httpHost = sniffed.kind === 'http' ? sniffed.host : undefined;

  // 1. ServiceEntry `addresses` claim the destination outright, whatever the bytes say.
  const byAddress = registry.byAddress(dst.address, port);
  if (byAddress) {
    if (isHttp(byAddress.port.protocol) && sniffed.kind === 'http') return { action: 'http' };
    const routed = sni ? tlsRoute(registry, sni, conn, random) : tcpRoute(registry, byAddress.host, conn, random);
    return routed ?? { action: 'relay', destination: { host: byAddress.host, port }, ...(sni ? { requestedName: sni } : {}) };
  }

  // 2. TLS: the SNI picks a VirtualService tls route or a TLS/HTTPS ServiceEntry port.
  if (sni) {
    const routed = tlsRoute(registry, sni, conn, random);
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
  //    Its VirtualService tcp routes apply as on an address's (Envoy: the 0.0.0.0:port listener).
  const tcp = registry.tcpServiceOnPort(port);
  if (tcp) return tcpRoute(registry, tcp.host, conn, random) ?? { action: 'relay', destination: { host: tcp.host, port } };

  // 5. Not in the registry.
  if (registry.mode === 'ALLOW_ANY') return { action: 'passthrough' };
  // Plain HTTP gets Envoy's 502 from the HTTP layer; anything else is closed.
  return sniffed.kind === 'http' ? { action: 'http' } : { action: 'refuse' };
}

function tlsRoute(registry: Registry, sni: string, conn: ConnectionFacts, random: () => number): OutboundDecision | undefined {
  const vs = registry.virtualService(sni, MESH_GATEWAY);
  const route = vs && selectTlsRoute(vs, { ...conn, sni });
  return route ? { action: 'relay', destination: pickDestination(route.route, random), requestedName: sni } : undefined;
}

function tcpRoute(registry: Registry, host: string, conn: ConnectionFacts, random: () => number): OutboundDecision | undefined {
  const vs = registry.virtualService(host, MESH_GATEWAY);
  const route = vs && selectTcpRoute(vs, conn);
  return route ? { action: 'relay', destination: pickDestination(route.route, random) } : undefined;
}
