/** Nameserver lines of a resolv.conf, as istio reads them (miekg/dns ClientConfigFromFile). */
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
