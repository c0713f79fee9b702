/**
 * VirtualService route selection, as Envoy applies it: the first http/tls/tcp route whose
 * match list matches (an empty list matches everything; blocks are OR-ed, the fields of one
 * block AND-ed), then a weighted pick among its destinations. HTTP matchers follow Envoy's
 * route matching as Istio configures it (header values joined by ",", regex = RE2 full match).
 */
import { cidrContains, type Cidr } from '../net/cidr.js';
import { hostMatches } from './host-table.js';
import { fullMatchRegex } from './re2-match.js';
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
  /** The request target as sent, query string included. */
  path: string;
  authority: string;
  method: string;
  /** `http` on every listener today: HTTP is only seen in cleartext. */
  scheme: string;
  port: number;
  gateway: string;
  /** Node's `rawHeaders`: name, value, name, value… (repeated names kept apart). */
  rawHeaders: readonly string[];
}

function stringMatches(m: StringMatch, value: string, ignoreCase = false): boolean {
  if (m.exact !== undefined) return ignoreCase ? value.toLowerCase() === m.exact.toLowerCase() : value === m.exact;
  if (m.prefix !== undefined) return ignoreCase ? value.toLowerCase().startsWith(m.prefix.toLowerCase()) : value.startsWith(m.prefix);
  if (m.regex !== undefined) return fullMatchRegex(m.regex).test(value);
  return true;
}

function gatewayMatches(gateways: string[] | undefined, gateway: string): boolean {
  return gateways === undefined || gateways.includes(gateway);
}

/** All values of header `name` joined by ",", as Envoy's getAllOfHeaderAsString; undefined if absent. */
function headerValue(rawHeaders: readonly string[], name: string): string | undefined {
  let joined: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== name) continue;
    joined = joined === undefined ? rawHeaders[i + 1]! : `${joined},${rawHeaders[i + 1]!}`;
  }
  return joined;
}

/** The first value of query parameter `name`, percent-decoded, as Envoy's QueryParameterMatcher reads it. */
function queryValue(query: string, name: string): string | undefined {
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const key = decode(eq === -1 ? pair : pair.slice(0, eq));
    if (key === name) return eq === -1 ? '' : decode(pair.slice(eq + 1));
  }
  return undefined;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function httpMatchMatches(m: HttpMatch, req: HttpRequestFacts): boolean {
  // Istio matches uri against the path without the query string.
  const q = req.path.indexOf('?');
  const path = q === -1 ? req.path : req.path.slice(0, q);
  // Envoy's case_sensitive: false covers exact and prefix path matches, not regex.
  if (m.uri && !stringMatches(m.uri, path, m.ignoreUriCase === true)) return false;
  if (m.authority && !stringMatches(m.authority, req.authority)) return false;
  if (m.method && !stringMatches(m.method, req.method)) return false;
  if (m.scheme && !stringMatches(m.scheme, req.scheme)) return false;
  if (m.port !== undefined && m.port !== req.port) return false;
  for (const h of m.headers ?? []) {
    const value = headerValue(req.rawHeaders, h.name);
    if (value === undefined || (h.match && !stringMatches(h.match, value))) return false;
  }
  for (const h of m.withoutHeaders ?? []) {
    const value = headerValue(req.rawHeaders, h.name);
    // Istio sets invert_match, plus treat_missing_header_as_empty unless the match is a presence
    // check: an absent header holds for `{}` and counts as "" otherwise.
    if (!h.match) {
      if (value !== undefined) return false;
    } else if (stringMatches(h.match, value ?? '')) {
      return false;
    }
  }
  const query = q === -1 ? '' : req.path.slice(q + 1);
  for (const p of m.queryParams ?? []) {
    const value = queryValue(query, p.name);
    if (value === undefined || (p.match && !stringMatches(p.match, value))) return false;
  }
  return gatewayMatches(m.gateways, req.gateway);
}

/** The first HTTP route of `vs` matching the request, if any. */
export function selectHttpRoute(vs: VirtualService, req: HttpRequestFacts): HttpRoute | undefined {
  return selectHttpRouteMatch(vs, req)?.route;
}

/**
 * The first HTTP route of `vs` matching the request and the match block that matched it
 * (undefined for a route without blocks): `rewrite.uri` replaces what that block's uri matched.
 */
export function selectHttpRouteMatch(vs: VirtualService, req: HttpRequestFacts): { route: HttpRoute; match?: HttpMatch } | undefined {
  for (const route of vs.http) {
    if (route.match.length === 0) return { route };
    const match = route.match.find((m) => httpMatchMatches(m, req));
    if (match) return { route, match };
  }
  return undefined;
}

/** What an L4 (TLS or TCP) match looks at: the connection's addresses, port and gateway. */
export interface ConnectionFacts {
  port: number;
  gateway: string;
  /** The original destination address (a gateway's own address for gateway connections). */
  destination: string;
  /** The client's address. */
  source: string;
}

/** Istio's destinationSubnets: absent matches any destination, else one must hold it. */
function destinationMatches(subnets: readonly Cidr[] | undefined, destination: string): boolean {
  return subnets === undefined || subnets.some((c) => cidrContains(c, destination));
}

/** The first TLS route of `vs` matching SNI, port, gateway and destination, if any. */
export function selectTlsRoute(vs: VirtualService, facts: ConnectionFacts & { sni: string }): TlsRoute | undefined {
  return vs.tls.find((r) =>
    r.match.some(
      (m) =>
        m.sniHosts.some((h) => hostMatches(h, facts.sni)) &&
        (m.port === undefined || m.port === facts.port) &&
        gatewayMatches(m.gateways, facts.gateway) &&
        destinationMatches(m.destinationSubnets, facts.destination),
    ),
  );
}

/** The first TCP route of `vs` matching port, gateway, destination and source, if any. */
export function selectTcpRoute(vs: VirtualService, facts: ConnectionFacts): TcpRoute | undefined {
  return vs.tcp.find(
    (r) =>
      r.match.length === 0 ||
      r.match.some(
        (m) =>
          (m.port === undefined || m.port === facts.port) &&
          gatewayMatches(m.gateways, facts.gateway) &&
          destinationMatches(m.destinationSubnets, facts.destination) &&
          (m.sourceSubnet === undefined || cidrContains(m.sourceSubnet, facts.source)),
      ),
  );
}

/** Weighted choice among destinations; `random` in [0,1) is injectable for tests. */
export function pickDestination(routes: RouteDestination[], random: () => number = Math.random): Destination {
  return pickRouteDestination(routes, random).destination;
}

/** The same, returning the whole route destination (its `headers` too). */
export function pickRouteDestination(routes: RouteDestination[], random: () => number = Math.random): RouteDestination {
  const total = routes.reduce((sum, r) => sum + r.weight, 0);
  let point = random() * total;
  for (const r of routes) {
    if (point < r.weight) return r;
    point -= r.weight;
  }
  return routes[routes.length - 1]!;
}
