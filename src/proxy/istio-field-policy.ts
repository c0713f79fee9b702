/**
 * What interpose proxy does with each field of Istio's networking resources, in one table.
 * A field Istio accepts is either
 *   - `implemented`: honoured as Envoy honours it;
 *   - `warn`: accepted without effect, one warning line per resource, because it cannot change
 *     which traffic is allowed or where it goes in this proxy;
 *   - `reject`: the whole config is refused with the reason, because ignoring it could change
 *     traffic (most often: widen it).
 * Rows name a field by its schema pattern (`[]` a list item, `*` a map key). A field with no
 * row of its own takes the `warn`/`reject` of its nearest ancestor row; `implemented` is never
 * inherited, so a field this table does not list is rejected: a field Istio adds later cannot
 * slip through unread. docs/proxy.md prints this table (test/proxy/istio-schema.test.ts checks
 * that it does).
 */
import { IstioFieldError } from './istio-field-error.js';
import type { IstioKind, PresentField } from './istio-schema.js';

export type Verdict = 'implemented' | 'warn' | 'reject';

export interface FieldRule {
  kind: IstioKind | 'any';
  path: string;
  /** The row applies only when the field (or list item) has this value. */
  value?: string;
  verdict: Verdict;
  /** For `implemented`: everything under the field is covered too (bookkeeping subtrees). */
  subtree?: true;
  reason: string;
}

const LATER = 'not implemented yet';
const BOOKKEEPING = 'object bookkeeping; carries no traffic semantics';
const NO_LABELS =
  'needs the labels of workloads, which a single-pod proxy does not have; ignoring it would apply the rule where Istio would not';

// prettier-ignore
export const FIELD_POLICY: readonly FieldRule[] = [
  // Every kind.
  { kind: 'any', path: 'apiVersion', verdict: 'implemented', reason: 'networking.istio.io v1alpha3, v1beta1, v1' },
  { kind: 'any', path: 'kind', verdict: 'implemented', reason: 'ServiceEntry, VirtualService, DestinationRule, Gateway' },
  { kind: 'any', path: 'metadata', verdict: 'implemented', reason: BOOKKEEPING },
  { kind: 'any', path: 'metadata.name', verdict: 'implemented', reason: 'names the resource in errors and warnings' },
  { kind: 'any', path: 'metadata.namespace', verdict: 'implemented', reason: 'names the resource; default "default"' },
  ...['labels', 'annotations', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'finalizers',
    'ownerReferences', 'generateName', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds'].map(
    (f): FieldRule => ({ kind: 'any', path: `metadata.${f}`, verdict: 'implemented', subtree: true, reason: BOOKKEEPING })),
  { kind: 'any', path: 'status', verdict: 'implemented', subtree: true, reason: 'written by Istio, not configuration' },
  { kind: 'any', path: 'spec', verdict: 'implemented', reason: 'the resource' },
  { kind: 'any', path: 'spec.exportTo', verdict: 'warn', reason: 'the proxy applies every resource in its --config file, as if its workload were in every namespace the resource is exported to' },
  { kind: 'any', path: 'spec.exportTo', value: '~', verdict: 'reject', reason: '"~" hides the resource from every workload; applying it here would change traffic' },

  // ServiceEntry.
  { kind: 'ServiceEntry', path: 'spec.hosts', verdict: 'implemented', reason: 'matched against SNI / Host, exact or *.suffix' },
  { kind: 'ServiceEntry', path: 'spec.addresses', verdict: 'implemented', reason: 'matched against the original destination (CIDR trie)' },
  { kind: 'ServiceEntry', path: 'spec.ports', verdict: 'implemented', reason: 'the ports the entry claims' },
  { kind: 'ServiceEntry', path: 'spec.ports[].number', verdict: 'implemented', reason: '' },
  { kind: 'ServiceEntry', path: 'spec.ports[].name', verdict: 'implemented', reason: 'keys endpoints[].ports' },
  { kind: 'ServiceEntry', path: 'spec.ports[].protocol', verdict: 'implemented', reason: 'HTTP* proxied per request, TLS/HTTPS by SNI, TCP relayed' },
  { kind: 'ServiceEntry', path: 'spec.ports[].targetPort', verdict: 'implemented', reason: 'upstream port' },
  { kind: 'ServiceEntry', path: 'spec.resolution', verdict: 'implemented', reason: 'NONE, STATIC, DNS, DNS_ROUND_ROBIN' },
  { kind: 'ServiceEntry', path: 'spec.location', verdict: 'implemented', reason: 'MESH_EXTERNAL' },
  { kind: 'ServiceEntry', path: 'spec.location', value: 'MESH_INTERNAL', verdict: 'warn', reason: 'Envoy would use Istio mutual TLS to endpoints with sidecars; interpose proxy connects in plain TCP' },
  { kind: 'ServiceEntry', path: 'spec.endpoints', verdict: 'implemented', reason: 'upstream addresses (STATIC, DNS)' },
  { kind: 'ServiceEntry', path: 'spec.endpoints[].address', verdict: 'implemented', reason: '' },
  { kind: 'ServiceEntry', path: 'spec.endpoints[].ports', verdict: 'implemented', reason: 'per-port-name upstream port' },
  { kind: 'ServiceEntry', path: 'spec.endpoints[].ports.*', verdict: 'implemented', reason: '' },
  { kind: 'ServiceEntry', path: 'spec.endpoints[].labels', verdict: 'warn', reason: 'only DestinationRule subsets read endpoint labels, and subset labels are rejected' },
  { kind: 'ServiceEntry', path: 'spec.endpoints[].weight', verdict: 'implemented', reason: 'load-balancing weight (0 means 1): weighted round robin, weighted random, least request by weight / (active + 1)' },
  { kind: 'ServiceEntry', path: 'spec.endpoints[].locality', verdict: 'warn', reason: 'Istio balances by locality only with outlierDetection, which is rejected' },
  { kind: 'ServiceEntry', path: 'spec.endpoints[].network', verdict: 'warn', reason: 'one network: every endpoint is reached directly' },
  { kind: 'ServiceEntry', path: 'spec.endpoints[].serviceAccount', verdict: 'warn', reason: 'used for Istio mutual TLS, which interpose proxy does not originate' },
  { kind: 'ServiceEntry', path: 'spec.subjectAltNames', verdict: 'warn', reason: 'used to verify Istio mutual TLS, which interpose proxy does not originate' },
  { kind: 'ServiceEntry', path: 'spec.workloadSelector', verdict: 'reject', reason: `selects pods as endpoints; ${NO_LABELS}` },

  // VirtualService.
  { kind: 'VirtualService', path: 'spec.hosts', verdict: 'implemented', reason: 'matched against Host / SNI' },
  { kind: 'VirtualService', path: 'spec.gateways', verdict: 'implemented', reason: '"mesh" and Gateway names' },
  { kind: 'VirtualService', path: 'spec.http', verdict: 'implemented', reason: 'first matching route wins' },
  { kind: 'VirtualService', path: 'spec.http[].name', verdict: 'implemented', reason: 'a label' },
  { kind: 'VirtualService', path: 'spec.http[].match', verdict: 'implemented', reason: 'blocks OR-ed, fields within a block AND-ed; no block = every request' },
  ...['uri', 'authority', 'method', 'scheme'].flatMap((f) => [
    { kind: 'VirtualService', path: `spec.http[].match[].${f}`, verdict: 'implemented', reason: 'exact, prefix, regex (RE2, whole value)' },
    ...['exact', 'prefix', 'regex'].map((m) => ({ kind: 'VirtualService', path: `spec.http[].match[].${f}.${m}`, verdict: 'implemented', reason: '' })),
  ] as FieldRule[]),
  ...['headers', 'queryParams', 'withoutHeaders'].flatMap((f) => [
    { kind: 'VirtualService', path: `spec.http[].match[].${f}`, verdict: 'implemented', reason: f === 'withoutHeaders' ? 'the block matches only if the header is present and does not match (Envoy invert_match); {} = header absent' : 'exact, prefix, regex; {} = present' },
    { kind: 'VirtualService', path: `spec.http[].match[].${f}.*`, verdict: 'implemented', reason: '' },
    ...['exact', 'prefix', 'regex'].map((m) => ({ kind: 'VirtualService', path: `spec.http[].match[].${f}.*.${m}`, verdict: 'implemented', reason: '' })),
  ] as FieldRule[]),
  { kind: 'VirtualService', path: 'spec.http[].match[].ignoreUriCase', verdict: 'implemented', reason: 'uri exact/prefix compared without case (not regex, as in Envoy)' },
  { kind: 'VirtualService', path: 'spec.http[].match[].port', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].match[].gateways', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].match[].name', verdict: 'implemented', reason: 'a label' },
  { kind: 'VirtualService', path: 'spec.http[].match[].statPrefix', verdict: 'warn', reason: 'interpose proxy keeps no per-route statistics' },
  { kind: 'VirtualService', path: 'spec.http[].match[].sourceLabels', verdict: 'reject', reason: NO_LABELS },
  { kind: 'VirtualService', path: 'spec.http[].match[].sourceNamespace', verdict: 'reject', reason: 'needs the namespace of the client workload, which the proxy does not know; ignoring it would widen the match' },
  { kind: 'VirtualService', path: 'spec.http[].route', verdict: 'implemented', reason: 'weighted choice among destinations' },
  { kind: 'VirtualService', path: 'spec.http[].timeout', verdict: 'implemented', reason: '504, flag UT' },
  { kind: 'VirtualService', path: 'spec.http[].retries', verdict: 'implemented', reason: 'Envoy retries; without it Istio\'s default (2 retries on connect-failure, refused-stream, unavailable, cancelled, 503); x-envoy-attempt-count; URX when exhausted; bodies up to 1 MiB are replayed, larger ones are not retried' },
  { kind: 'VirtualService', path: 'spec.http[].retries.attempts', verdict: 'implemented', reason: 'retries after the first try; 0 = none' },
  { kind: 'VirtualService', path: 'spec.http[].retries.perTryTimeout', verdict: 'implemented', reason: 'retried under 5xx, gateway-error, reset; 504 UT when the last try times out' },
  { kind: 'VirtualService', path: 'spec.http[].retries.retryOn', verdict: 'implemented', reason: '5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, HTTP status codes, and the gRPC cancelled, deadline-exceeded, internal, resource-exhausted, unavailable; retriable-headers, envoy-ratelimited, reset-before-request, http3-post-connect-failure are refused' },
  { kind: 'VirtualService', path: 'spec.http[].retries.retryRemoteLocalities', verdict: 'warn', reason: 'one locality: every endpoint is already a candidate' },
  { kind: 'VirtualService', path: 'spec.http[].fault', verdict: 'implemented', reason: 'Envoy fault filter: delay (flag DI) then abort (flag FI)' },
  { kind: 'VirtualService', path: 'spec.http[].fault.delay', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].fault.delay.fixedDelay', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].fault.delay.percentage', verdict: 'implemented', reason: 'absent = 100%' },
  { kind: 'VirtualService', path: 'spec.http[].fault.delay.percentage.value', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].fault.delay.percent', verdict: 'implemented', reason: 'deprecated integer form of percentage' },
  { kind: 'VirtualService', path: 'spec.http[].fault.delay.exponentialDelay', verdict: 'reject', reason: 'Istio does not support it either' },
  { kind: 'VirtualService', path: 'spec.http[].fault.abort', verdict: 'implemented', reason: 'body "fault filter abort"' },
  { kind: 'VirtualService', path: 'spec.http[].fault.abort.httpStatus', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].fault.abort.grpcStatus', verdict: 'implemented', reason: 'for gRPC requests: HTTP 200 with grpc-status' },
  { kind: 'VirtualService', path: 'spec.http[].fault.abort.percentage', verdict: 'implemented', reason: 'absent = 100%' },
  { kind: 'VirtualService', path: 'spec.http[].fault.abort.percentage.value', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].fault.abort.http2Error', verdict: 'reject', reason: 'Istio refuses it too (its validation: "HTTP/2 abort fault injection not supported yet")' },
  { kind: 'VirtualService', path: 'spec.http[].rewrite', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].rewrite.uri', verdict: 'implemented', reason: 'Envoy prefix_rewrite: replaces the matched prefix (whole path for exact/regex matches, "/" without a uri match)' },
  { kind: 'VirtualService', path: 'spec.http[].rewrite.authority', verdict: 'implemented', reason: 'Host / :authority sent upstream' },
  ...['spec.http[].headers', 'spec.http[].route[].headers'].flatMap((h) => [
    { kind: 'VirtualService', path: h, verdict: 'implemented', reason: h.includes('route[]') ? 'applied before the route\'s' : 'remove, then set (overwrite), then add (append)' },
    ...['request', 'response'].flatMap((d) => [
      { kind: 'VirtualService', path: `${h}.${d}`, verdict: 'implemented', reason: '' },
      { kind: 'VirtualService', path: `${h}.${d}.set`, verdict: 'implemented', reason: '' },
      { kind: 'VirtualService', path: `${h}.${d}.set.*`, verdict: 'implemented', reason: '' },
      { kind: 'VirtualService', path: `${h}.${d}.add`, verdict: 'implemented', reason: '' },
      { kind: 'VirtualService', path: `${h}.${d}.add.*`, verdict: 'implemented', reason: '' },
      { kind: 'VirtualService', path: `${h}.${d}.remove`, verdict: 'implemented', reason: '' },
    ]),
  ] as FieldRule[]),
  { kind: 'VirtualService', path: 'spec.http[].redirect', verdict: 'implemented', reason: 'answered by the proxy with Location' },
  ...['uri', 'authority', 'port', 'derivePort', 'scheme'].map((f): FieldRule => ({ kind: 'VirtualService', path: `spec.http[].redirect.${f}`, verdict: 'implemented', reason: '' })),
  { kind: 'VirtualService', path: 'spec.http[].redirect.redirectCode', verdict: 'implemented', reason: 'default 301' },
  { kind: 'VirtualService', path: 'spec.http[].directResponse', verdict: 'implemented', reason: 'answered by the proxy' },
  { kind: 'VirtualService', path: 'spec.http[].directResponse.status', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].directResponse.body', verdict: 'implemented', reason: 'at most 4 KiB, as Envoy' },
  { kind: 'VirtualService', path: 'spec.http[].directResponse.body.string', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.http[].directResponse.body.bytes', verdict: 'implemented', reason: 'base64' },
  { kind: 'VirtualService', path: 'spec.http[].delegate', verdict: 'reject', reason: 'delegate VirtualServices are not implemented' },
  { kind: 'VirtualService', path: 'spec.http[].mirror', verdict: 'reject', reason: 'traffic mirroring is not implemented' },
  { kind: 'VirtualService', path: 'spec.http[].corsPolicy', verdict: 'reject', reason: 'CORS is not implemented' },
  { kind: 'VirtualService', path: 'spec.tls', verdict: 'implemented', reason: 'routes by SNI' },
  { kind: 'VirtualService', path: 'spec.tls[].match', verdict: 'implemented', reason: 'blocks OR-ed' },
  { kind: 'VirtualService', path: 'spec.tls[].match[].sniHosts', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.tls[].match[].port', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.tls[].match[].gateways', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.tls[].route', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.tcp', verdict: 'implemented', reason: 'routes by port' },
  { kind: 'VirtualService', path: 'spec.tcp[].match', verdict: 'implemented', reason: 'blocks OR-ed' },
  { kind: 'VirtualService', path: 'spec.tcp[].match[].port', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.tcp[].match[].gateways', verdict: 'implemented', reason: '' },
  { kind: 'VirtualService', path: 'spec.tcp[].route', verdict: 'implemented', reason: '' },
  ...['tls', 'tcp'].flatMap((r) => [
    { kind: 'VirtualService', path: `spec.${r}[].match[].destinationSubnets`, verdict: 'implemented', reason: "the connection's original destination (a gateway's own address) must lie in one of them" },
    { kind: 'VirtualService', path: `spec.${r}[].match[].sourceLabels`, verdict: 'reject', reason: NO_LABELS },
    { kind: 'VirtualService', path: `spec.${r}[].match[].sourceNamespace`, verdict: 'reject', reason: 'needs the namespace of the client workload; ignoring it would widen the match' },
  ] as FieldRule[]),
  { kind: 'VirtualService', path: 'spec.tcp[].match[].sourceSubnet', verdict: 'implemented', reason: "the connection's source address must lie in it" },
  ...['http', 'tls', 'tcp'].flatMap((r) => [
    { kind: 'VirtualService', path: `spec.${r}[].route[].destination`, verdict: 'implemented', reason: '' },
    { kind: 'VirtualService', path: `spec.${r}[].route[].destination.host`, verdict: 'implemented', reason: '' },
    { kind: 'VirtualService', path: `spec.${r}[].route[].destination.port`, verdict: 'implemented', reason: '' },
    { kind: 'VirtualService', path: `spec.${r}[].route[].destination.port.number`, verdict: 'implemented', reason: '' },
    { kind: 'VirtualService', path: `spec.${r}[].route[].destination.subset`, verdict: 'implemented', reason: 'names the cluster; subsets select every endpoint (subset labels are rejected)' },
    { kind: 'VirtualService', path: `spec.${r}[].route[].weight`, verdict: 'implemented', reason: '' },
  ] as FieldRule[]),

  // DestinationRule (destination-policy.ts): for ServiceEntry hosts, per cluster (host, port, subset).
  { kind: 'DestinationRule', path: 'spec.host', verdict: 'implemented', reason: 'the ServiceEntry host (or Kubernetes-style name) it applies to' },
  { kind: 'DestinationRule', path: 'spec.subsets', verdict: 'implemented', reason: 'addressed by a route\'s destination.subset; a subset no rule defines is 503 NC' },
  { kind: 'DestinationRule', path: 'spec.subsets[].name', verdict: 'implemented', reason: '' },
  { kind: 'DestinationRule', path: 'spec.subsets[].labels', verdict: 'implemented', reason: 'selects the ServiceEntry endpoints whose labels include them all' },
  { kind: 'DestinationRule', path: 'spec.subsets[].labels.*', verdict: 'implemented', reason: '' },
  ...['spec.trafficPolicy', 'spec.subsets[].trafficPolicy'].flatMap((at) => trafficPolicyRows(at, true)),
  { kind: 'DestinationRule', path: 'spec.workloadSelector', verdict: 'reject', reason: NO_LABELS },
  // Gateway.
  { kind: 'Gateway', path: 'spec.selector', verdict: 'warn', reason: 'not evaluated: interpose proxy serves every Gateway in its --config file' },
  { kind: 'Gateway', path: 'spec.servers', verdict: 'implemented', reason: 'one listener per port' },
  { kind: 'Gateway', path: 'spec.servers[].name', verdict: 'implemented', reason: 'a label' },
  { kind: 'Gateway', path: 'spec.servers[].hosts', verdict: 'implemented', reason: '' },
  { kind: 'Gateway', path: 'spec.servers[].port', verdict: 'implemented', reason: '' },
  { kind: 'Gateway', path: 'spec.servers[].port.number', verdict: 'implemented', reason: '' },
  { kind: 'Gateway', path: 'spec.servers[].port.name', verdict: 'implemented', reason: '' },
  { kind: 'Gateway', path: 'spec.servers[].port.protocol', verdict: 'implemented', reason: '' },
  { kind: 'Gateway', path: 'spec.servers[].bind', verdict: 'reject', reason: 'servers listen on --gateway-address' },
  { kind: 'Gateway', path: 'spec.servers[].tls', verdict: 'implemented', reason: 'PASSTHROUGH (relayed by SNI) or SIMPLE (terminated, HTTPS servers)' },
  { kind: 'Gateway', path: 'spec.servers[].tls.mode', verdict: 'implemented', reason: 'PASSTHROUGH; SIMPLE on HTTPS servers (others are refused when read)' },
  { kind: 'Gateway', path: 'spec.servers[].tls.credentialName', verdict: 'implemented', reason: 'a directory holding tls.crt and tls.key (a mounted Kubernetes TLS secret); relative to the --config directory' },
  { kind: 'Gateway', path: 'spec.servers[].tls.serverCertificate', verdict: 'implemented', reason: 'PEM file path (with privateKey)' },
  { kind: 'Gateway', path: 'spec.servers[].tls.privateKey', verdict: 'implemented', reason: 'PEM file path' },
  { kind: 'Gateway', path: 'spec.servers[].tls', verdict: 'reject', reason: `client certificates, TLS versions and cipher settings ${LATER}` },
];

/** The rows of one DestinationRule traffic policy at `at` (with portLevelSettings when `top`). */
function trafficPolicyRows(at: string, top: boolean): FieldRule[] {
  const dr = (path: string, verdict: Verdict, reason: string, value?: string): FieldRule =>
    ({ kind: 'DestinationRule', path: `${at}${path}`, verdict, reason, ...(value ? { value } : {}) });
  return [
    dr('', 'implemented', top ? 'subset policies replace the parts they set; portLevelSettings replace them per port' : ''),
    dr('.tls', 'implemented', 'TLS origination to the upstream (HTTP ports)'),
    dr('.tls.mode', 'implemented', 'DISABLE, SIMPLE, MUTUAL'),
    dr('.tls.mode', 'reject', 'Istio mutual TLS needs the mesh\'s certificates, which interpose proxy does not have', 'ISTIO_MUTUAL'),
    dr('.tls.caCertificates', 'implemented', 'PEM file the server certificate is verified against (default: the system store)'),
    dr('.tls.clientCertificate', 'implemented', 'PEM file (MUTUAL)'),
    dr('.tls.privateKey', 'implemented', 'PEM file (MUTUAL)'),
    dr('.tls.sni', 'implemented', 'default: the request\'s host, as Istio\'s auto SNI'),
    dr('.tls.subjectAltNames', 'implemented', 'the certificate must carry one of them (default: the SNI)'),
    dr('.tls.insecureSkipVerify', 'implemented', 'no verification of the server certificate'),
    dr('.tls', 'reject', `credentialName, caCrl and TLS version settings ${LATER}`),
    dr('.connectionPool', 'implemented', 'HTTP requests to the cluster; overflow is 503 UO'),
    dr('.connectionPool.tcp', 'implemented', ''),
    dr('.connectionPool.tcp.maxConnections', 'implemented', 'connections to the cluster (HTTP ports)'),
    dr('.connectionPool.tcp.connectTimeout', 'implemented', 'the connect to an endpoint of the cluster (HTTP ports); beyond it the attempt fails as a connect failure (UF, retried by the route\'s policy)'),
    dr('.connectionPool.http', 'implemented', ''),
    dr('.connectionPool.http.http1MaxPendingRequests', 'implemented', 'requests waiting for a connection; beyond it 503 UO'),
    dr('.connectionPool.http.maxRequestsPerConnection', 'implemented', 'a connection is closed after this many requests'),
    dr('.connectionPool.http.idleTimeout', 'implemented', 'a pooled connection to the cluster idle this long is closed (default 60 s)'),
    dr('.connectionPool', 'reject', LATER),
    dr('.outlierDetection', 'implemented', 'per endpoint of the cluster, Envoy\'s defaults (5 consecutive 5xx, 10s, 30s, 10%)'),
    ...['consecutive5xxErrors', 'consecutiveGatewayErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent'].map((f) =>
      dr(`.outlierDetection.${f}`, 'implemented', f.startsWith('consecutive') ? 'answers 5xx (or 502/503/504) and connect failures count' : '')),
    dr('.outlierDetection', 'reject', LATER),
    dr('.loadBalancer', 'implemented', ''),
    dr('.loadBalancer.simple', 'implemented', 'ROUND_ROBIN (the default), RANDOM, LEAST_REQUEST'),
    dr('.loadBalancer.simple', 'reject', 'not implemented', 'PASSTHROUGH'),
    dr('.loadBalancer', 'reject', `consistentHash, locality and warm-up ${LATER}`),
    ...(top
      ? [
          dr('.portLevelSettings', 'implemented', 'by service port number'),
          dr('.portLevelSettings[].port', 'implemented', ''),
          dr('.portLevelSettings[].port.number', 'implemented', ''),
          ...trafficPolicyRows(`${at}.portLevelSettings[]`, false).filter((r) => r.path !== `${at}.portLevelSettings[]`),
        ]
      : []),
    dr('.tunnel', 'reject', 'tunneling is not implemented'),
    dr('.proxyProtocol', 'reject', LATER),
  ];
}

const DEFAULT_REJECT = 'interpose proxy does not implement it';

/** Rows by kind and path, the value-specific row first (indexed once: the walk asks per field and ancestor). */
const ROWS = new Map<string, FieldRule[]>();
for (const r of FIELD_POLICY) {
  const key = `${r.kind}\0${r.path}`;
  ROWS.set(key, [...(ROWS.get(key) ?? []), r].sort((a, b) => Number(b.value !== undefined) - Number(a.value !== undefined)));
}

function rulesAt(kind: IstioKind, path: string): FieldRule[] {
  const own = ROWS.get(`${kind}\0${path}`);
  const any = ROWS.get(`any\0${path}`);
  return own && any ? [...own, ...any] : (own ?? any ?? []);
}

function sameValue(value: unknown, expected: string): boolean {
  return typeof value === 'string' && value.toUpperCase() === expected.toUpperCase();
}

/** `a.b[].c` → `a.b[]` → `a.b` → `a`; undefined above the top. */
function parentPattern(p: string): string | undefined {
  if (p.endsWith('[]') || p.endsWith('.*')) return p.slice(0, -2);
  const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
  return cut <= 0 ? undefined : p.slice(0, cut);
}

/**
 * The row deciding a field at `pattern` holding `value`: its own row (a list item or map entry
 * shares the row of its list or map), else the nearest ancestor's warn/reject or `subtree` row.
 * undefined means no row decides it, which the policy treats as a rejection.
 */
export function ruleFor(kind: IstioKind, pattern: string, value: unknown): FieldRule | undefined {
  let own = true;
  for (let p: string | undefined = pattern; p !== undefined; p = parentPattern(p)) {
    const rows = rulesAt(kind, p).filter((r) => r.value === undefined || sameValue(value, r.value));
    const row = own ? rows[0] : rows.find((r) => r.verdict !== 'implemented' || r.subtree);
    if (row) return row;
    // An implemented field does not vouch for fields under it that have no row.
    if (!own && rows.length > 0) return undefined;
    if (!p.endsWith('[]') && !p.endsWith('.*')) own = false;
  }
  return undefined;
}

/**
 * Applies FIELD_POLICY to the fields of one resource: throws IstioFieldError at the first
 * rejected field, and returns the warning line for the fields accepted without effect (one per
 * resource), if any.
 */
export function applyFieldPolicy(kind: IstioKind, fields: PresentField[], resource: string): string | undefined {
  const warned: { path: string; reason: string }[] = [];
  for (const f of fields) {
    const rule = ruleFor(kind, f.pattern, f.value);
    if (!rule || rule.verdict === 'reject') {
      throw new IstioFieldError(resource, f.path, f.value, `valid Istio, but interpose proxy does not implement it: ${rule?.reason ?? DEFAULT_REJECT}`);
    }
    const under = (w: { path: string }) => f.path === w.path || f.path.startsWith(`${w.path}.`) || f.path.startsWith(`${w.path}[`);
    if (rule.verdict === 'warn' && !warned.some(under)) warned.push({ path: f.path, reason: rule.reason });
  }
  if (warned.length === 0) return undefined;
  return `${resource}: accepted without effect: ${warned.map((w) => `${w.path} (${w.reason})`).join('; ')}`;
}

/** FIELD_POLICY as the Markdown table docs/proxy.md shows (kept in step by istio-schema.test.ts). */
export function fieldPolicyMarkdown(): string {
  const rows = FIELD_POLICY.map(
    (r) => `| ${r.kind} | \`${r.path}\`${r.value ? ` = \`${r.value}\`` : ''} | ${r.verdict} | ${r.reason.replace(/\|/g, '\\|')} |`,
  );
  return ['| kind | field | verdict | why |', '|---|---|---|---|', ...rows].join('\n');
}
