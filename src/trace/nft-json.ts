/**
 * `nft -j list table inet NAME` (libnftables' JSON) → typed rules, the inverse of
 * rules/render/nftables.ts for every statement interpose writes; anything else is kept as
 * "not understood". Named interval sets become set lookups with their merged intervals.
 *
 * Rule text for display comes from `nft -a -y list table` (paired by rule handle), so a trace
 * shows each rule exactly as `nft list` does; without it, the text is rebuilt from the IR.
 */
import type { IpFamily } from '../net/cidr.js';
import { parseCidr } from '../net/cidr.js';
import type { ConntrackState, InetChain, InetTable, Match, Rule, TableName, Target } from '../rules/ir.js';
import { NFT_TABLE_NAMES, OWNED_NFT_TABLES, nftRuleText } from '../rules/render/nftables.js';
import { cidrRange, mergeRanges, type AddressRange } from './address-range.js';
import type { AddressSetMatch, BaseChain, ChainType, Hook, TraceMatch, TraceProgram, TraceRule, TraceTable } from './program.js';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- libnftables JSON is loosely typed

class Unsupported extends Error {}
const unsupported = (what: string): never => {
  throw new Unsupported(what);
};

/** The objects of one or more `nft -j` documents, flattened. */
function objects(docs: readonly Json[]): Json[] {
  return docs.flatMap((d) => (Array.isArray(d?.nftables) ? d.nftables : []));
}

const ROLE_BY_TABLE = new Map<string, TableName>(Object.entries(NFT_TABLE_NAMES).map(([role, name]) => [name, role as TableName]));

interface ParsedRule {
  matches: TraceMatch[];
  target: Target;
  family?: IpFamily;
}

function addressIntervals(value: Json, family: IpFamily, sets: ReadonlyMap<string, AddressRange[]>): { cidr?: ReturnType<typeof parseCidr>; intervals?: AddressRange[]; set?: string } {
  if (typeof value === 'string') {
    if (value.startsWith('@')) {
      const iv = sets.get(value.slice(1));
      if (!iv) unsupported(`unknown set ${value}`);
      return { intervals: iv!, set: value.slice(1) };
    }
    const c = parseCidr(value);
    if (!c || c.family !== family) unsupported(`address ${value}`);
    return { cidr: c };
  }
  if (value?.prefix) {
    const c = parseCidr(`${value.prefix.addr}/${value.prefix.len}`);
    if (!c || c.family !== family) unsupported(`prefix ${JSON.stringify(value)}`);
    return { cidr: c };
  }
  return { intervals: elementIntervals([value], family) };
}

/** Set elements (addresses, prefixes, ranges) → merged intervals. */
function elementIntervals(elems: readonly Json[], family: IpFamily): AddressRange[] {
  const out: AddressRange[] = [];
  for (const e of elems) {
    const v = e?.elem?.val ?? e;
    if (typeof v === 'string' || v?.prefix) {
      const c = typeof v === 'string' ? parseCidr(v) : parseCidr(`${v.prefix.addr}/${v.prefix.len}`);
      if (!c || c.family !== family) unsupported(`set element ${JSON.stringify(v)}`);
      out.push(cidrRange(c!));
    } else if (Array.isArray(v?.range)) {
      const [a, b] = v.range.map((x: string) => parseCidr(x));
      if (!a || !b || a.family !== family || b.family !== family) unsupported(`range ${JSON.stringify(v)}`);
      out.push({ family, start: cidrRange(a).start, end: cidrRange(b).start });
    } else {
      unsupported(`set element ${JSON.stringify(v)}`);
    }
  }
  return mergeRanges(out);
}

function num(v: Json): number {
  if (typeof v !== 'number') unsupported(`value ${JSON.stringify(v)}`);
  return v as number;
}

/** One rule's `expr` list → matches and one target. */
export function parseNftExpr(expr: readonly Json[], sets: ReadonlyMap<string, AddressRange[]>): ParsedRule {
  const matches: TraceMatch[] = [];
  const actions: Target[] = [];
  let family: IpFamily | undefined;
  let tproxyPort: number | undefined;
  let protocolFromPort: 'tcp' | 'udp' | undefined;
  let explicitProtocol = false;

  for (const stmt of expr) {
    const [kind] = Object.keys(stmt ?? {});
    const v = stmt[kind!];
    switch (kind) {
      case 'counter':
        continue;
      case 'match': {
        const op = v.op as string;
        const negate = op === '!=' ? { negate: true } : {};
        if (op !== '==' && op !== '!=' && op !== 'in') unsupported(`operator ${op}`);
        const left = v.left;
        const right = v.right;
        if (left?.meta) {
          switch (left.meta.key) {
            case 'l4proto':
              if (op !== '==' || (right !== 'tcp' && right !== 'udp')) unsupported(`meta l4proto ${op} ${JSON.stringify(right)}`);
              matches.push({ kind: 'protocol', protocol: right });
              explicitProtocol = true;
              continue;
            case 'nfproto':
              if (op !== '==' || (right !== 'ipv4' && right !== 'ipv6')) unsupported(`meta nfproto ${JSON.stringify(right)}`);
              family = right === 'ipv4' ? 4 : 6;
              continue;
            case 'iifname':
            case 'oifname':
              if (typeof right !== 'string') unsupported(`${left.meta.key} ${JSON.stringify(right)}`);
              // The IR spells the interface wildcard as iptables does (`eth+`); nft lists it as `eth*`.
              matches.push({ kind: left.meta.key === 'iifname' ? 'inInterface' : 'outInterface', name: right.endsWith('*') ? `${right.slice(0, -1)}+` : right, ...negate });
              continue;
            case 'skuid':
              matches.push({ kind: 'ownerUid', uid: num(right), ...negate });
              continue;
            case 'skgid':
              matches.push({ kind: 'ownerGid', gid: num(right), ...negate });
              continue;
            case 'mark':
              matches.push({ kind: 'mark', value: num(right), ...negate });
              continue;
            default:
              unsupported(`meta ${left.meta.key}`);
          }
        }
        if (left?.ct) {
          if (left.ct.key === 'state') {
            const states = (Array.isArray(right) ? right : [right]) as string[];
            if (op === '!=') unsupported('ct state !=');
            matches.push({ kind: 'conntrackState', states: states.map((s) => s.toUpperCase()) as ConntrackState[] });
            continue;
          }
          if (left.ct.key === 'mark' && op === '==') {
            matches.push({ kind: 'connmark', value: num(right) });
            continue;
          }
          unsupported(`ct ${left.ct.key}`);
        }
        if (left?.payload) {
          const { protocol, field } = left.payload;
          if ((protocol === 'ip' || protocol === 'ip6') && (field === 'saddr' || field === 'daddr')) {
            const fam: IpFamily = protocol === 'ip' ? 4 : 6;
            const kindName = field === 'saddr' ? 'source' : 'destination';
            const a = addressIntervals(right?.set ? undefined : right, fam, sets);
            if (right?.set) {
              const m: AddressSetMatch = { kind: 'addressSet', field: kindName, family: fam, name: '(anonymous)', ranges: elementIntervals(right.set, fam), ...negate };
              matches.push(m);
            } else if (a.cidr) {
              matches.push({ kind: kindName, cidr: a.cidr, ...negate });
            } else {
              const m: AddressSetMatch = { kind: 'addressSet', field: kindName, family: fam, name: a.set ?? '(range)', ranges: a.intervals!, ...negate };
              matches.push(m);
            }
            continue;
          }
          if ((protocol === 'tcp' || protocol === 'udp') && (field === 'dport' || field === 'sport')) {
            protocolFromPort = protocol;
            if (right?.set) {
              if (field !== 'dport') unsupported('sport set');
              matches.push({ kind: 'destinationPorts', ports: (right.set as Json[]).map(num), ...negate });
            } else if (field === 'dport') {
              matches.push({ kind: 'destinationPort', port: num(right), ...negate });
            } else {
              matches.push({ kind: 'sourcePort', port: num(right), ...negate });
            }
            continue;
          }
          unsupported(`payload ${protocol} ${field}`);
        }
        unsupported(`match ${JSON.stringify(left)}`);
        continue;
      }
      case 'jump':
        actions.push({ kind: 'jump', chain: v.target });
        continue;
      case 'return':
        actions.push({ kind: 'return' });
        continue;
      case 'accept':
        actions.push({ kind: 'accept' });
        continue;
      case 'drop':
        actions.push({ kind: 'drop' });
        continue;
      case 'redirect':
        if (typeof v?.port !== 'number') unsupported('redirect without a port');
        actions.push({ kind: 'redirect', toPort: v.port });
        continue;
      case 'tproxy':
        if (typeof v?.port !== 'number' || v.addr !== undefined) unsupported('tproxy form');
        tproxyPort = v.port;
        continue;
      case 'mangle': {
        const key = v.key;
        const value = v.value;
        if (key?.meta?.key === 'mark' && typeof value === 'number') actions.push({ kind: 'setMark', mark: value });
        else if (key?.meta?.key === 'mark' && value?.ct?.key === 'mark') actions.push({ kind: 'connmarkRestore' });
        else if (key?.ct?.key === 'mark' && value?.meta?.key === 'mark') actions.push({ kind: 'connmarkSave' });
        else if (key?.ct?.key === 'zone' && typeof value === 'number') actions.push({ kind: 'ctZone', zone: value });
        else unsupported(`mangle ${JSON.stringify(v)}`);
        continue;
      }
      default:
        unsupported(`statement ${kind}`);
    }
  }
  // `tcp dport …` implies the protocol; the IR spells it out.
  if (protocolFromPort && !explicitProtocol) matches.unshift({ kind: 'protocol', protocol: protocolFromPort });

  let target: Target;
  if (tproxyPort !== undefined) {
    // `tproxy ip to :PORT meta mark set MARK accept`: one IR target.
    const [mark, accept] = actions;
    if (actions.length !== 2 || mark?.kind !== 'setMark' || accept?.kind !== 'accept') unsupported('tproxy without "meta mark set … accept"');
    target = { kind: 'tproxy', onPort: tproxyPort, mark: (mark as { mark: number }).mark, mask: 0xffffffff };
  } else {
    if (actions.length !== 1) unsupported(actions.length === 0 ? 'no verdict or action' : 'several actions in one rule');
    target = actions[0]!;
  }
  return { matches, target, ...(family !== undefined ? { family } : {}) };
}

/** `rule … # handle 12` lines of `nft -a -y list`, by table, chain and handle. */
export function ruleTextsByHandle(listing: string): Map<string, string> {
  const out = new Map<string, string>();
  let table = '';
  let chain = '';
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    const t = /^table (\S+) (\S+) \{/.exec(line);
    if (t) {
      table = t[2]!;
      continue;
    }
    const c = /^chain (\S+) \{/.exec(line);
    if (c) {
      chain = c[1]!;
      continue;
    }
    const h = /^(.*\S)\s+# handle (\d+)$/.exec(line);
    if (h && chain !== '' && !/^(type|policy|set|chain|table) /.test(h[1]!)) {
      out.set(`${table}/${chain}/${h[2]}`, h[1]!.replace(/counter packets \d+ bytes \d+/g, 'counter'));
    }
  }
  return out;
}

export interface NftDumpTable {
  readonly name: string;
  readonly role: TableName;
  readonly chains: Array<{ name: string; base?: { hook: Hook; type: ChainType; priority: number }; rules: Array<TraceRule & { ir?: Rule }> }>;
}

/** Parses interpose's inet tables out of `nft -j` documents (other tables are ignored). */
export function parseNftJson(docs: readonly Json[], listing = '', tableNames: readonly string[] = OWNED_NFT_TABLES): NftDumpTable[] {
  const objs = objects(docs);
  const texts = ruleTextsByHandle(listing);
  const ours = (o: Json) => o?.family === 'inet' && tableNames.includes(o.table);
  const tables = new Map<string, NftDumpTable>();
  const setsByTable = new Map<string, Map<string, AddressRange[]>>();
  for (const o of objs) {
    if (o.table && o.table.family === 'inet' && tableNames.includes(o.table.name)) {
      const role = ROLE_BY_TABLE.get(o.table.name);
      if (role) tables.set(o.table.name, { name: o.table.name, role, chains: [] });
    }
  }
  for (const o of objs) {
    if (o.set && ours(o.set)) {
      const fam: IpFamily = o.set.type === 'ipv6_addr' ? 6 : 4;
      let m = setsByTable.get(o.set.table);
      if (!m) setsByTable.set(o.set.table, (m = new Map()));
      try {
        m.set(o.set.name, elementIntervals(o.set.elem ?? [], fam));
      } catch {
        // An unreadable set makes the rules using it "not understood", nothing worse.
      }
    }
    if (o.chain && ours(o.chain) && tables.has(o.chain.table)) {
      const base = o.chain.hook ? { hook: o.chain.hook as Hook, type: o.chain.type as ChainType, priority: Number(o.chain.prio) } : undefined;
      tables.get(o.chain.table)!.chains.push({ name: o.chain.name, ...(base ? { base } : {}), rules: [] });
    }
  }
  for (const o of objs) {
    if (!o.rule || !ours(o.rule)) continue;
    const table = tables.get(o.rule.table);
    const chain = table?.chains.find((c) => c.name === o.rule.chain);
    if (!table || !chain) continue;
    const listed = texts.get(`${o.rule.table}/${o.rule.chain}/${o.rule.handle}`);
    try {
      const r = parseNftExpr(o.rule.expr ?? [], setsByTable.get(o.rule.table) ?? new Map());
      const ir = r.matches.every((m) => m.kind !== 'addressSet') ? ({ matches: r.matches as Match[], target: r.target } as Rule) : undefined;
      const text = listed ?? (ir ? nftRuleText(ir, r.family) : JSON.stringify(o.rule.expr));
      chain.rules.push({ matches: r.matches, target: r.target, ...(r.family !== undefined ? { family: r.family } : {}), text, ...(ir ? { ir } : {}) });
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
      chain.rules.push({ matches: [], text: listed ?? JSON.stringify(o.rule.expr), unparsed: err.message });
    }
  }
  return [...tables.values()];
}

/** The parsed tables as a program to walk. */
export function programFromNftJson(docs: readonly Json[], listing: string, source: string): TraceProgram {
  const baseChains: BaseChain[] = [];
  for (const t of parseNftJson(docs, listing)) {
    const table: TraceTable = {
      label: `inet ${t.name}`,
      role: t.role,
      syntax: 'nft',
      families: [4, 6],
      chains: new Map(t.chains.map((c) => [c.name, c.rules])),
    };
    for (const c of t.chains) if (c.base) baseChains.push({ table, chain: c.name, ...c.base });
  }
  return { baseChains, source };
}

/** nft chain name → IR chain name: `output` → `OUTPUT`, `istio-output` → `ISTIO_OUTPUT`. */
export function irChainName(nftName: string): string {
  return nftName.toUpperCase().replace(/-/g, '_');
}

/**
 * The dump as the IR's merged inet view (for the round trip render → kernel → dump → parse).
 * Throws when a rule uses a set or anything else the IR cannot hold.
 */
export function inetTablesFromNftJson(docs: readonly Json[]): InetTable[] {
  return parseNftJson(docs).map((t) => ({
    table: t.role,
    chains: t.chains.map(
      (c): InetChain => ({
        name: irChainName(c.name),
        rules: c.rules.map((r) => {
          if (!r.ir) throw new Error(`not representable in the IR: ${r.text}${r.unparsed ? ` (${r.unparsed})` : ''}`);
          const target = r.ir.target.kind === 'jump' ? { kind: 'jump' as const, chain: irChainName(r.ir.target.chain) } : r.ir.target;
          return { rule: { matches: r.ir.matches, target }, ...(r.family !== undefined ? { family: r.family } : {}) };
        }),
      }),
    ),
  }));
}

