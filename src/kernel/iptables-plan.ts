/**
 * Compares what the kernel holds (parsed iptables-save) with what a configuration wants, and
 * writes the one iptables-restore transaction that turns one into the other. Pure: the
 * caller does the I/O.
 *
 * What interpose owns in a family: every ISTIO_* chain, and in the built-in chains every rule
 * that jumps to an ISTIO_* chain or is one this configuration installs there. Nothing else is
 * ever deleted.
 */
import type { IpFamily } from '../net/cidr.js';
import { OWNED_CHAIN_PREFIX, isBuiltinChain, type FamilyRuleset, type TableName } from '../rules/ir.js';
import { renderRuleSpec, renderTableRules } from '../rules/render/iptables.js';
import { isTableName, type SavedState } from '../rules/iptables-save-parser.js';


/** One table's interpose-owned content as text: owned chains and our rules in built-ins. */
export interface OwnedTable {
  /** Owned chain name → rule specs in order. */
  readonly chains: Map<string, string[]>;
  /** Built-in chain name → our rule specs in order (head then tail). */
  readonly builtin: Map<string, string[]>;
}

export type OwnedState = Map<TableName, OwnedTable>;

/**
 * What of ours a family held, as plain JSON (kept in the ownership record while a transaction
 * is pending): per table, our chains' rules and our built-in-chain rules with their 1-based
 * positions in the chain.
 */
export type OwnedSnapshot = Record<string, { chains: Record<string, string[]>; builtin: Record<string, Array<[number, string]>> }>;

const isOwnedChain = (name: string) => name.startsWith(OWNED_CHAIN_PREFIX);
const jumpsToOwned = (spec: string) => / -j ISTIO_\S+$|^-j ISTIO_\S+$/.test(spec);

/** The desired state as text, from the IR. */
export function desiredOwned(ruleset: FamilyRuleset): OwnedState {
  const out: OwnedState = new Map();
  for (const t of ruleset.tables) {
    const chains = new Map<string, string[]>();
    for (const c of t.chains) chains.set(c.name, c.rules.map((r) => renderRuleSpec(r, ruleset.family)));
    const builtin = new Map<string, string[]>();
    for (const b of t.builtin) {
      builtin.set(b.chain, [...b.head, ...b.tail].map((r) => renderRuleSpec(r, ruleset.family)));
    }
    out.set(t.table, { chains, builtin });
  }
  return out;
}

/**
 * What the kernel holds that interpose owns. `known` lists built-in-chain rules that count as
 * ours even though they do not jump to an ISTIO_* chain (e.g. `-i eth1 -j RETURN`).
 */
export function currentOwned(saved: SavedState, known: OwnedState): OwnedState {
  const out: OwnedState = new Map();
  for (const [name, table] of saved) {
    if (!isTableName(name)) continue;
    const chains = new Map<string, string[]>();
    for (const c of table.chains) if (isOwnedChain(c) && !isBuiltinChain(name, c)) chains.set(c, []);
    const builtin = new Map<string, string[]>();
    const knownBuiltin = known.get(name)?.builtin;
    for (const r of table.rules) {
      if (chains.has(r.chain)) {
        chains.get(r.chain)!.push(r.spec);
      } else if (isBuiltinChain(name, r.chain)) {
        const ours = jumpsToOwned(r.spec) || (knownBuiltin?.get(r.chain)?.includes(r.spec) ?? false);
        if (ours) {
          if (!builtin.has(r.chain)) builtin.set(r.chain, []);
          builtin.get(r.chain)!.push(r.spec);
        }
      }
    }
    if (chains.size > 0 || builtin.size > 0) out.set(name, { chains, builtin });
  }
  return out;
}

export function isEmptyOwned(state: OwnedState): boolean {
  for (const t of state.values()) {
    if (t.chains.size > 0) return false;
    for (const rules of t.builtin.values()) if (rules.length > 0) return false;
  }
  return true;
}

/** How many chains and rules an owned state holds. */
export function ownedCounts(state: OwnedState): { chains: number; rules: number } {
  let chains = 0;
  let rules = 0;
  for (const t of state.values()) {
    chains += t.chains.size;
    for (const specs of t.chains.values()) rules += specs.length;
    for (const specs of t.builtin.values()) rules += specs.length;
  }
  return { chains, rules };
}

/** Human-readable differences (missing / extra / changed), empty when identical. */
export function diffOwned(current: OwnedState, desired: OwnedState, family: IpFamily): string[] {
  const label = family === 4 ? 'IPv4' : 'IPv6';
  const diffs: string[] = [];
  const tables = new Set<TableName>([...current.keys(), ...desired.keys()]);
  for (const table of tables) {
    const cur = current.get(table) ?? { chains: new Map(), builtin: new Map() };
    const want = desired.get(table) ?? { chains: new Map(), builtin: new Map() };
    const chainNames = new Set([...cur.chains.keys(), ...want.chains.keys()]);
    for (const chain of chainNames) {
      const a = cur.chains.get(chain);
      const b = want.chains.get(chain);
      if (!a) diffs.push(`${label} ${table}: missing chain ${chain}`);
      else if (!b) diffs.push(`${label} ${table}: extra chain ${chain} (${a.length} rules)`);
      else diffs.push(...diffRules(`${label} ${table} ${chain}`, a, b));
    }
    const builtinNames = new Set([...cur.builtin.keys(), ...want.builtin.keys()]);
    for (const chain of builtinNames) {
      diffs.push(...diffRules(`${label} ${table} ${chain}`, cur.builtin.get(chain) ?? [], want.builtin.get(chain) ?? []));
    }
  }
  return diffs;
}

function diffRules(where: string, have: string[], want: string[]): string[] {
  if (have.length === want.length && have.every((s, i) => s === want[i])) return [];
  const out: string[] = [];
  for (const s of want) if (!have.includes(s)) out.push(`${where}: missing  -A ${chainOf(where)} ${s}`);
  for (const s of have) if (!want.includes(s)) out.push(`${where}: extra    -A ${chainOf(where)} ${s}`);
  if (out.length === 0) out.push(`${where}: same rules in a different order`);
  return out;
}

const chainOf = (where: string) => where.split(' ').pop()!;

/**
 * The restore transaction (for `iptables-restore --noflush`) that removes `current` and installs
 * `desired` (undefined = cleanup only). Empty string when there is nothing to do.
 */
export function transactionText(current: OwnedState, desired: FamilyRuleset | undefined): string {
  const wantText = desired ? desiredOwned(desired) : new Map<TableName, OwnedTable>();
  const tables = new Set<TableName>([...current.keys(), ...wantText.keys()]);
  const lines: string[] = [];
  for (const table of (['raw', 'mangle', 'nat', 'filter'] as const).filter((t) => tables.has(t))) {
    const cur = current.get(table);
    const want = desired?.tables.find((t) => t.table === table);
    const block: string[] = [];
    // Declaring a chain creates it or, if it exists, flushes it: our chains start empty.
    const owned = new Set<string>([...(cur?.chains.keys() ?? []), ...(want?.chains.map((c) => c.name) ?? [])]);
    for (const chain of owned) block.push(`:${chain} - [0:0]`);
    for (const [chain, specs] of cur?.builtin ?? []) for (const spec of specs) block.push(`-D ${chain} ${spec}`);
    for (const chain of cur?.chains.keys() ?? []) {
      if (!want?.chains.some((c) => c.name === chain)) block.push(`-X ${chain}`);
    }
    if (want && desired) block.push(...renderTableRules(want, desired.family));
    if (block.length > 0) lines.push(`*${table}`, ...block, 'COMMIT');
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

/** Tables a transaction touches (to snapshot and, on failure, restore). */
export function touchedTables(transaction: string): TableName[] {
  return [...transaction.matchAll(/^\*(\S+)$/gm)].map((m) => m[1]!).filter(isTableName);
}


/**
 * `-i IFACE -j RETURN` / `-o IFACE -j RETURN` in a nat or mangle PREROUTING/OUTPUT chain that
 * `known` does not install. They look exactly like the exclude-interface rules istio-init and
 * interpose write, but nothing marks them as ours (they jump to no ISTIO_* chain), so the
 * drift comparison cannot claim them: a leftover from an earlier configuration keeps that
 * interface uncaptured. Reported as warnings, since another tool may own them; rules already
 * in `reported` differences (the ownership record knew them) are left out.
 */
export function strayInterfaceReturns(saved: SavedState, known: OwnedState, reported: readonly string[]): string[] {
  const out: string[] = [];
  for (const table of ['nat', 'mangle'] as const) {
    for (const r of saved.get(table)?.rules ?? []) {
      if (r.chain !== 'PREROUTING' && r.chain !== 'OUTPUT') continue;
      if (!/^-[io] \S+ -j RETURN$/.test(r.spec)) continue;
      if (known.get(table)?.builtin.get(r.chain)?.includes(r.spec)) continue;
      if (reported.some((d) => d.endsWith(`-A ${r.chain} ${r.spec}`))) continue;
      out.push(`${table} ${r.chain}: "-A ${r.chain} ${r.spec}" is not in this configuration but looks like an exclude-interface rule (-c/-k) left by an earlier one; that interface bypasses interception`);
    }
  }
  return out;
}

/**
 * What of ours a family holds, with each built-in-chain rule's position in its chain: what an
 * undo puts back (ownership-record.linux.ts keeps it while a transaction is pending).
 * `known` as for currentOwned.
 */
export function ownedSnapshot(saved: SavedState, known: OwnedState): OwnedSnapshot {
  const out: OwnedSnapshot = {};
  for (const [name, table] of saved) {
    if (!isTableName(name)) continue;
    const chains: Record<string, string[]> = {};
    for (const c of table.chains) if (isOwnedChain(c) && !isBuiltinChain(name, c)) chains[c] = [];
    const builtin: Record<string, Array<[number, string]>> = {};
    const position = new Map<string, number>();
    const knownBuiltin = known.get(name)?.builtin;
    for (const r of table.rules) {
      const n = (position.get(r.chain) ?? 0) + 1;
      position.set(r.chain, n);
      // hasOwn: a foreign chain named toString or constructor is not one of ours.
      if (Object.hasOwn(chains, r.chain)) chains[r.chain]!.push(r.spec);
      else if (isBuiltinChain(name, r.chain) && (jumpsToOwned(r.spec) || (knownBuiltin?.get(r.chain)?.includes(r.spec) ?? false))) {
        (builtin[r.chain] ??= []).push([n, r.spec]);
      }
    }
    if (Object.keys(chains).length > 0 || Object.keys(builtin).length > 0) out[name] = { chains, builtin };
  }
  return out;
}

/**
 * The restore transaction (for `--noflush`) that turns what of ours a family holds now
 * (`current`) back into `previous`: our chains flushed and refilled or deleted, our built-in
 * rules deleted and the earlier ones inserted at their earlier positions (ascending, so each
 * lands where it was among the foreign rules, which an undo never touches). Empty string when
 * there is nothing to do.
 */
export function undoText(current: OwnedState, previous: OwnedSnapshot): string {
  const lines: string[] = [];
  for (const table of ['raw', 'mangle', 'nat', 'filter'] as const) {
    const cur = current.get(table);
    const prev = previous[table];
    if (!cur && !prev) continue;
    const block: string[] = [];
    const owned = new Set<string>([...(cur?.chains.keys() ?? []), ...Object.keys(prev?.chains ?? {})]);
    for (const chain of owned) block.push(`:${chain} - [0:0]`);
    for (const [chain, specs] of cur?.builtin ?? []) for (const spec of specs) block.push(`-D ${chain} ${spec}`);
    for (const chain of cur?.chains.keys() ?? []) if (!(chain in (prev?.chains ?? {}))) block.push(`-X ${chain}`);
    for (const [chain, specs] of Object.entries(prev?.builtin ?? {})) {
      for (const [pos, spec] of [...specs].sort((a, b) => a[0] - b[0])) block.push(`-I ${chain} ${pos} ${spec}`);
    }
    for (const [chain, specs] of Object.entries(prev?.chains ?? {})) for (const spec of specs) block.push(`-A ${chain} ${spec}`);
    if (block.length > 0) lines.push(`*${table}`, ...block, 'COMMIT');
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

/**
 * Rules in chains that are not ours (foreign user chains) jumping to one of ours that
 * `removed` lists: the kernel refuses to delete a chain something still jumps to, and the
 * jump is not ours to remove. One line per rule, naming table and chain.
 */
export function foreignJumps(saved: SavedState, removed: ReadonlyMap<TableName, readonly string[]>): string[] {
  const out: string[] = [];
  for (const [table, chains] of removed) {
    const targets = new Set(chains);
    for (const r of saved.get(table)?.rules ?? []) {
      if (isOwnedChain(r.chain) || isBuiltinChain(table, r.chain)) continue;
      const m = /(?:^|\s)-[jg] (\S+)/.exec(r.spec);
      if (m && targets.has(m[1]!)) out.push(`${table}: foreign chain ${r.chain} jumps to ${m[1]} ("-A ${r.chain} ${r.spec}")`);
    }
  }
  return out;
}

/** Chains a transaction text deletes (`-X`), per table. */
export function deletedChains(transaction: string): Map<TableName, string[]> {
  const out = new Map<TableName, string[]>();
  let table: TableName | undefined;
  for (const line of transaction.split('\n')) {
    if (line.startsWith('*')) table = isTableName(line.slice(1)) ? (line.slice(1) as TableName) : undefined;
    const m = /^-X (\S+)$/.exec(line);
    if (m && table) out.set(table, [...(out.get(table) ?? []), m[1]!]);
  }
  return out;
}
