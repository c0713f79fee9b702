/**
 * The service registry built from one ProxyConfig: which ServiceEntry (and which of its ports)
 * a connection belongs to, by destination address (native CIDR trie) or by name (host table),
 * and which VirtualService applies to a host on a given gateway. Immutable: a reload builds a
 * new Registry and swaps it in, so connections in flight keep the one they started with.
 */
import type { AddressTable, AddressTableFactory } from './address-table.js';
import type { AllocatedAddress } from './dns/auto-allocate.js';
import { DestinationPolicies } from './destination-policy.js';
import { gatewayTlsContexts } from './gateway-tls.js';
import { HostTable } from './host-table.js';
import {
  MESH_GATEWAY,
  type Gateway,
  type OutboundMode,
  type ProxyConfig,
  type ServiceEntry,
  type ServicePort,
  type VirtualService,
} from './istio-types.js';

/** One ServiceEntry port, as matched for a connection or request. */
export interface ServiceBinding {
  entry: ServiceEntry;
  port: ServicePort;
  /** The host (pattern) of the entry that matched; names the cluster. */
  host: string;
}

/** Envoy's cluster name for a service port: `outbound|PORT|SUBSET|HOST`. */
export function clusterName(port: number, host: string, subset = ''): string {
  return `outbound|${port}|${subset}|${host}`;
}

export class Registry {
  readonly mode: OutboundMode;
  readonly config: ProxyConfig;
  /** The DestinationRules per cluster (their certificate files read now). */
  readonly destinations: DestinationPolicies;
  /** Gateway servers that terminate TLS (tls.mode SIMPLE), with their certificates read now. */
  readonly gatewayTls: ReturnType<typeof gatewayTlsContexts>;
  private readonly addressTables = new Map<number, AddressTable>();
  private readonly addressBindings: ServiceBinding[] = [];
  private readonly claimedCidrs = new Set<string>();
  private readonly hostsByPort = new Map<number, HostTable<ServiceBinding>>();
  private readonly entriesByHost = new HostTable<ServiceEntry>();
  private readonly httpPorts = new Set<number>();
  private readonly tcpCatchAll = new Map<number, ServiceBinding>();
  private readonly virtualServices = new Map<string, HostTable<VirtualService>>();

  /**
   * `allocated`: addresses the DNS proxy hands out for address-less hosts (DNS auto-allocation).
   * Like Istio's listeners on them, they claim connections for their host, and an entry with
   * allocations no longer claims its whole port.
   */
  constructor(config: ProxyConfig, newTable: AddressTableFactory, allocated: readonly AllocatedAddress[] = []) {
    this.config = config;
    this.mode = config.mode;
    this.destinations = new DestinationPolicies(config);
    this.gatewayTls = gatewayTlsContexts(config);
    const allocations = new Map<ServiceEntry, AllocatedAddress[]>();
    for (const a of allocated) allocations.set(a.entry, [...(allocations.get(a.entry) ?? []), a]);
    for (const entry of config.serviceEntries) {
      for (const host of entry.hosts) this.entriesByHost.add(host, entry);
      for (const port of entry.ports) {
        if (isHttp(port.protocol)) this.httpPorts.add(port.number);
        for (const host of entry.hosts) {
          let table = this.hostsByPort.get(port.number);
          if (!table) this.hostsByPort.set(port.number, (table = new HostTable()));
          table.add(host, { entry, port, host });
        }
        if (entry.addresses.length > 0) {
          // One trie per port keeps the value a plain index and the lookup a single call.
          let table = this.addressTables.get(port.number);
          if (!table) this.addressTables.set(port.number, (table = newTable()));
          const index = this.addressBindings.push({ entry, port, host: entry.hosts[0]! }) - 1;
          for (const cidr of entry.addresses) {
            // The first entry claiming a CIDR on a port keeps it, as with hosts.
            const key = `${port.number} ${cidr}`;
            if (this.claimedCidrs.has(key)) continue;
            this.claimedCidrs.add(key);
            table.insert(cidr.includes('/') ? cidr : cidr.includes(':') ? `${cidr}/128` : `${cidr}/32`, index);
          }
        } else if (allocations.has(entry)) {
          let table = this.addressTables.get(port.number);
          if (!table) this.addressTables.set(port.number, (table = newTable()));
          for (const a of allocations.get(entry)!) {
            const index = this.addressBindings.push({ entry, port, host: a.host }) - 1;
            table.insert(`${a.v4}/32`, index);
            table.insert(`${a.v6}/128`, index);
          }
        } else if (port.protocol === 'TCP' && !this.tcpCatchAll.has(port.number)) {
          // Istio builds a 0.0.0.0:PORT listener for address-less TCP entries: it takes
          // every destination on that port.
          this.tcpCatchAll.set(port.number, { entry, port, host: entry.hosts[0]! });
        }
      }
    }
    for (const vs of config.virtualServices) {
      for (const gw of vs.gateways) {
        let table = this.virtualServices.get(gw);
        if (!table) this.virtualServices.set(gw, (table = new HostTable()));
        for (const host of vs.hosts) table.add(host, vs);
      }
    }
  }

  /** The ServiceEntry port whose `addresses` cover this destination, if any. */
  byAddress(ip: string, port: number): ServiceBinding | undefined {
    const index = this.addressTables.get(port)?.lookup(ip);
    return index === undefined ? undefined : this.addressBindings[index];
  }

  /** The ServiceEntry port serving this host name on this port, if any. */
  byHost(name: string, port: number): ServiceBinding | undefined {
    return this.hostsByPort.get(port)?.lookup(name);
  }

  /** The address-less TCP ServiceEntry that claims every destination on this port. */
  tcpServiceOnPort(port: number): ServiceBinding | undefined {
    return this.tcpCatchAll.get(port);
  }

  /** True when some ServiceEntry declares an HTTP port with this number (Envoy then has an HTTP listener there). */
  hasHttpPort(port: number): boolean {
    return this.httpPorts.has(port);
  }


  /**
   * Every port number some ServiceEntry declares. Only there can the registry claim a
   * connection: by a host name (SNI, Host header), an HTTP service, an address-less TCP entry
   * or `addresses` — each comes with the entry's ports.
   */
  servicePorts(): Set<number> {
    return new Set(this.config.serviceEntries.flatMap((entry) => entry.ports.map((port) => port.number)));
  }

  /** The ServiceEntry for a host, whatever its ports. */
  entryForHost(name: string): ServiceEntry | undefined {
    return this.entriesByHost.lookup(name);
  }

  /** The VirtualService bound to `gateway` (default the mesh) for this host. */
  virtualService(host: string, gateway = MESH_GATEWAY): VirtualService | undefined {
    return this.virtualServices.get(gateway)?.lookup(host);
  }

  get gateways(): Gateway[] {
    return this.config.gateways;
  }
}

/** Protocols Envoy handles with its HTTP connection manager. */
export function isHttp(protocol: string): boolean {
  return protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC';
}
