/**
 * Turns a route destination into an upstream address and Envoy cluster name, by the
 * ServiceEntry's resolution: NONE forwards to the original destination, STATIC picks among
 * endpoints, DNS resolves endpoints (or the host itself) through the system resolver.
 * getaddrinfo reports no TTL, so answers are cached for `dnsRefreshMs` (Istio's
 * dnsRefreshRate) and re-resolved after that.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { clusterName, type Registry } from './registry.js';
import type { Destination } from './istio-types.js';

export interface Upstream {
  address: string;
  port: number;
  cluster: string;
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

export class UpstreamResolver {
  private readonly cache = new Map<string, { addresses: string[]; expires: number }>();
  private roundRobin = 0;

  constructor(
    private readonly dnsRefreshMs = 5000,
    private readonly lookup: LookupFn = systemLookup,
  ) {}

  /**
   * Resolves `dest`. `original` is where the client was going (used by resolution NONE);
   * `requestedName` is the SNI or Host that selected the service (used for wildcard hosts).
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
    if (!entry) {
      // Not in the registry (an egress gateway's Service name, say): Envoy would know it as a
      // Kubernetes service; we ask the system resolver, and fail like a missing cluster.
      const addrs = await this.resolveName(dest.host).catch(() => []);
      if (addrs.length === 0) throw new NoUpstreamError(cluster, 'NC', `host ${dest.host} is not in the registry and does not resolve`);
      return { address: this.pick(addrs), port, cluster };
    }
    const servicePort = binding?.port ?? entry.ports.find((p) => p.number === port);
    const targetPort = (name: string | undefined, epPorts?: Record<string, number>): number =>
      (name !== undefined ? epPorts?.[name] : undefined) ?? servicePort?.targetPort ?? port;
    switch (entry.resolution) {
      case 'NONE':
        return { address: original.address, port: dest.port ?? original.port, cluster };
      case 'STATIC': {
        const ep = entry.endpoints[this.roundRobin++ % entry.endpoints.length]!;
        return { address: ep.address, port: targetPort(servicePort?.name, ep.ports), cluster };
      }
      default: {
        if (entry.endpoints.length > 0) {
          const ep = entry.endpoints[this.roundRobin++ % entry.endpoints.length]!;
          const addrs = isIP(ep.address) ? [ep.address] : await this.resolveName(ep.address).catch(() => []);
          if (addrs.length === 0) throw new NoUpstreamError(cluster, 'UH', `endpoint ${ep.address} does not resolve`);
          return { address: this.pick(addrs), port: targetPort(servicePort?.name, ep.ports), cluster };
        }
        const name = dest.host.startsWith('*') ? requestedName ?? dest.host : dest.host;
        const addrs = await this.resolveName(name).catch(() => []);
        if (addrs.length === 0) throw new NoUpstreamError(cluster, 'UH', `${name} does not resolve`);
        return { address: this.pick(addrs), port: targetPort(servicePort?.name), cluster };
      }
    }
  }

  private pick(addrs: string[]): string {
    return addrs[this.roundRobin++ % addrs.length]!;
  }

  private async resolveName(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const now = Date.now();
    const hit = this.cache.get(host);
    if (hit && hit.expires > now) return hit.addresses;
    const addresses = await this.lookup(host);
    this.cache.set(host, { addresses, expires: now + this.dnsRefreshMs });
    return addresses;
  }
}
