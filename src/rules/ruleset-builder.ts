/**
 * Collects rules the way istio-iptables' builder does (append, insert at a position, per
 * family) and produces the final-order IR. Simulating inserts here means the IR holds each
 * chain exactly as the kernel will list it.
 */
import type { IpFamily } from '../net/cidr.js';
import {
  isBuiltinChain,
  type BuiltinRules,
  type FamilyRuleset,
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

  constructor(private readonly enabled: readonly IpFamily[]) {
    for (const f of enabled) this.families.set(f, new Map());
  }

  /** `-A chain` in the selected families (ignored for a family that is not enabled). */
  append(family: FamilySelector, table: TableName, chain: string, rule: Rule): this {
    for (const t of this.tablesFor(family, table)) {
      if (isBuiltinChain(table, chain)) listOf(t.builtinTail, chain).push(rule);
      else listOf(t.owned, chain).push(rule);
    }
    return this;
  }

  /**
   * `-I chain position`. In a built-in chain, positions count from the top of interpose's own
   * head block (which sits above any foreign rule, as istio's `-I … 1` does).
   */
  insert(family: FamilySelector, table: TableName, chain: string, position: number, rule: Rule): this {
    for (const t of this.tablesFor(family, table)) {
      const list = isBuiltinChain(table, chain) ? listOf(t.builtinHead, chain) : listOf(t.owned, chain);
      list.splice(Math.min(position - 1, list.length), 0, rule);
    }
    return this;
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

function listOf(map: Map<string, Rule[]>, key: string): Rule[] {
  let list = map.get(key);
  if (!list) {
    list = [];
    map.set(key, list);
  }
  return list;
}
