/**
 * VirtualService route selection, as Envoy applies it: the first http/tls/tcp route whose
 * match list matches (an empty list matches everything), then a weighted pick among its
 * destinations.
 */
import { hostMatches } from './host-table.js';
import type {
  Destination,
  HttpMatch,
  HttpRoute,
  RouteDestination,
  StringMatch,
  TcpRoute,
  TlsRoute,
  VirtualService,
} from './istio-types.js';

/** What an HTTP request offers to route matching. */
export interface HttpRequestFacts {
  path: string;
  authority: string;
  method: string;
  port: number;
  gateway: string;
}

function stringMatches(m: StringMatch, value: string): boolean {
  if (m.exact !== undefined && value !== m.exact) return false;
  if (m.prefix !== undefined && !value.startsWith(m.prefix)) return false;
  if (m.regex !== undefined && !new RegExp(`^(?:${m.regex})$`).test(value)) return false;
  return true;
}

function gatewayMatches(gateways: string[] | undefined, gateway: string): boolean {
  return gateways === undefined || gateways.includes(gateway);
}

function httpMatchMatches(m: HttpMatch, req: HttpRequestFacts): boolean {
  // Istio matches uri against the path without the query string.
  const path = req.path.split('?')[0]!;
  if (m.uri && !stringMatches(m.uri, path)) return false;
  if (m.authority && !stringMatches(m.authority, req.authority)) return false;
  if (m.method && !stringMatches(m.method, req.method)) return false;
  if (m.port !== undefined && m.port !== req.port) return false;
  return gatewayMatches(m.gateways, req.gateway);
}

/** The first HTTP route of `vs` matching the request, if any. */
export function selectHttpRoute(vs: VirtualService, req: HttpRequestFacts): HttpRoute | undefined {
  return vs.http.find((r) => r.match.length === 0 || r.match.some((m) => httpMatchMatches(m, req)));
}

/** The first TLS route of `vs` matching SNI, port and gateway, if any. */
export function selectTlsRoute(
  vs: VirtualService,
  facts: { sni: string; port: number; gateway: string },
): TlsRoute | undefined {
  return vs.tls.find((r) =>
    r.match.some(
      (m) =>
        m.sniHosts.some((h) => hostMatches(h, facts.sni)) &&
        (m.port === undefined || m.port === facts.port) &&
        gatewayMatches(m.gateways, facts.gateway),
    ),
  );
}

/** The first TCP route of `vs` matching port and gateway, if any. */
export function selectTcpRoute(vs: VirtualService, facts: { port: number; gateway: string }): TcpRoute | undefined {
  return vs.tcp.find(
    (r) =>
      r.match.length === 0 ||
      r.match.some((m) => (m.port === undefined || m.port === facts.port) && gatewayMatches(m.gateways, facts.gateway)),
  );
}

/** Weighted choice among destinations; `random` in [0,1) is injectable for tests. */
export function pickDestination(routes: RouteDestination[], random: () => number = Math.random): Destination {
  const total = routes.reduce((sum, r) => sum + r.weight, 0);
  let point = random() * total;
  for (const r of routes) {
    if (point < r.weight) return r.destination;
    point -= r.weight;
  }
  return routes[routes.length - 1]!.destination;
}
