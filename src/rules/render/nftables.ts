/**
 * Ruleset IR → nftables: the inet tables istio-nftables installs (istio-proxy-nat,
 * istio-proxy-mangle, istio-proxy-raw) with its base chains, hooks and priorities.
 *
 * Every rule is written in the exact form `nft -y list table` prints it back (quoted interface
 * names, `/32` dropped, marks as 0x%08x, `meta l4proto` left out where a port match implies
 * it), so what the kernel holds compares with what a configuration wants as plain text: drift
 * detection relies on that, and a kernel test holds it true. Matches keep IR order, except that
 * `ct state` goes ahead of port matches, as istio-nftables writes it.
 *
 * Long address lists become interval sets (see ../nft-sets.ts). Needs nft >= 0.9.3 (`meta
 * l4proto` in inet, `tproxy ip to`), and the kernel's nf_tables with nft_tproxy for TPROXY.
 */
import type { Cidr, IpFamily } from '../../net/cidr.js';
import { formatAddress } from '../../net/ip-format.js';
import {
  isBuiltinChain,
  type ConntrackState,
  type FamilyRuleset,
  type InetChain,
  type InetRule,
  type InetTable,
  type Match,
  type Rule,
  type Ruleset,
  type TableName,
  type Target,
} from '../ir.js';
import { SET_THRESHOLD, mergeCidrsPacked, packedElements, type PackedIntervals } from '../nft-sets.js';
import { assertNever } from '../assert-never.js';

/** Our tables, by the iptables table whose role each plays (istio-nftables' names). */
export const NFT_TABLE_NAMES: Readonly<Record<TableName, string>> = {
  raw: 'istio-proxy-raw',
  mangle: 'istio-proxy-mangle',
  nat: 'istio-proxy-nat',
  filter: 'istio-proxy-filter',
};

/** Every table interpose owns in the inet family; nothing else is ever changed or deleted. */
export const OWNED_NFT_TABLES: readonly string[] = ['istio-proxy-nat', 'istio-proxy-mangle', 'istio-proxy-raw', 'istio-proxy-filter'];

/** A base chain's hook: what `type … hook … priority …` says. */
export interface NftBaseChain {
  readonly type: 'filter' | 'nat' | 'route';
  readonly hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  readonly priority: number;
}

export interface NftSet {
  readonly name: string;
  readonly family: IpFamily;
  /** Merged, sorted elements in `nft list` form (made on first use: a netlink apply needs none). */
  readonly elements: readonly string[];
  /** The same intervals in numbers: what the netlink apply sends. */
  readonly intervals: PackedIntervals;
}

/** Where a rendered rule came from: what the netlink apply compiles to expressions. */
export interface NftRuleSource {
  readonly rule: Rule;
  /** The family a rule without an address match of its own is limited to (`meta nfproto`). */
  readonly family?: IpFamily;
  /** The address match that became `ip daddr @name` (and so on). */
  readonly set?: { readonly match: Match; readonly name: string };
}

export interface NftChain {
  readonly name: string;
  readonly base?: NftBaseChain;
  /** Rules in `nft -y list` form, statement counters as a bare `counter`. */
  readonly rules: readonly string[];
  /** rules[i] rendered from sources[i]. */
  readonly sources: readonly NftRuleSource[];
}

export interface NftTable {
  readonly name: string;
  readonly sets: readonly NftSet[];
  readonly chains: readonly NftChain[];
}

export interface NftRenderOptions {
  /** Runs longer than this become an interval set; Infinity keeps one rule per CIDR. */
  readonly setThreshold?: number;
}

// The priorities istio-nftables uses (knftables' DNATPriority, ManglePriority, RawPriority).
const PRIORITY: Readonly<Record<TableName, number>> = { raw: -300, mangle: -150, nat: -100, filter: 0 };

/** The base chain a built-in chain name becomes in our table for that role. */
export function baseChainFor(table: TableName, chain: string): NftBaseChain {
  const hook = chain.toLowerCase() as NftBaseChain['hook'];
  if (table === 'nat') {
    // iptables' nat INPUT/POSTROUTING sit at srcnat (100); PREROUTING/OUTPUT at dstnat (-100).
    const priority = hook === 'input' || hook === 'postrouting' ? 100 : PRIORITY.nat;
    return { type: 'nat', hook, priority };
  }
  // A `route` chain re-routes a locally generated packet whose mark changed, as mangle OUTPUT does.
  const type = table === 'mangle' && hook === 'output' ? 'route' : 'filter';
  return { type, hook, priority: PRIORITY[table] };
}

/** nft chain name: built-in chains lower-case (`prerouting`), ours `ISTIO_OUTPUT` → `istio-output`. */
export function nftChainName(chain: string): string {
  return chain.toLowerCase().replace(/_/g, '-');
}

/** `type nat hook prerouting priority -100; policy accept;` as `nft -y list` prints it. */
export function baseChainHeader(base: NftBaseChain): string {
  return `type ${base.type} hook ${base.hook} priority ${base.priority}; policy accept;`;
}

const hex8 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
const neg = (negate: boolean | undefined) => (negate ? '!= ' : '');
const ipKeyword = (family: IpFamily) => (family === 4 ? 'ip' : 'ip6');

/** nft prints ct state bits in this order. */
const CT_STATE_ORDER: readonly ConntrackState[] = ['INVALID', 'ESTABLISHED', 'RELATED', 'NEW'];

function addressText(m: Extract<Match, { kind: 'source' | 'destination' }>): string {
  const full = m.cidr.prefixLength === (m.cidr.family === 4 ? 32 : 128);
  return full ? formatAddress(m.cidr.address) : m.cidr.text;
}

export const isPortMatch = (m: Match): boolean => m.kind === 'destinationPort' || m.kind === 'sourcePort' || m.kind === 'destinationPorts';
const isAddressMatch = (m: Match): m is Extract<Match, { kind: 'source' | 'destination' }> =>
  m.kind === 'source' || m.kind === 'destination';

/** The address family a rule is limited to by its own matches, if any. */
export function ruleFamily(rule: Rule): IpFamily | undefined {
  const a = rule.matches.find(isAddressMatch);
  return a?.cidr.family;
}

/** IR order, but `ct state` moved ahead of the first port match (istio-nftables' order). */
export function nftMatchOrder(matches: readonly Match[]): Match[] {
  const firstPort = matches.findIndex(isPortMatch);
  if (firstPort < 0) return [...matches];
  const ct = matches.filter((m, i) => m.kind === 'conntrackState' && i > firstPort);
  if (ct.length === 0) return [...matches];
  const rest = matches.filter((m) => !ct.includes(m));
  const at = rest.findIndex(isPortMatch);
  return [...rest.slice(0, at), ...ct, ...rest.slice(at)];
}

function matchText(m: Match, rule: Rule): string | undefined {
  const protocol = () => {
    const p = rule.matches.find((x) => x.kind === 'protocol');
    if (!p || p.kind !== 'protocol') throw new Error('a port match needs a protocol match in the same rule');
    return p.protocol;
  };
  switch (m.kind) {
    case 'source':
      return `${ipKeyword(m.cidr.family)} saddr ${neg(m.negate)}${addressText(m)}`;
    case 'destination':
      return `${ipKeyword(m.cidr.family)} daddr ${neg(m.negate)}${addressText(m)}`;
    case 'inInterface':
      return `iifname ${neg(m.negate)}"${nftInterfaceName(m.name)}"`;
    case 'outInterface':
      return `oifname ${neg(m.negate)}"${nftInterfaceName(m.name)}"`;
    case 'protocol':
      // `tcp dport` already matches the protocol; nft lists the explicit test only without one.
      return rule.matches.some(isPortMatch) ? undefined : `meta l4proto ${m.protocol}`;
    case 'destinationPort':
      return `${protocol()} dport ${neg(m.negate)}${m.port}`;
    case 'sourcePort':
      return `${protocol()} sport ${neg(m.negate)}${m.port}`;
    case 'destinationPorts': {
      const ports = [...new Set(m.ports)].sort((a, b) => a - b);
      const value = ports.length === 1 ? String(ports[0]) : `{ ${ports.join(', ')} }`;
      return `${protocol()} dport ${neg(m.negate)}${value}`;
    }
    case 'ownerUid':
      return `meta skuid ${neg(m.negate)}${m.uid}`;
    case 'ownerGid':
      return `meta skgid ${neg(m.negate)}${m.gid}`;
    case 'conntrackState':
      return `ct state ${CT_STATE_ORDER.filter((s) => m.states.includes(s)).map((s) => s.toLowerCase()).join(',')}`;
    case 'mark':
      return `meta mark ${neg(m.negate)}${hex8(m.value)}`;
    case 'connmark':
      return `ct mark ${hex8(m.value)}`;
    default:
      return assertNever(m);
  }
}

function targetText(t: Target, family: IpFamily | undefined): string {
  switch (t.kind) {
    case 'jump':
      return `counter jump ${nftChainName(t.chain)}`;
    case 'return':
      return 'counter return';
    case 'accept':
      return 'counter accept';
    case 'drop':
      return 'counter drop';
    case 'redirect':
      return `counter redirect to :${t.toPort}`;
    case 'tproxy': {
      if (t.mask !== 0xffffffff) throw new Error(`tproxy mark mask ${hex8(t.mask)}: only a full mask is rendered for nftables`);
      if (family === undefined) throw new Error('a tproxy rule needs an address family (an ip/ip6 match)');
      return `tproxy ${ipKeyword(family)} to :${t.onPort} meta mark set ${hex8(t.mark)} counter accept`;
    }
    case 'setMark':
      return `counter meta mark set ${hex8(t.mark)}`;
    case 'connmarkSave':
      return 'counter ct mark set meta mark';
    case 'connmarkRestore':
      return 'counter meta mark set ct mark';
    case 'ctZone':
      return `counter ct zone set ${t.zone}`;
    default:
      return assertNever(t);
  }
}

/**
 * One rule in `nft -y list` form. `family` limits a rule that has no address match of its own
 * (`meta nfproto`); `replace` swaps one match's text (an address match becoming `@set`).
 */
export function nftRuleText(rule: Rule, family?: IpFamily, replace?: { match: Match; text: string }): string {
  const own = ruleFamily(rule);
  const parts: string[] = [];
  if (family !== undefined && own === undefined) parts.push(`meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'}`);
  for (const m of nftMatchOrder(rule.matches)) {
    const text = replace && replace.match === m ? replace.text : matchText(m, rule);
    if (text !== undefined) parts.push(text);
  }
  parts.push(targetText(rule.target, own ?? family));
  return parts.join(' ');
}

const targetKeys = new WeakMap<Target, string>();
/** A cheap identity for a target (rules of a run share one; most share the same object). */
function targetKey(t: Target): string {
  let k = targetKeys.get(t);
  if (k === undefined) targetKeys.set(t, (k = JSON.stringify(t)));
  return k;
}

/**
 * For a rule whose only difference from its neighbours may be one non-negated address: the key
 * of everything else (rules with equal keys can share a set), or undefined. Runs once per CIDR
 * of a long list, so it builds one short string and no objects.
 */
function setKey(entry: InetRule): string | undefined {
  const matches = entry.rule.matches;
  let address: Match | undefined;
  let others = '';
  for (const m of matches) {
    if (isAddressMatch(m)) {
      if (address || m.negate) return undefined;
      address = m;
      others += m.kind === 'source' ? (m.cidr.family === 4 ? '|s4' : '|s6') : m.cidr.family === 4 ? '|d4' : '|d6';
    } else {
      others += `|${matchText(m, entry.rule) ?? ''}`;
    }
  }
  if (!address) return undefined;
  return `${entry.family ?? ''}${others}|${targetKey(entry.rule.target)}`;
}

/** Both rules are one non-negated address match of the same kind and family, same target and family limit. */
function sameLoneAddressShape(a: InetRule, b: InetRule): boolean {
  const ma = a.rule.matches;
  const mb = b.rule.matches;
  if (ma.length !== 1 || mb.length !== 1 || a.family !== b.family || a.rule.target !== b.rule.target) return false;
  const x = ma[0]!;
  const y = mb[0]!;
  return isAddressMatch(x) && isAddressMatch(y) && !x.negate && !y.negate && x.kind === y.kind && x.cidr.family === y.cidr.family;
}

/**
 * Targets that allow reordering within a run of rules sharing them: the outcome of such a run
 * is "the target, if any rule matches". For `jump` this holds because the chains we jump to
 * from such runs (ISTIO_REDIRECT, ISTIO_IN_REDIRECT) end in a verdict or do nothing twice.
 */
const groupableTarget = (t: Target) => t.kind === 'return' || t.kind === 'jump';

interface RenderedChain {
  rules: string[];
  sources: NftRuleSource[];
  sets: NftSet[];
}

/** An interval set whose text elements are made only when something reads them. */
export function nftSet(name: string, intervals: PackedIntervals): NftSet {
  let elements: readonly string[] | undefined;
  return {
    name,
    family: intervals.family,
    intervals,
    get elements() {
      return (elements ??= packedElements(intervals));
    },
  };
}

function renderChainRules(chain: InetChain, threshold: number, usedSetNames: Set<string>): RenderedChain {
  const out: RenderedChain = { rules: [], sources: [], sets: [] };
  const rules = chain.rules;
  let i = 0;
  while (i < rules.length) {
    // A maximal run of rules with the same groupable target.
    const target = rules[i]!.rule.target;
    let j = i + 1;
    if (groupableTarget(target)) {
      const key = targetKey(target);
      while (j < rules.length && (rules[j]!.rule.target === target || targetKey(rules[j]!.rule.target) === key)) j++;
    }
    const keys = new Array<string | undefined>(j - i);
    const counts = new Map<string, number>();
    // Consecutive rules that are a lone address match (one per CIDR of a long list) share
    // the previous rule's key string itself, and the maps are consulted once per stretch of
    // equal keys: no string to build, hash and look up per CIDR.
    let prev: InetRule | undefined;
    let prevKey: string | undefined;
    let stretch = 0;
    const countStretch = () => {
      if (prevKey !== undefined) counts.set(prevKey, (counts.get(prevKey) ?? 0) + stretch);
    };
    for (let k = i; k < j; k++) {
      const entry = rules[k]!;
      let key: string | undefined;
      if (j - i <= threshold) key = undefined;
      else if (prev && prevKey !== undefined && sameLoneAddressShape(entry, prev)) key = prevKey;
      else key = setKey(entry);
      keys[k - i] = key;
      prev = entry;
      if (key === prevKey && k > i) stretch++;
      else {
        countStretch();
        prevKey = key;
        stretch = 1;
      }
    }
    countStretch();
    const members = new Map<string, Cidr[]>();
    let listKey: string | undefined;
    let list: Cidr[] | undefined;
    for (let k = i; k < j; k++) {
      const key = keys[k - i];
      if (key !== listKey || k === i) {
        listKey = key;
        list = undefined;
        if (key !== undefined && counts.get(key)! > threshold) {
          list = members.get(key);
          if (!list) members.set(key, (list = []));
        }
      }
      if (list) list.push(addressOf(rules[k]!.rule).cidr);
    }
    const emitted = new Set<string>();
    let prevMember = false;
    for (let k = i; k < j; k++) {
      const entry = rules[k]!;
      const key = keys[k - i];
      // A group member right after one of the same group: already in the set.
      if (prevMember && key === keys[k - i - 1]) continue;
      const cidrs = key === undefined ? undefined : members.get(key);
      prevMember = cidrs !== undefined;
      if (!cidrs) {
        out.rules.push(nftRuleText(entry.rule, entry.family));
        out.sources.push(entry.family === undefined ? { rule: entry.rule } : { rule: entry.rule, family: entry.family });
        continue;
      }
      // The whole group goes where its first member stood; the rest are inside the set.
      if (emitted.has(key!)) continue;
      emitted.add(key!);
      const match = addressOf(entry.rule);
      const name = setName(chain.name, entry.rule.target, match.cidr.family, usedSetNames);
      out.sets.push(nftSet(name, mergeCidrsPacked(cidrs)));
      const field = match.kind === 'source' ? 'saddr' : 'daddr';
      out.rules.push(nftRuleText(entry.rule, entry.family, { match, text: `${ipKeyword(match.cidr.family)} ${field} @${name}` }));
      const set = { match, name };
      out.sources.push(entry.family === undefined ? { rule: entry.rule, set } : { rule: entry.rule, family: entry.family, set });
    }
    i = j;
  }
  return out;
}

function addressOf(rule: Rule): Extract<Match, { kind: 'source' | 'destination' }> {
  for (const m of rule.matches) if (isAddressMatch(m)) return m;
  throw new Error('addressOf: a rule without an address match');
}

/** `istio-output-return-v4`, `prerouting-istio-redirect-v6-2`: readable and unique per table. */
function setName(chain: string, target: Target, family: IpFamily, used: Set<string>): string {
  const what = target.kind === 'jump' ? nftChainName(target.chain) : target.kind;
  const base = `${nftChainName(chain)}-${what}-v${family}`;
  let name = base;
  for (let n = 2; used.has(name); n++) name = `${base}-${n}`;
  used.add(name);
  return name;
}

/**
 * A merged view for rulesets built without one: chains identical in both families are shared;
 * otherwise the IPv4 rules, then the IPv6 rules, each limited to its family. Correct for any
 * input (a packet only meets its own family's rules, in order), just not istio's interleaving.
 */
export function deriveInetView(families: readonly FamilyRuleset[]): InetTable[] {
  const tables = new Map<TableName, Map<string, Array<{ family: IpFamily; rules: readonly Rule[] }>>>();
  for (const f of families) {
    for (const t of f.tables) {
      let chains = tables.get(t.table);
      if (!chains) tables.set(t.table, (chains = new Map()));
      const add = (name: string, rules: readonly Rule[]) => {
        if (!chains!.has(name)) chains!.set(name, []);
        chains!.get(name)!.push({ family: f.family, rules });
      };
      for (const b of t.builtin) add(b.chain, [...b.head, ...b.tail]);
      for (const c of t.chains) add(c.name, c.rules);
    }
  }
  const order: TableName[] = ['raw', 'mangle', 'nat', 'filter'];
  return order
    .filter((t) => tables.has(t))
    .map((table) => ({
      table,
      chains: [...tables.get(table)!].map(([name, perFamily]) => {
        const texts = perFamily.map((p) => p.rules.map((r) => nftRuleText(r)).join('\n'));
        const shared = perFamily.length === families.length && texts.every((x) => x === texts[0]);
        const rules: InetRule[] = shared
          ? perFamily[0]!.rules.map((rule) => ({ rule }))
          : perFamily.flatMap((p) => p.rules.map((rule) => ({ rule, family: p.family })));
        return { name, rules };
      }),
    }));
}

/** The tables a ruleset installs, in nft-list form (the desired state and the script's source). */
export function renderNftTables(ruleset: Ruleset, options: NftRenderOptions = {}): NftTable[] {
  const threshold = options.setThreshold ?? SET_THRESHOLD;
  const view = ruleset.inet ?? deriveInetView(ruleset.families);
  const order: TableName[] = ['nat', 'mangle', 'raw', 'filter'];
  const out: NftTable[] = [];
  for (const tableName of order) {
    const t = view.find((x) => x.table === tableName);
    if (!t) continue;
    const name = NFT_TABLE_NAMES[tableName];
    const used = new Set<string>();
    const sets: NftSet[] = [];
    const chains: NftChain[] = [];
    // Base chains first (prerouting before output …), then ours in order of first use.
    const builtins = t.chains.filter((c) => isBuiltinChain(tableName, c.name));
    const hookOrder = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];
    builtins.sort((a, b) => hookOrder.indexOf(a.name) - hookOrder.indexOf(b.name));
    const owned = t.chains.filter((c) => !isBuiltinChain(tableName, c.name));
    for (const c of [...builtins, ...owned]) {
      if (c.rules.length === 0) continue;
      const rendered = renderChainRules(c, threshold, used);
      sets.push(...rendered.sets);
      const base = isBuiltinChain(tableName, c.name) ? baseChainFor(tableName, c.name) : undefined;
      const chain = { name: nftChainName(c.name), rules: rendered.rules, sources: rendered.sources };
      chains.push(base ? { ...chain, base } : chain);
    }
    if (chains.length > 0) out.push({ name, sets, chains });
  }
  return out;
}

/** One table as an nft block (the syntax `nft list` prints and `nft -f` reads). */
export function renderNftTableBlock(table: NftTable): string {
  const lines = [`table inet ${table.name} {`];
  for (const s of table.sets) {
    lines.push(`\tset ${s.name} {`, `\t\ttype ${s.family === 4 ? 'ipv4_addr' : 'ipv6_addr'}`, '\t\tflags interval');
    const rows: string[] = [];
    for (let i = 0; i < s.elements.length; i += 8) rows.push(s.elements.slice(i, i + 8).join(', '));
    lines.push(`\t\telements = { ${rows.join(',\n\t\t\t     ')} }`, '\t}');
  }
  for (const c of table.chains) {
    lines.push(`\tchain ${c.name} {`);
    if (c.base) lines.push(`\t\t${baseChainHeader(c.base)}`);
    for (const r of c.rules) lines.push(`\t\t${r}`);
    lines.push('\t}');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/**
 * The one `nft -f -` transaction: delete each table in `replace` (ours, existing or not:
 * `add` first makes the delete safe), `create` each table in `create` (known to be absent: the
 * transaction fails if one exists after all), then write `tables` afresh. The kernel applies
 * all of it or nothing.
 */
export function renderNftScript(tables: readonly NftTable[], replace: readonly string[], create: readonly string[] = []): string {
  let out = '';
  for (const name of replace) out += `add table inet ${name}\ndelete table inet ${name}\n`;
  for (const name of create) out += `create table inet ${name}\n`;
  for (const t of tables) out += renderNftTableBlock(t);
  return out;
}

/**
 * iptables' interface wildcard `eth+` (any name starting with eth) is `eth*` in nft, which
 * takes `+` literally: without this, `-c eth+` would exclude nothing on the nftables backend.
 */
export function nftInterfaceName(name: string): string {
  return name.endsWith('+') ? `${name.slice(0, -1)}*` : name;
}
