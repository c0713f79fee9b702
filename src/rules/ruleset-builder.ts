/**
 * Collects rules the way istio-iptables' builder does (append, insert at a position, per
 * family) and produces the final-order IR. Simulating inserts here means the IR holds each
 * chain exactly as the kernel will list it.
 *
 * The same calls also build the merged `inet` view (istio-nftables' builder): one list per
 * chain for both families, where a rule for 'both' appears once and unqualified, and inserts
 * count positions in the merged list — so the nftables chains come out in istio-nftables'
 * order without a second rule builder that could drift from this one.
 */
import type { IpFamily } from '../net/cidr.js';
import {
  isBuiltinChain,
  type BuiltinRules,
  type FamilyRuleset,
  type InetRule,
  type InetTable,
  type OwnedChain,
  type Rule,
  type TableName,
  type TableRuleset,
} from './ir.js';

const TABLE_ORDER: readonly TableName[] = ['raw', 'mangle', 'nat', 'filter'];

interface MutableTable {
  owned: Map<string, Rule[]>;
  builtinHead: Map<string, Rule[]>;
  builtinTail: Map<string, Rule[]>;
}

/** Which families a rule goes to. */
export type FamilySelector = IpFamily | 'both';

export class RulesetBuilder {
  private readonly families = new Map<IpFamily, Map<TableName, MutableTable>>();
  private readonly inet = new Map<TableName, Map<string, InetRule[]>>();

  constructor(private readonly enabled: readonly IpFamily[]) {
    for (const f of enabled) this.families.set(f, new Map());
  }

  /** `-A chain` in the selected families (ignored for a family that is not enabled). */
  append(family: FamilySelector, table: TableName, chain: string, rule: Rule): this {
    this.appendFamilyView(family, table, chain, rule);
    return this.appendInetView(family, table, chain, rule);
  }

  /**
   * Appends to the per-family (iptables) view only. For the few places where istio-iptables
   * and istio-nftables genuinely differ; pair it with appendInetView.
   */
  appendFamilyView(family: FamilySelector, table: TableName, chain: string, rule: Rule): this {
    for (const t of this.tablesFor(family, table)) {
      if (isBuiltinChain(table, chain)) listOf(t.builtinTail, chain).push(rule);
      else listOf(t.owned, chain).push(rule);
    }
    return this;
  }

  /** Appends to the merged inet (nftables) view only; 'both' means one unqualified rule. */
  appendInetView(family: FamilySelector, table: TableName, chain: string, rule: Rule): this {
    const entry = this.inetEntry(family, rule);
    if (entry) listOf(this.inetTable(table), chain).push(entry);
    return this;
  }

  /**
   * `-I chain position`. In a built-in chain, positions count from the top of interpose's own
   * head block (which sits above any foreign rule, as istio's `-I CHAIN 1` does).
   */
  insert(family: FamilySelector, table: TableName, chain: string, position: number, rule: Rule): this {
    for (const t of this.tablesFor(family, table)) {
      const list = isBuiltinChain(table, chain) ? listOf(t.builtinHead, chain) : listOf(t.owned, chain);
      list.splice(Math.min(position - 1, list.length), 0, rule);
    }
    // nft `insert rule … index N` (istio-nftables) counts from 0 in the merged chain.
    const entry = this.inetEntry(family, rule);
    if (entry) {
      const list = listOf(this.inetTable(table), chain);
      list.splice(Math.min(position - 1, list.length), 0, entry);
    }
    return this;
  }

  /** The merged inet view, tables in the usual order, chains in order of first use. */
  buildInet(): InetTable[] {
    return TABLE_ORDER.filter((name) => this.inet.has(name)).map((name) => ({
      table: name,
      chains: [...this.inet.get(name)!].map(([chain, rules]) => ({ name: chain, rules })),
    }));
  }

  private inetEntry(family: FamilySelector, rule: Rule): InetRule | undefined {
    // Unqualified even when only IPv4 is enabled: istio-nftables writes these rules so, and in
    // an inet table they then meet IPv6 packets too (unlike ip6tables, which stays empty).
    if (family === 'both') return { rule };
    return this.families.has(family) ? { rule, family } : undefined;
  }

  private inetTable(table: TableName): Map<string, InetRule[]> {
    let t = this.inet.get(table);
    if (!t) {
      t = new Map();
      this.inet.set(table, t);
    }
    return t;
  }

  build(): FamilyRuleset[] {
    const out: FamilyRuleset[] = [];
    for (const family of this.enabled) {
      const tables = this.families.get(family)!;
      const built: TableRuleset[] = [];
      for (const name of TABLE_ORDER) {
        const t = tables.get(name);
        if (!t) continue;
        const chains: OwnedChain[] = [...t.owned].map(([chainName, rules]) => ({ name: chainName, rules }));
        const builtinNames = new Set([...t.builtinHead.keys(), ...t.builtinTail.keys()]);
        const builtin: BuiltinRules[] = [...builtinNames].map((chain) => ({
          chain,
          head: t.builtinHead.get(chain) ?? [],
          tail: t.builtinTail.get(chain) ?? [],
        }));
        built.push({ table: name, chains, builtin });
      }
      out.push({ family, tables: built });
    }
    return out;
  }

  private tablesFor(family: FamilySelector, table: TableName): MutableTable[] {
    const fams: IpFamily[] = family === 'both' ? [4, 6] : [family];
    const result: MutableTable[] = [];
    for (const f of fams) {
      const tables = this.families.get(f);
      if (!tables) continue;
      let t = tables.get(table);
      if (!t) {
        t = { owned: new Map(), builtinHead: new Map(), builtinTail: new Map() };
        tables.set(table, t);
      }
      result.push(t);
    }
    return result;
  }
}

function listOf<T>(map: Map<string, T[]>, key: string): T[] {
  let list = map.get(key);
  if (!list) {
    list = [];
    map.set(key, list);
  }
  return list;
}
