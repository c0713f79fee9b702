/**
 * What the tracer walks: netfilter base chains at their hooks, the chains they reach, and each
 * rule as typed matches and a target plus the text the user knows it by (an iptables-save
 * line or an nft rule). One shape for every source — the Ruleset IR built from flags, an
 * iptables-save dump, an `nft -j` dump — so one walker explains them all.
 */
import type { IpFamily } from '../net/cidr.js';
import type { Match, TableName, Target } from '../rules/ir.js';
import type { AddressRange } from './address-range.js';

/** A named nft set used as an address match (`ip daddr @name`): its merged ranges. */
export interface AddressSetMatch {
  readonly kind: 'addressSet';
  readonly field: 'source' | 'destination';
  readonly family: IpFamily;
  readonly name: string;
  readonly ranges: readonly AddressRange[];
  readonly negate?: boolean;
}

/** An IR match, or an nft set lookup (the IR has no sets: the renderer makes them). */
export type TraceMatch = Match | AddressSetMatch;

export interface TraceRule {
  readonly matches: readonly TraceMatch[];
  /** Undefined for a rule the parser did not understand (see `unparsed`). */
  readonly target?: Target;
  /** Set when the rule applies to one address family only (inet tables). */
  readonly family?: IpFamily;
  /** The rule as the user sees it: `-A CHAIN …` (iptables) or the nft statement line. */
  readonly text: string;
  /** Why the rule could not be read; the walker assumes it does not match and says so. */
  readonly unparsed?: string;
}

export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
export type ChainType = 'filter' | 'nat' | 'route';
export type RuleSyntax = 'iptables' | 'nft';

/** One table: `nat` of iptables (per family) or `inet istio-proxy-nat`. */
export interface TraceTable {
  /** How output names it: `iptables nat`, `ip6tables mangle`, `inet istio-proxy-nat`. */
  readonly label: string;
  /** The iptables table whose role this table plays. */
  readonly role: TableName;
  readonly syntax: RuleSyntax;
  /** Families whose packets this table sees (one for iptables, both for inet). */
  readonly families: readonly IpFamily[];
  readonly chains: ReadonlyMap<string, readonly TraceRule[]>;
}

/** A chain attached to a netfilter hook. */
export interface BaseChain {
  readonly table: TraceTable;
  readonly chain: string;
  readonly hook: Hook;
  readonly type: ChainType;
  readonly priority: number;
}

export interface TraceProgram {
  readonly baseChains: readonly BaseChain[];
  /** Where the rules came from, for the report (`flags (iptables)`, `kernel: iptables-nft`). */
  readonly source: string;
}

/** iptables' table priorities (NF_IP_PRI_*) and chain types; nft uses the same numbers. */
export const IPTABLES_HOOKS: Readonly<Record<TableName, { priority: number; type: ChainType }>> = {
  raw: { priority: -300, type: 'filter' },
  mangle: { priority: -150, type: 'filter' },
  nat: { priority: -100, type: 'nat' },
  filter: { priority: 0, type: 'filter' },
};

/** The base chains of one iptables table: every built-in chain it has, at its hook. */
export function iptablesBaseChains(table: TraceTable): BaseChain[] {
  const { priority, type } = IPTABLES_HOOKS[table.role];
  const out: BaseChain[] = [];
  for (const name of ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']) {
    if (!table.chains.has(name)) continue;
    const hook = name.toLowerCase() as Hook;
    // nat INPUT and POSTROUTING are source-NAT hooks, at priority 100.
    const p = table.role === 'nat' && (hook === 'input' || hook === 'postrouting') ? 100 : priority;
    // mangle OUTPUT re-routes a packet whose mark changed (nft's `type route`).
    const t = table.role === 'mangle' && hook === 'output' ? 'route' : type;
    out.push({ table, chain: name, hook, type: t, priority: p });
  }
  return out;
}
