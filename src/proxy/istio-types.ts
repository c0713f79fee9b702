/**
 * The subset of Istio's networking API the redirect target understands, as plain typed data.
 * Field names follow Istio's YAML (camelCase as written in the seeds); everything here has
 * already been validated by istio-yaml.ts, so consumers never re-check shapes.
 */
import type { Cidr } from '../net/cidr.js';

/** Istio's `outboundTrafficPolicy.mode`: what happens to destinations not in the registry. */
export type OutboundMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/** Port protocols Istio accepts on ServiceEntry and Gateway ports that we act on. */
export const PORT_PROTOCOLS = ['HTTP', 'HTTPS', 'TLS', 'TCP', 'HTTP2', 'GRPC'] as const;
export type PortProtocol = (typeof PORT_PROTOCOLS)[number];

export const RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

export interface ServicePort {
  number: number;
  name: string;
  protocol: PortProtocol;
  targetPort?: number;
}

export interface WorkloadEntryEndpoint {
  /** IP address or DNS name (DNS names only with resolution DNS). */
  address: string;
  /** Per-port-name overrides of the port number, as in Istio. */
  ports?: Record<string, number>;
  /** What DestinationRule subsets select this endpoint by. */
  labels?: Record<string, string>;
  /** Load-balancing weight (Istio's uint32; 0 or absent means 1). */
  weight?: number;
}

export interface ServiceEntry {
  kind: 'ServiceEntry';
  name: string;
  namespace: string;
  hosts: string[];
  /** CIDRs or addresses; when present, connections are matched by destination address. */
  addresses: string[];
  ports: ServicePort[];
  resolution: Resolution;
  location: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  endpoints: WorkloadEntryEndpoint[];
}

export interface Destination {
  host: string;
  port?: number;
  subset?: string;
}

export interface RouteDestination {
  destination: Destination;
  /** Relative weight; Istio treats a missing weight on a single route as 100. */
  weight: number;
  /** Header changes for requests sent to this destination (applied before the route's). */
  headers?: HeaderPolicy;
}

/** One direction's header changes: Envoy's headers_to_add (overwrite / append) and headers_to_remove. */
export interface HeaderOperations {
  /** Replace the header's values (OVERWRITE_IF_EXISTS_OR_ADD). Names lower case. */
  set: [string, string][];
  /** Add one more value (APPEND_IF_EXISTS_OR_ADD). */
  add: [string, string][];
  remove: string[];
}

/** VirtualService `headers` (route or destination level). */
export interface HeaderPolicy {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

/** Envoy's retry_on conditions that interpose proxy implements. */
export const RETRY_CONDITIONS = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;
export type RetryCondition = (typeof RETRY_CONDITIONS)[number];

/** A route's retry policy as Envoy gets it from Istio (retry.ConvertPolicy). */
export interface RetryPolicy {
  /** Retries after the first try (Istio `attempts` = Envoy num_retries). */
  retries: number;
  perTryTimeoutMs?: number;
  on: RetryCondition[];
  /** For `retriable-status-codes`: Istio's default list is [503]. */
  statusCodes: number[];
  /** Envoy's retry back-off base interval (default 25 ms; the cap is 10 times it). */
  backoffBaseMs: number;
}

/** VirtualService `fault`: fractions in [0, 1]. */
export interface FaultPolicy {
  delay?: { ms: number; fraction: number };
  abort?: { httpStatus?: number; grpcStatus?: number; fraction: number };
}

/** VirtualService `rewrite`. */
export interface RewritePolicy {
  /** Replaces the matched uri prefix (the whole path for exact and regex matches), as Envoy's prefix_rewrite. */
  uri?: string;
  /** The Host / :authority sent upstream. */
  authority?: string;
}

/** VirtualService `redirect`: Envoy's redirect action. */
export interface RedirectPolicy {
  uri?: string;
  authority?: string;
  port?: number;
  /** FROM_PROTOCOL_DEFAULT drops the port, FROM_REQUEST_PORT keeps the request's. */
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  code: number;
}

/** VirtualService `directResponse`. */
export interface DirectResponsePolicy {
  status: number;
  body?: Buffer;
}

/** Istio's StringMatch: exactly one of these is set (the schema enforces it). */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  /** RE2 syntax, matched against the whole value (Envoy safe_regex). */
  regex?: string;
}

/** A header or query parameter condition; no `match` means "present" (Istio's `{}`). */
export interface NamedMatch {
  /** Header names are lower case; query parameter names are as written. */
  name: string;
  match?: StringMatch;
}

/** One `match` block: every field set must hold (AND); the blocks of a route are OR-ed. */
export interface HttpMatch {
  uri?: StringMatch;
  /** uri exact/prefix compared without case (Envoy `case_sensitive: false`; not regex). */
  ignoreUriCase?: boolean;
  authority?: StringMatch;
  method?: StringMatch;
  scheme?: StringMatch;
  headers?: NamedMatch[];
  /** Envoy invert_match: holds when the header is present and does not match. */
  withoutHeaders?: NamedMatch[];
  queryParams?: NamedMatch[];
  port?: number;
  gateways?: string[];
}

export interface HttpRoute {
  name?: string;
  /** Empty means "match everything", as in Istio. */
  match: HttpMatch[];
  route: RouteDestination[];
  /** Request timeout in milliseconds (VirtualService `timeout`), undefined = none. */
  timeoutMs?: number;
  /** undefined: Istio's default policy; null: `attempts: 0`, no retries. */
  retries?: RetryPolicy | null;
  fault?: FaultPolicy;
  rewrite?: RewritePolicy;
  headers?: HeaderPolicy;
  /** With redirect or directResponse, `route` is empty: the proxy answers itself. */
  redirect?: RedirectPolicy;
  directResponse?: DirectResponsePolicy;
}

export interface TlsMatch {
  sniHosts: string[];
  port?: number;
  gateways?: string[];
  /** The connection's original destination must lie in one of them. */
  destinationSubnets?: Cidr[];
}

export interface TlsRoute {
  match: TlsMatch[];
  route: RouteDestination[];
}

export interface TcpMatch {
  port?: number;
  gateways?: string[];
  /** The connection's original destination must lie in one of them. */
  destinationSubnets?: Cidr[];
  /** The connection's source address must lie in it. */
  sourceSubnet?: Cidr;
}

export interface TcpRoute {
  match: TcpMatch[];
  route: RouteDestination[];
}

export interface VirtualService {
  kind: 'VirtualService';
  name: string;
  namespace: string;
  hosts: string[];
  /** Gateway names without namespace; Istio's default when absent is ["mesh"]. */
  gateways: string[];
  http: HttpRoute[];
  tls: TlsRoute[];
  tcp: TcpRoute[];
}

/** DestinationRule `tls` (ClientTLSSettings): how the proxy speaks to the upstream. */
export interface ClientTls {
  mode: 'DISABLE' | 'SIMPLE' | 'MUTUAL';
  /** Resource and field path of this `tls`, for messages about its files. */
  field: string;
  /** File paths, as Istio's file-mounted certificates. */
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  sni?: string;
  subjectAltNames?: string[];
  insecureSkipVerify?: boolean;
}

/** DestinationRule `connectionPool`, the fields interpose implements (unset = Envoy's "unlimited"). */
export interface ConnectionPool {
  maxConnections?: number;
  /** tcp.connectTimeout: how long a connect to an endpoint may take (default: --connect-timeout). */
  connectTimeoutMs?: number;
  /** http.idleTimeout: a pooled upstream connection idle this long is closed. */
  idleTimeoutMs?: number;
  http1MaxPendingRequests?: number;
  maxRequestsPerConnection?: number;
}

/** DestinationRule `outlierDetection` (durations in ms). */
export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionPercent?: number;
}

export const LOAD_BALANCERS = ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST'] as const;
export type LoadBalancer = (typeof LOAD_BALANCERS)[number];

/** One `trafficPolicy` (or one of its portLevelSettings): each part set only when written. */
export interface TrafficPolicy {
  tls?: ClientTls;
  connectionPool?: ConnectionPool;
  outlierDetection?: OutlierDetection;
  loadBalancer?: LoadBalancer;
}

export interface TopTrafficPolicy extends TrafficPolicy {
  /** By service port number; a port's setting replaces the top-level part it sets. */
  portLevelSettings: Map<number, TrafficPolicy>;
}

export interface Subset {
  name: string;
  /** Endpoints whose labels include all of these; empty selects every endpoint. */
  labels: Record<string, string>;
  trafficPolicy?: TopTrafficPolicy;
}

export interface DestinationRule {
  kind: 'DestinationRule';
  name: string;
  namespace: string;
  host: string;
  trafficPolicy?: TopTrafficPolicy;
  subsets: Subset[];
}

export interface GatewayServer {
  port: { number: number; name: string; protocol: PortProtocol };
  /** Hosts with any `namespace/` prefix removed. */
  hosts: string[];
  tlsMode?: 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL';
  /**
   * tls.mode SIMPLE: where the server certificate and key are: `credentialName` (a directory
   * holding tls.crt and tls.key, as a Kubernetes TLS secret mounts) or serverCertificate /
   * privateKey. Paths as written; relative ones are resolved against the --config directory.
   */
  credential?: { certFile: string; keyFile: string; field: string };
}

export interface Gateway {
  kind: 'Gateway';
  name: string;
  namespace: string;
  servers: GatewayServer[];
}

/** Everything one configuration file says, validated. */
export interface ProxyConfig {
  mode: OutboundMode;
  serviceEntries: ServiceEntry[];
  virtualServices: VirtualService[];
  destinationRules: DestinationRule[];
  gateways: Gateway[];
  /** `kind` (or "document N") of documents ignored because we do not act on them. */
  ignored: string[];
  /** One line per resource naming the fields accepted without effect (see istio-field-policy.ts). */
  warnings: string[];
  /** The --config file's directory: relative certificate paths are read from there. */
  baseDir?: string;
}

/** The reserved gateway name for sidecar (in-mesh) traffic. */
export const MESH_GATEWAY = 'mesh';
