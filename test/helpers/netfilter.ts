/** Reading netfilter state out of a test namespace, normalised for comparison. */
import type { Netns } from './kernel.js';

/**
 * iptables-save + ip6tables-save without comments and counters. Tables holding nothing but
 * empty built-in chains are dropped: iptables-nft creates a table on first use and an empty
 * one behaves exactly like an absent one.
 */
export async function netfilterState(ns: Netns): Promise<string> {
  const out: string[] = [];
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const r = await ns.exec([tool]);
    out.push(`### ${tool}`);
    for (const block of String(r.stdout).split(/^COMMIT$/m)) {
      const lines = block
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith('#'))
        .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'));
      const meaningful = lines.some((l) => l.startsWith('-A') || (l.startsWith(':') && / - \[/.test(l)));
      const policyChanged = lines.some((l) => l.startsWith(':') && !/ ACCEPT \[/.test(l) && !/ - \[/.test(l));
      if (meaningful || policyChanged) out.push(...lines, 'COMMIT');
    }
  }
  return out.join('\n');
}

export async function policyRouting(ns: Netns): Promise<string> {
  const parts: string[] = [];
  for (const fam of ['-4', '-6']) {
    parts.push(String((await ns.exec(['ip', fam, 'rule', 'show'])).stdout));
    parts.push(String((await ns.exec(['ip', fam, 'route', 'show', 'table', 'all'], { reject: false })).stdout));
  }
  return parts.join('\n');
}
