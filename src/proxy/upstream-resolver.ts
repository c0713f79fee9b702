/**
 * Turns a route destination into an upstream address and Envoy cluster name, by the
 * ServiceEntry's resolution: NONE forwards to the original destination, STATIC picks among
 * endpoints, DNS resolves endpoints (or the host itself) through the system resolver.
 * getaddrinfo reports no TTL, so answers are cached for `dnsRefreshMs` (Istio's
 * dnsRefreshRate) and re-resolved in the background after that. When a DestinationRule governs the cluster, its
 * subset labels narrow the endpoints, outlier detection leaves out ejected ones, its load
 * balancer picks, and the upstream carries the policy (upstream-call.ts) the request is made through.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { clusterName, type Registry } from './registry.js';
import { formatHostPort } from './address-format.js';
import type { Destination } from './istio-types.js';
import { endpointWeight, pickEndpoint } from './load-balancer.js';
import { ClusterStates, type UpstreamPolicy } from './upstream-call.js';

export interface Upstream {
  address: string;
  port: number;
  cluster: string;
  /** Set when a DestinationRule governs the cluster: the HTTP/1 forward path sends through it. */
  policy?: UpstreamPolicy;
}

/** No endpoint could be found for a destination: Envoy answers 503 with flag UH / NC. */
export class NoUpstreamError extends Error {
  override name = 'NoUpstreamError';
  constructor(
    readonly cluster: string,
    readonly flag: 'UH' | 'NC',
    detail: string,
  ) {
    super(`${cluster}: ${detail}`);
  }
}

type LookupFn = (host: string) => Promise<string[]>;

const systemLookup: LookupFn = async (host) => (await dnsLookup(host, { all: true })).map((a) => a.address);

/** One endpoint the cluster may use: an address (or a name still to resolve) and port. */
interface Candidate {
  address: string;
  port: number;
  labels?: Record<string, string>;
  /** The endpoint's load-balancing weight (1 unless its ServiceEntry endpoint says more). */
  weight?: number;
}

const endpointKey = (c: Candidate) => formatHostPort(c.address, c.port);
const weightOf = (c: Candidate) => c.weight ?? 1;

export class UpstreamResolver {
  private readonly cache = new Map<string, { addresses: string[]; expires: number }>();
  /** Lookups under way, by name. */
  private readonly inFlight = new Map<string, Promise<string[]>>();
  private roundRobin = 0;
  /** DestinationRule state per cluster (pools, ejections, balancer), kept across reloads. */
  readonly clusters = new ClusterStates();

  constructor(
    private readonly dnsRefreshMs = 5000,
    private readonly lookup: LookupFn = systemLookup,
  ) {}

  /**
   * Resolves `dest`. `original` is where the client was going (used by resolution NONE);
   * `requestedName` is the SNI or Host that selected the service (used for wildcard hosts, and
   * as the SNI of TLS origination).
   */
  async resolve(
    registry: Registry,
    dest: Destination,
    original: { address: string; port: number },
    requestedName?: string,
  ): Promise<Upstream> {
    const port = dest.port ?? original.port;
    const binding = registry.byHost(dest.host, port);
    const entry = binding?.entry ?? registry.entryForHost(dest.host);
    const cluster = clusterName(port, binding?.host ?? dest.host, dest.subset ?? '');
    const found = registry.destinations.lookup(binding?.host ?? dest.host, port, dest.subset);
    // Envoy has no cluster for a subset no DestinationRule defines: 503 NC.
    if (found.kind === 'unknown-subset') throw new NoUpstreamError(cluster, 'NC', `subset ${dest.subset} is not defined (${found.rule})`);
    const policy = found.kind === 'policy' ? found.policy : undefined;
    const servicePort = binding?.port ?? entry?.ports.find((p) => p.number === port);
    // hasOwn: a port named toString or constructor must not find Object.prototype's.
    const targetPort = (name: string | undefined, epPorts?: Record<string, number>): number =>
      (name !== undefined && epPorts !== undefined && Object.hasOwn(epPorts, name) ? epPorts[name] : undefined) ?? servicePort?.targetPort ?? port;

    let candidates: Candidate[];
    if (!entry) {
      // Not in the registry (an egress gateway's Service name, say): Envoy would know it as a
      // Kubernetes service; we ask the system resolver, and fail like a missing cluster.
      const addrs = await this.resolveName(dest.host).catch(() => []);
      if (addrs.length === 0) throw new NoUpstreamError(cluster, 'NC', `host ${dest.host} is not in the registry and does not resolve`);
      candidates = addrs.map((address) => ({ address, port }));
    } else if (entry.resolution === 'NONE') {
      candidates = [{ address: original.address, port: dest.port ?? original.port }];
    } else if (entry.endpoints.length > 0) {
      candidates = entry.endpoints.map((ep) => ({
        address: ep.address,
        port: targetPort(servicePort?.name, ep.ports),
        ...(ep.labels ? { labels: ep.labels } : {}),
        weight: endpointWeight(ep.weight),
      }));
    } else {
      const name = dest.host.startsWith('*') ? requestedName ?? dest.host : dest.host;
      const addrs = await this.resolveName(name).catch(() => []);
      if (addrs.length === 0) throw new NoUpstreamError(cluster, 'UH', `${name} does not resolve`);
      candidates = addrs.map((address) => ({ address, port: targetPort(servicePort?.name) }));
    }

    let chosen: Candidate;
    if (!policy) {
      // Weighted endpoints need the cluster's round-robin credits; equal ones the shared counter.
      chosen = candidates.some((c) => weightOf(c) !== 1)
        ? pickEndpoint(candidates, endpointKey, 'ROUND_ROBIN', this.clusters.get(cluster).balancer, Math.random, weightOf)
        : candidates[this.roundRobin++ % candidates.length]!;
    } else {
      const labels = policy.subsetLabels;
      const inSubset = labels ? candidates.filter((c) => Object.entries(labels).every(([k, v]) => c.labels?.[k] === v)) : candidates;
      if (inSubset.length === 0) throw new NoUpstreamError(cluster, 'UH', `no endpoint carries the labels of subset ${dest.subset}`);
      const healthy = inSubset.filter((c) => !this.clusters.isEjected(cluster, policy, endpointKey(c)));
      // Istio sets no panic threshold: with every endpoint ejected there is no healthy upstream.
      if (healthy.length === 0) throw new NoUpstreamError(cluster, 'UH', 'every endpoint is ejected by outlier detection');
      chosen = pickEndpoint(healthy, endpointKey, policy.loadBalancer ?? 'ROUND_ROBIN', this.clusters.get(cluster).balancer, Math.random, weightOf);
      const sniHost = requestedName ?? dest.host;
      const upstream = await this.addressOf(chosen, cluster);
      return { ...upstream, policy: this.clusters.policyFor(cluster, policy, endpointKey(chosen), inSubset.length, sniHost) };
    }
    return this.addressOf(chosen, cluster);
  }

  /** The endpoint with its name (DNS endpoints) resolved. */
  private async addressOf(c: Candidate, cluster: string): Promise<Upstream> {
    if (isIP(c.address)) return { address: c.address, port: c.port, cluster };
    const addrs = await this.resolveName(c.address).catch(() => []);
    if (addrs.length === 0) throw new NoUpstreamError(cluster, 'UH', `endpoint ${c.address} does not resolve`);
    return { address: this.pick(addrs), port: c.port, cluster };
  }

  private pick(addrs: string[]): string {
    return addrs[this.roundRobin++ % addrs.length]!;
  }

  /**
   * The addresses of `host`. An answer past `dnsRefreshMs` is still used while a new lookup
   * runs in the background, as Envoy's DNS clusters refresh off the request path; concurrent
   * requests for a name not yet known share one lookup. A failed refresh forgets the name, so
   * the next request looks it up itself and fails as a first lookup does.
   */
  /**
   * How many addresses `host` has (1 for an IP address), resolving it when not known yet: the
   * fast path serves only single-address upstreams, since the forward path round-robins over
   * a name's addresses request by request.
   */
  async addressCount(host: string): Promise<number> {
    return (await this.resolveName(host).catch(() => [])).length;
  }

  private async resolveName(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const hit = this.cache.get(host);
    if (hit) {
      if (hit.expires <= Date.now() && !this.inFlight.has(host)) void this.refresh(host).catch(() => this.cache.delete(host));
      return hit.addresses;
    }
    return this.inFlight.get(host) ?? this.refresh(host);
  }

  private refresh(host: string): Promise<string[]> {
    const lookup = this.lookup(host).then(
      (addresses) => {
        this.inFlight.delete(host);
        this.cache.set(host, { addresses, expires: Date.now() + this.dnsRefreshMs });
        return addresses;
      },
      (err: unknown) => {
        this.inFlight.delete(host);
        throw err;
      },
    );
    this.inFlight.set(host, lookup);
    return lookup;
  }
}
