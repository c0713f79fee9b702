/**
 * Which authorities the native HTTP/1.1 fast path (native/src/http_fast_path/) may serve, and
 * what it needs to serve them, as plain data. The fast path asks on the first request for a
 * (listener port, authority) it has no answer for; the answer is computed here with the same
 * routing the JS path uses (routeRequest) and holds for a while (the DNS refresh period) or
 * until the configuration changes.
 *
 * A route is eligible only when everything the JS path would do for any request on it is
 * expressible in that data: a ServiceEntry HTTP, HTTP2 or GRPC port (HTTP/1.1 upstream, or
 * HTTP/2 for HTTP2 and GRPC, which the fast path speaks for h2c clients only), a resolution other
 * than NONE (NONE forwards to each connection's own original destination), at most one
 * endpoint resolving to one address (the JS path round-robins per request), no DestinationRule traffic policy, and
 * either no VirtualService or one with a single catch-all route to a single destination, with
 * no fault, rewrite, redirect, direct response, header changes or per-try timeout. Everything
 * else stays on the JS path.
 */
import { isIP } from 'node:net';
import { formatHostPort } from './address-format.js';
import type { ConnectionContext } from './connection-context.js';
import { stripPort } from './http-request-head.js';
import { routeRequest, type RoutingDeps } from './http-routing.js';
import { GRPC_CONDITIONS } from './http-retry.js';
import { MESH_GATEWAY, type RetryPolicy, type VirtualService } from './istio-types.js';
import { isHttp } from './registry.js';

/** The retry numbers of a fast route (RetryPolicy as booleans and lists). */
export interface FastRetry {
  retries: number;
  backoffBaseMs: number;
  on5xx: boolean;
  onGatewayError: boolean;
  onReset: boolean;
  onConnectFailure: boolean;
  onRetriable4xx: boolean;
  onStatusCodes: boolean;
  onRefusedStream: boolean;
  statusCodes: number[];
  grpcStatuses: number[];
}

/** What the fast path needs for one authority (see native fast_path.h Route). */
export interface FastRoute {
  address: string;
  port: number;
  /** The upstream as the log prints it. */
  upstreamHost: string;
  cluster: string;
  decorator: string;
  /** 0: no route timeout. */
  timeoutMs: number;
  /** The upstream speaks HTTP/2 (its ServiceEntry port says HTTP2 or GRPC): served for h2c clients only. */
  http2: boolean;
  retry?: FastRetry;
}

export function fastRetry(p: RetryPolicy): FastRetry {
  const on = (c: string) => (p.on as readonly string[]).includes(c);
  return {
    retries: p.retries,
    backoffBaseMs: p.backoffBaseMs,
    on5xx: on('5xx'),
    onGatewayError: on('gateway-error'),
    onReset: on('reset'),
    onConnectFailure: on('connect-failure'),
    onRetriable4xx: on('retriable-4xx'),
    onStatusCodes: on('retriable-status-codes'),
    onRefusedStream: on('refused-stream'),
    statusCodes: [...p.statusCodes],
    grpcStatuses: Object.entries(GRPC_CONDITIONS).filter(([c]) => on(c)).map(([, s]) => s!),
  };
}

/** A VirtualService whose every request takes the same plain route. */
function isPlainVirtualService(vs: VirtualService): boolean {
  if (vs.http.length !== 1) return false;
  const r = vs.http[0]!;
  return (
    r.match.length === 0 &&
    r.route.length === 1 &&
    r.route[0]!.headers === undefined &&
    r.fault === undefined &&
    r.rewrite === undefined &&
    r.headers === undefined &&
    r.redirect === undefined &&
    r.directResponse === undefined &&
    (r.retries == null || r.retries.perTryTimeoutMs === undefined) &&
    Object.keys(r).every((k) => ['name', 'match', 'route', 'timeoutMs', 'retries', 'fault', 'rewrite', 'headers', 'redirect', 'directResponse'].includes(k))
  );
}

/**
 * The fast route for requests with `authority` on listener port `port` (outbound, mesh), or
 * undefined when they must take the JS path.
 */
export async function compileFastRoute(deps: RoutingDeps, port: number, authority: string): Promise<FastRoute | undefined> {
  const registry = deps.registry();
  const host = stripPort(authority);
  const binding = registry.byHost(host, port);
  if (!binding || !isHttp(binding.port.protocol)) return undefined;
  const vs = registry.virtualService(host, MESH_GATEWAY);
  if (vs && !isPlainVirtualService(vs)) return undefined;
  const destinationHost = vs ? vs.http[0]!.route[0]!.destination.host : binding.host;
  const entry = registry.byHost(destinationHost, vs?.http[0]!.route[0]!.destination.port ?? port)?.entry ?? registry.entryForHost(destinationHost);
  if (!entry || entry.resolution === 'NONE' || entry.endpoints.length > 1) return undefined;
  // A name with several addresses is round-robined per request by the JS path: not expressible.
  const resolvedName = entry.endpoints[0]?.address ?? destinationHost;
  if ((await deps.resolver.addressCount(resolvedName)) !== 1) return undefined;
  // The original destination is never read for such a route (byHost matched, resolution is not NONE).
  const ctx: ConnectionContext = { originalDst: { address: '0.0.0.0', port }, downstreamRemote: { address: '0.0.0.0', port: 0 }, gateway: 'mesh' };
  const decision = await routeRequest(deps, ctx, { method: 'GET', path: '/', authority, headers: {}, rawHeaders: [] }, false).catch(() => undefined);
  if (!decision || decision.kind !== 'forward') return undefined;
  const up = decision.upstream;
  if (!decision.external || up.policy || decision.requestHeaders || decision.responseHeaders || decision.flags) return undefined;
  if (decision.authority !== authority || decision.path !== '/' || isIP(up.address) === 0) return undefined;
  const route: FastRoute = {
    address: up.address,
    port: up.port,
    upstreamHost: formatHostPort(up.address, up.port),
    cluster: up.cluster,
    decorator: decision.decorator ?? '',
    timeoutMs: decision.timeoutMs ?? 0,
    http2: decision.http2,
  };
  if (decision.retry) route.retry = fastRetry(decision.retry);
  return route;
}
