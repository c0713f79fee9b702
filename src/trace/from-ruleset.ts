/**
 * Ruleset IR (what a configuration would install) → TraceProgram, in the syntax of the backend
 * that would install it: iptables (one table per family, rules as iptables-save prints them)
 * or nftables (istio-nftables' inet tables, rules as `nft list` prints them).
 *
 * The nft view walks the IR's per-CIDR rules; where the renderer would fold a long CIDR list
 * into an interval set the outcome is the same (the set holds exactly those addresses), only
 * the rule text shown differs from `nft list`'s `@set` form.
 */
import { isBuiltinChain, type Rule, type Ruleset, type TableName, type Target } from '../rules/ir.js';
import { renderRuleSpec } from '../rules/render/iptables.js';
import { NFT_TABLE_NAMES, baseChainFor, deriveInetView, nftChainName, nftRuleText } from '../rules/render/nftables.js';
import { iptablesBaseChains, type BaseChain, type TraceProgram, type TraceRule, type TraceTable } from './program.js';

const BUILTIN_ORDER = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

/** iptables syntax: each family's tables exactly as `iptables-save` would list them. */
export function programFromRulesetIptables(ruleset: Ruleset, source = 'configuration (iptables)'): TraceProgram {
  const baseChains: BaseChain[] = [];
  for (const f of ruleset.families) {
    const tool = f.family === 4 ? 'iptables' : 'ip6tables';
    for (const t of f.tables) {
      const chains = new Map<string, TraceRule[]>();
      const toTrace = (chain: string, r: Rule): TraceRule => ({
        matches: r.matches,
        target: r.target,
        text: `-A ${chain} ${renderRuleSpec(r, f.family)}`,
      });
      for (const b of [...t.builtin].sort((a, c) => BUILTIN_ORDER.indexOf(a.chain) - BUILTIN_ORDER.indexOf(c.chain))) {
        chains.set(b.chain, [...b.head, ...b.tail].map((r) => toTrace(b.chain, r)));
      }
      for (const c of t.chains) chains.set(c.name, c.rules.map((r) => toTrace(c.name, r)));
      const table: TraceTable = { label: `${tool} ${t.table}`, role: t.table, syntax: 'iptables', families: [f.family], chains };
      baseChains.push(...iptablesBaseChains(table));
    }
  }
  return { baseChains, source };
}

/** nftables syntax: the inet tables the nftables backend would install. */
export function programFromRulesetNft(ruleset: Ruleset, source = 'configuration (nftables)'): TraceProgram {
  const view = ruleset.inet ?? deriveInetView(ruleset.families);
  const baseChains: BaseChain[] = [];
  for (const t of view) {
    const chains = new Map<string, TraceRule[]>();
    for (const c of t.chains) {
      chains.set(
        nftChainName(c.name),
        c.rules.map((entry) => ({
          matches: entry.rule.matches,
          target: nftTarget(entry.rule.target),
          ...(entry.family !== undefined ? { family: entry.family } : {}),
          text: nftRuleText(entry.rule, entry.family),
        })),
      );
    }
    const table: TraceTable = {
      label: `inet ${NFT_TABLE_NAMES[t.table]}`,
      role: t.table,
      syntax: 'nft',
      // An inet table sees both families, whatever the configuration enabled; rules limited
      // to one family say so themselves (`ip daddr`, `meta nfproto`).
      families: [4, 6],
      chains,
    };
    for (const c of t.chains) {
      if (!isBuiltinChain(t.table as TableName, c.name)) continue;
      const base = baseChainFor(t.table, c.name);
      baseChains.push({ table, chain: nftChainName(c.name), hook: base.hook, type: base.type, priority: base.priority });
    }
  }
  return { baseChains, source };
}

/** nft chain names are lower-case with dashes; jumps must use them too. */
function nftTarget(t: Target): Target {
  return t.kind === 'jump' ? { kind: 'jump', chain: nftChainName(t.chain) } : t;
}
