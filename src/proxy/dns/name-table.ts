/**
 * The names the DNS proxy answers itself, as istio-agent's name table does: every ServiceEntry
 * host with IP `addresses` (CIDRs are not addresses and are skipped, as Istio skips them), or
 * with auto-allocated ones. Each concrete host is also registered under every resolv.conf
 * search suffix ("db.internal.ns1.svc.cluster.local"), answered with a CNAME to the host and its
 * addresses — the stub resolver tries those expansions first (ndots:5), and answering them here
 * saves a round trip upstream per suffix. Immutable: a reload builds a new table.
 */
import { isIP } from 'node:net';
import { HostTable } from '../host-table.js';
import type { ServiceEntry } from '../istio-types.js';
import type { AllocatedAddress } from './auto-allocate.js';

export interface NameRecord {
  v4: string[];
  v6: string[];
}

export interface NameAnswer {
  /** The host the name stands for, when the question was a search-suffix expansion. */
  cname?: string;
  /** The addresses of the host (empty for a family it has none of: NODATA, not NXDOMAIN). */
  addresses: string[];
}

export class NameTable {
  private readonly hosts = new HostTable<NameRecord>();
  private readonly expansions = new Map<string, string>();

  constructor(entries: readonly ServiceEntry[], allocated: readonly AllocatedAddress[], search: readonly string[]) {
    const byHost = new Map<ServiceEntry, Map<string, AllocatedAddress>>();
    for (const a of allocated) {
      let hosts = byHost.get(a.entry);
      if (!hosts) byHost.set(a.entry, (hosts = new Map()));
      hosts.set(a.host, a);
    }
    for (const entry of entries) {
      for (const host of entry.hosts) {
        const record: NameRecord = { v4: [], v6: [] };
        const allocation = byHost.get(entry)?.get(host);
        if (allocation) {
          record.v4.push(allocation.v4);
          record.v6.push(allocation.v6);
        } else {
          for (const address of entry.addresses) {
            const family = isIP(address);
            if (family === 4) record.v4.push(address);
            else if (family === 6) record.v6.push(address);
          }
        }
        if (record.v4.length + record.v6.length === 0) continue;
        const name = host.toLowerCase();
        // A lone "*" would answer every name in the world; Istio's table has no such entry.
        if (name === '*') continue;
        this.hosts.add(name, record);
        if (name.startsWith('*')) continue;
        for (const suffix of search) {
          const expanded = `${name}.${suffix}`;
          if (!this.expansions.has(expanded)) this.expansions.set(expanded, name);
        }
      }
    }
  }

  /**
   * The local answer for `name` (case and trailing dot ignored) and an address family, or
   * undefined when the name is not ours and the question goes upstream.
   */
  lookup(name: string, family: 4 | 6): NameAnswer | undefined {
    const key = name.toLowerCase().replace(/\.$/, '');
    const target = this.expansions.get(key);
    // A name that is itself a host wins over the same text as an expansion of another host.
    const direct = this.hosts.lookup(key);
    if (direct) return { addresses: family === 4 ? direct.v4 : direct.v6 };
    if (target === undefined) return undefined;
    const record = this.hosts.lookup(target)!;
    return { cname: target, addresses: family === 4 ? record.v4 : record.v6 };
  }

  get size(): number {
    return this.hosts.size;
  }
}
