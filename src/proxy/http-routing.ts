/**
 * The per-request decision of the HTTP layer, shared by HTTP/1.x, upgrades and HTTP/2 streams:
 * which gateway server and VirtualService route a request takes, and so which upstream (or
 * which local reply Envoy would give: 404 NR, 502 block_all, 503 UH/NC). The one place that
 * calls routes.ts's route selection for HTTP.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AccessLogEntry } from './access-log.js';
import { formatHostPort } from './address-format.js';
import type { ConnectionContext } from './connection-context.js';
import { hostMatches } from './host-table.js';
import { stripPort } from './http-request-head.js';
import { FAULT_ABORT_BODY, faultFor } from './http-fault.js';
import { DEFAULT_RETRY_POLICY } from './http-retry.js';
import { applyHeaderOperations, mergeHeaderPolicies, redirectLocation, rewritePath } from './http-rewrite.js';
import {
  MESH_GATEWAY,
  type Destination,
  type HeaderOperations,
  type HeaderPolicy,
  type HttpMatch,
  type HttpRoute,
  type RetryPolicy,
} from './istio-types.js';
import { isHttp, type Registry } from './registry.js';
import { pickRouteDestination, selectHttpRouteMatch } from './routes.js';
import { NoUpstreamError, type Upstream, type UpstreamResolver } from './upstream-resolver.js';

/** One request as routing sees it, whatever the HTTP version. */
export interface HttpRequestInfo {
  method: string;
  /** Origin form ("/x?q"): an absolute-form target has been split into authority and path. */
  path: string;
  /** The authority that counts: an absolute-form target's, else Host / :authority. */
  authority: string;
  headers: IncomingHttpHeaders;
  /** name, value, name, value… as received (repeated names kept apart): what header matches read. */
  rawHeaders: readonly string[];
}

export type RoutingDecision =
  /** A reply Envoy itself would generate (also redirect, directResponse and fault aborts). */
  | {
      kind: 'local';
      code: number;
      flag: string;
      body?: string | Buffer;
      cluster?: string;
      /** More response headers (Location of a redirect, the route's response headers). */
      headers?: [string, string][];
      /** A fault abort's gRPC status, for gRPC requests. */
      grpcStatus?: number;
    }
  | {
      kind: 'forward';
      upstream: Upstream;
      /** The path and authority to send upstream (after `rewrite`). */
      path: string;
      authority: string;
      /** Request / response header changes of the route and destination (`headers`). */
      requestHeaders?: HeaderOperations;
      responseHeaders?: HeaderOperations;
      /** Retry policy; undefined = no retries (PassthroughCluster, `attempts: 0`). */
      retry?: RetryPolicy;
      /** Flags already earned (DI: the fault filter delayed the request). */
      flags?: string;
      /** A registry service (Envoy adds its request headers); false for PassthroughCluster. */
      external: boolean;
      decorator?: string;
      timeoutMs?: number;
      /** Speak HTTP/2 upstream: the ServiceEntry port says HTTP2 or GRPC (or passthrough of h2c). */
      http2: boolean;
    };

export interface RoutingDeps {
  registry: () => Registry;
  resolver: UpstreamResolver;
}

/** Routes one request arriving on `ctx`; `downstreamHttp2` picks the passthrough protocol. */
export async function routeRequest(
  deps: RoutingDeps,
  ctx: ConnectionContext,
  req: HttpRequestInfo,
  downstreamHttp2: boolean,
): Promise<RoutingDecision> {
  const registry = deps.registry();
  const host = stripPort(req.authority);
  const port = ctx.originalDst.port;
  // Which gateway is this request on? For gateway listeners, the server whose hosts match.
  let gateway = MESH_GATEWAY;
  if (ctx.gateway !== 'mesh') {
    const match = ctx.gateway.servers.find(
      // HTTPS servers with tls.mode SIMPLE terminate TLS: their requests are routed as HTTP.
      (s) => (isHttp(s.server.port.protocol) || s.server.tlsMode === 'SIMPLE') && s.server.hosts.some((h) => hostMatches(h, host)),
    );
    if (!match) return { kind: 'local', code: 404, flag: 'NR' };
    gateway = match.gateway;
  }
  // CONNECT has no path; Envoy's default route matchers never match it (404 NR).
  if (req.method === 'CONNECT') return { kind: 'local', code: 404, flag: 'NR' };

  let destination: Destination | undefined;
  let timeoutMs: number | undefined;
  let selected: { route: HttpRoute; match?: HttpMatch } | undefined;
  let headerPolicy: HeaderPolicy | undefined;
  let flags: string | undefined;
  const vs = registry.virtualService(host, gateway);
  if (vs) {
    selected = selectHttpRouteMatch(vs, { path: req.path, authority: req.authority, method: req.method, scheme: 'http', port, gateway, rawHeaders: req.rawHeaders });
    if (!selected) return { kind: 'local', code: 404, flag: 'NR' };
    const route = selected.route;
    // Envoy's filter order: the fault filter acts before the router (and before direct replies).
    const fault = faultFor(route.fault);
    if (fault.delayMs !== undefined) {
      await new Promise((r) => setTimeout(r, fault.delayMs));
      flags = 'DI';
    }
    const responseHeaders = route.headers?.response;
    if (fault.abort) {
      const flag = flags ? `${flags},FI` : 'FI';
      return { kind: 'local', code: fault.abort.httpStatus ?? 200, flag, body: FAULT_ABORT_BODY, ...(fault.abort.grpcStatus !== undefined ? { grpcStatus: fault.abort.grpcStatus } : {}) };
    }
    if (route.redirect) {
      const location = redirectLocation(route.redirect, req.authority, req.path);
      return { kind: 'local', code: route.redirect.code, flag: flags ?? '-', body: '', headers: applyHeaderOperations([['location', location]], responseHeaders) };
    }
    if (route.directResponse) {
      return { kind: 'local', code: route.directResponse.status, flag: flags ?? '-', body: route.directResponse.body ?? '', headers: applyHeaderOperations([], responseHeaders) };
    }
    const picked = pickRouteDestination(route.route);
    destination = picked.destination;
    headerPolicy = mergeHeaderPolicies(picked.headers, route.headers);
    timeoutMs = route.timeoutMs;
  } else if (gateway !== MESH_GATEWAY) {
    return { kind: 'local', code: 404, flag: 'NR' };
  } else {
    const binding = registry.byHost(host, port) ?? registry.byAddress(ctx.originalDst.address, port);
    if (binding && isHttp(binding.port.protocol)) destination = { host: binding.host, port };
  }

  if (!destination) {
    if (registry.mode !== 'ALLOW_ANY') return { kind: 'local', code: 502, flag: '-', cluster: 'BlackHoleCluster' };
    return { kind: 'forward', upstream: { ...ctx.originalDst, cluster: 'PassthroughCluster' }, path: req.path, authority: req.authority, external: false, http2: downstreamHttp2 };
  }
  let upstream: Upstream;
  try {
    upstream = await deps.resolver.resolve(registry, destination, ctx.originalDst, host);
  } catch (err) {
    if (!(err instanceof NoUpstreamError)) throw err;
    return { kind: 'local', code: 503, flag: err.flag, body: 'no healthy upstream', cluster: err.cluster };
  }
  const upstreamPort = destination.port ?? port;
  const protocol = registry.byHost(destination.host, upstreamPort)?.port.protocol;
  const route = selected?.route;
  const rewrite = route?.rewrite;
  // Built field by field rather than with conditional spreads: each spread is one more object
  // per request. Fields that do not apply stay absent, as before.
  const decision: Extract<RoutingDecision, { kind: 'forward' }> = {
    kind: 'forward',
    upstream,
    path: rewrite ? rewritePath(req.path, rewrite, selected?.match) : req.path,
    authority: rewrite?.authority ?? req.authority,
    external: true,
    decorator: `${destination.host}:${upstreamPort}/*`,
    http2: protocol === 'HTTP2' || protocol === 'GRPC',
  };
  if (headerPolicy?.request) decision.requestHeaders = headerPolicy.request;
  if (headerPolicy?.response) decision.responseHeaders = headerPolicy.response;
  // Istio's default policy unless the route says otherwise (`attempts: 0` is null: none).
  if (route?.retries !== null) decision.retry = route?.retries ?? DEFAULT_RETRY_POLICY;
  if (flags) decision.flags = flags;
  if (timeoutMs !== undefined) decision.timeoutMs = timeoutMs;
  return decision;
}

/** Each connection's addresses as the log prints them, formatted on its first request only. */
const downstreamText = new WeakMap<ConnectionContext, { local: string; remote: string }>();

function downstreamAddresses(ctx: ConnectionContext): { local: string; remote: string } {
  let text = downstreamText.get(ctx);
  if (!text) {
    text = { local: formatHostPort(ctx.originalDst.address, ctx.originalDst.port), remote: formatHostPort(ctx.downstreamRemote.address, ctx.downstreamRemote.port) };
    downstreamText.set(ctx, text);
  }
  return text;
}

/** The access log entry of a request, before anything is known about its answer. */
export function requestEntry(ctx: ConnectionContext, req: HttpRequestInfo, protocol: string): AccessLogEntry {
  const downstream = downstreamAddresses(ctx);
  return {
    startTime: new Date(),
    method: req.method,
    path: req.path,
    protocol,
    responseCode: 0,
    responseFlags: '-',
    bytesReceived: 0,
    bytesSent: 0,
    durationMs: 0,
    userAgent: headerText(req.headers['user-agent']),
    xForwardedFor: headerText(req.headers['x-forwarded-for']),
    authority: req.authority,
    downstreamLocalAddress: downstream.local,
    downstreamRemoteAddress: downstream.remote,
  };
}

/**
 * What Envoy adds on an outbound route to a ServiceEntry (seen in httpbin's /headers); the
 * request id is returned for the log line.
 */
export function envoyRequestHeaders(
  headers: IncomingHttpHeaders,
  decision: { external: boolean; decorator?: string },
  randomHex: (bytes: number) => string,
  uuid: () => string,
): { add: [string, string][]; requestId: string | undefined } {
  let requestId = headerText(headers['x-request-id']);
  const add: [string, string][] = [];
  if (!decision.external) return { add, requestId };
  if (!requestId) add.push(['x-request-id', (requestId = uuid())]);
  add.push(['x-forwarded-proto', 'http'], ['x-envoy-attempt-count', '1']);
  if (decision.decorator) add.push(['x-envoy-decorator-operation', decision.decorator]);
  if (!headers['x-b3-traceid']) {
    add.push(['x-b3-traceid', randomHex(16)], ['x-b3-spanid', randomHex(8)], ['x-b3-sampled', '0']);
  }
  return { add, requestId };
}

export function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
