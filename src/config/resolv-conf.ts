/** Nameserver lines of a resolv.conf, as istio reads them (miekg/dns ClientConfigFromFile). */
import { isIP } from 'node:net';
import { parseCidr, type Cidr } from '../net/cidr.js';

export function nameserversFromResolvConf(text: string): { v4: Cidr[]; v6: Cidr[] } {
  const v4: Cidr[] = [];
  const v6: Cidr[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const server = parseCidr(m[1]!.replace(/%.*$/, ''));
    // A nameserver line holds a single address; anything else is skipped as resolvers do.
    if (!server || m[1]!.includes('/')) continue;
    (server.family === 4 ? v4 : v6).push(server);
  }
  return { v4, v6 };
}

/** What a stub resolver takes from resolv.conf: where to ask, which suffixes to try, how long to wait. */
export interface ResolverSettings {
  /** Nameserver addresses in file order (zone ids dropped), at most three as glibc reads. */
  nameservers: string[];
  /** The `search` list (or the `domain` line when no `search` follows it), lower case. */
  search: string[];
  /** `options timeout:N` in milliseconds; glibc's default 5 s, capped at its maximum 30 s. */
  timeoutMs: number;
}

/** The nameserver, search and timeout settings of a resolv.conf, the way glibc reads them (resolv.conf(5)). */
export function resolverSettings(text: string): ResolverSettings {
  const nameservers: string[] = [];
  let search: string[] = [];
  let timeoutMs = 5000;
  for (const raw of text.split('\n')) {
    const words = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    const [key, ...rest] = words;
    if (key === 'nameserver' && rest.length > 0) {
      const address = rest[0]!.replace(/%.*$/, '');
      // glibc uses the first three nameserver lines and skips what is not an address.
      if (isIP(address) !== 0 && nameservers.length < 3) nameservers.push(address);
    } else if (key === 'search' || key === 'domain') {
      // The last `search` or `domain` line wins.
      search = rest.filter((d) => d.length > 0).map((d) => d.toLowerCase().replace(/\.$/, ''));
    } else if (key === 'options') {
      for (const option of rest) {
        const m = /^timeout:(\d+)$/.exec(option);
        if (m) timeoutMs = Math.min(Number(m[1]), 30) * 1000;
      }
    }
  }
  return { nameservers, search, timeoutMs: Math.max(timeoutMs, 1000) };
}
