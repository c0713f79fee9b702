/**
 * iptables-save text → typed rules, the inverse of rules/render/iptables.ts: every match and
 * target interpose writes is read back into the IR. A rule using anything else (a foreign
 * rule: addrtype, comment-only, DNAT …) is kept with its text and marked not understood, so a
 * trace still shows it and says it was assumed not to match.
 */
import type { IpFamily } from '../net/cidr.js';
import { parseCidr } from '../net/cidr.js';
import {
  BUILTIN_CHAINS,
  OWNED_CHAIN_PREFIX,
  isBuiltinChain,
  type ConntrackState,
  type FamilyRuleset,
  type Match,
  type Rule,
  type TableName,
  type TableRuleset,
  type Target,
} from '../rules/ir.js';
import { isTableName, parseIptablesSave } from '../rules/iptables-save-parser.js';
import { iptablesBaseChains, type BaseChain, type TraceProgram, type TraceRule, type TraceTable } from './program.js';

/** Tables the tracer reads: where interpose's rules live (filter holds none of ours). */
export const TRACED_TABLES: readonly TableName[] = ['raw', 'mangle', 'nat'];

export interface DumpedTable {
  readonly table: TableName;
  /** Chains in save order (built-in first, as iptables-save lists them). */
  readonly chains: ReadonlyArray<{ readonly name: string; readonly rules: readonly TraceRule[] }>;
}

/** Splits a rule spec into words, keeping double-quoted strings (comments) whole. */
function words(spec: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of spec.matchAll(re)) out.push(m[1] !== undefined ? m[1] : m[2]!);
  return out;
}

const FULL_MASK = 0xffffffff;

function hexOrDec(text: string): number | undefined {
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^\d+$/.test(text)) return Number(text);
  return undefined;
}

/** `0x539` or `0x539/0xffffffff` (interpose never uses a partial mask). */
function fullMark(text: string): number | undefined {
  const [v, mask] = text.split('/');
  const value = hexOrDec(v ?? '');
  if (value === undefined) return undefined;
  if (mask !== undefined && hexOrDec(mask) !== FULL_MASK) return undefined;
  return value;
}

class Unsupported extends Error {}
const unsupported = (what: string): never => {
  throw new Unsupported(what);
};

function port(text: string | undefined): number {
  const n = text !== undefined && /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1 && n <= 65535)) unsupported(`port ${text}`);
  return n;
}

/**
 * One rule spec (the part after `-A CHAIN `) → IR rule. Throws Unsupported for anything
 * interpose does not write itself.
 */
export function parseRuleSpec(spec: string, family: IpFamily, chains: ReadonlySet<string>): Rule {
  const w = words(spec);
  const matches: Match[] = [];
  let target: Target | undefined;
  let negate = false;
  let module = '';
  let i = 0;
  const next = () => {
    const v = w[++i];
    if (v === undefined) unsupported(`missing value after ${w[i - 1]}`);
    return v!;
  };
  const neg = () => {
    const n = negate;
    negate = false;
    return n ? { negate: true } : {};
  };
  for (; i < w.length; i++) {
    const t = w[i]!;
    switch (t) {
      case '!':
        negate = true;
        continue;
      case '-s':
      case '-d': {
        const c = parseCidr(next());
        if (!c || c.family !== family) unsupported(`address ${w[i]}`);
        matches.push({ kind: t === '-s' ? 'source' : 'destination', cidr: c!, ...neg() });
        continue;
      }
      case '-i':
      case '-o':
        matches.push({ kind: t === '-i' ? 'inInterface' : 'outInterface', name: next(), ...neg() });
        continue;
      case '-p': {
        const p = next();
        if (negate || (p !== 'tcp' && p !== 'udp')) unsupported(`protocol ${negate ? '! ' : ''}${p}`);
        matches.push({ kind: 'protocol', protocol: p as 'tcp' | 'udp' });
        continue;
      }
      case '-m':
        module = next();
        if (!['tcp', 'udp', 'multiport', 'owner', 'conntrack', 'mark', 'connmark', 'comment'].includes(module)) unsupported(`-m ${module}`);
        continue;
      case '--comment':
        next();
        continue;
      case '--dport':
      case '--sport':
        if (module !== 'tcp' && module !== 'udp') unsupported(`${t} outside -m tcp/udp`);
        matches.push({ kind: t === '--dport' ? 'destinationPort' : 'sourcePort', port: port(next()), ...neg() });
        continue;
      case '--dports':
        if (module !== 'multiport') unsupported('--dports outside -m multiport');
        matches.push({ kind: 'destinationPorts', ports: next().split(',').map(port), ...neg() });
        continue;
      case '--uid-owner':
      case '--gid-owner': {
        const id = hexOrDec(next());
        if (id === undefined) unsupported(`${t} ${w[i]}`);
        matches.push(t === '--uid-owner' ? { kind: 'ownerUid', uid: id!, ...neg() } : { kind: 'ownerGid', gid: id!, ...neg() });
        continue;
      }
      case '--ctstate': {
        if (negate) unsupported('! --ctstate');
        const states = next().split(',');
        if (!states.every((s) => ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED'].includes(s))) unsupported(`--ctstate ${w[i]}`);
        matches.push({ kind: 'conntrackState', states: states as ConntrackState[] });
        continue;
      }
      case '--mark': {
        const value = fullMark(next());
        if (value === undefined) unsupported(`--mark ${w[i]}`);
        if (module === 'mark') matches.push({ kind: 'mark', value: value!, ...neg() });
        else if (module === 'connmark' && !negate) matches.push({ kind: 'connmark', value: value! });
        else unsupported(`--mark in -m ${module}`);
        continue;
      }
      case '-j':
        target = parseTarget(w.slice(i + 1), family, chains);
        i = w.length;
        continue;
      default:
        unsupported(t);
    }
  }
  if (!target) unsupported('no target (a counting rule)');
  return { matches, target: target! };
}

function parseTarget(w: string[], family: IpFamily, chains: ReadonlySet<string>): Target {
  const [name, ...opts] = w;
  const opt = (flag: string) => {
    const k = opts.indexOf(flag);
    return k >= 0 ? opts[k + 1] : undefined;
  };
  const only = (...allowed: string[]) => {
    if (opts.length !== allowed.length || !allowed.every((a, k) => a === '*' || a === opts[k])) unsupported(`-j ${w.join(' ')}`);
  };
  switch (name) {
    case 'RETURN':
      only();
      return { kind: 'return' };
    case 'ACCEPT':
      only();
      return { kind: 'accept' };
    case 'DROP':
      only();
      return { kind: 'drop' };
    case 'REDIRECT':
      only('--to-ports', '*');
      return { kind: 'redirect', toPort: port(opt('--to-ports')) };
    case 'TPROXY': {
      only('--on-port', '*', '--on-ip', family === 4 ? '0.0.0.0' : '::', '--tproxy-mark', '*');
      const [m, k] = (opt('--tproxy-mark') ?? '').split('/');
      const mark = hexOrDec(m ?? '');
      const mask = hexOrDec(k ?? '');
      if (mark === undefined || mask === undefined) unsupported(`-j ${w.join(' ')}`);
      return { kind: 'tproxy', onPort: port(opt('--on-port')), mark: mark!, mask: mask! };
    }
    case 'MARK': {
      only('--set-xmark', '*');
      const [m, k] = (opt('--set-xmark') ?? '').split('/');
      const mark = hexOrDec(m ?? '');
      if (mark === undefined || hexOrDec(k ?? '') !== FULL_MASK) unsupported(`-j ${w.join(' ')}`);
      return { kind: 'setMark', mark: mark! };
    }
    case 'CONNMARK':
      if (opts[0] === '--save-mark') {
        only('--save-mark', '--nfmask', '0xffffffff', '--ctmask', '0xffffffff');
        return { kind: 'connmarkSave' };
      }
      only('--restore-mark', '--nfmask', '0xffffffff', '--ctmask', '0xffffffff');
      return { kind: 'connmarkRestore' };
    case 'CT': {
      only('--zone', '*');
      const zone = hexOrDec(opt('--zone') ?? '');
      if (zone === undefined) unsupported(`-j ${w.join(' ')}`);
      return { kind: 'ctZone', zone: zone! };
    }
    default:
      if (name === undefined || !chains.has(name) || opts.length > 0) unsupported(`-j ${w.join(' ')}`);
      return { kind: 'jump', chain: name! };
  }
}

/** Every table of one family's iptables-save output, each rule parsed or marked not understood. */
export function parseIptablesDump(text: string, family: IpFamily, tables: readonly TableName[] = TRACED_TABLES): DumpedTable[] {
  const out: DumpedTable[] = [];
  for (const saved of parseIptablesSave(text).values()) {
    if (!isTableName(saved.name) || !tables.includes(saved.name)) continue;
    const chains = new Map<string, TraceRule[]>(saved.chains.map((c) => [c, []]));
    for (const r of saved.rules) if (!chains.has(r.chain)) chains.set(r.chain, []);
    const names = new Set(chains.keys());
    for (const { chain, spec } of saved.rules) {
      const text = `-A ${chain}${spec ? ` ${spec}` : ''}`;
      let rule: TraceRule;
      try {
        const r = parseRuleSpec(spec, family, names);
        rule = { matches: r.matches, target: r.target, text };
      } catch (err) {
        if (!(err instanceof Unsupported)) throw err;
        rule = { matches: [], text, unparsed: err.message };
      }
      chains.get(chain)!.push(rule);
    }
    out.push({ table: saved.name, chains: [...chains].map(([name, rules]) => ({ name, rules })) });
  }
  return out;
}

/** One family's dump as tables to walk. */
export function iptablesTraceTables(text: string, family: IpFamily, tool: string): TraceTable[] {
  return parseIptablesDump(text, family).map((t) => ({
    label: `${tool} ${t.table}`,
    role: t.table,
    syntax: 'iptables' as const,
    families: [family],
    chains: new Map(t.chains.map((c) => [c.name, c.rules])),
  }));
}

/** The dumps of both families (either may be absent) as one program. */
export function programFromIptablesSave(dumps: ReadonlyArray<{ family: IpFamily; text: string; tool?: string }>, source: string): TraceProgram {
  const baseChains: BaseChain[] = [];
  for (const d of dumps) {
    const tool = d.tool ?? (d.family === 4 ? 'iptables' : 'ip6tables');
    for (const t of iptablesTraceTables(d.text, d.family, tool)) baseChains.push(...iptablesBaseChains(t));
  }
  return { baseChains, source };
}

/**
 * What interpose owns in one family's dump, as the IR: ISTIO_* chains and every rule in the
 * built-in chains (all in `tail`: a dump cannot tell head from tail). Throws when a rule is
 * not one interpose writes — the IR cannot hold it.
 */
export function familyRulesetFromSave(text: string, family: IpFamily): FamilyRuleset {
  const tables: TableRuleset[] = [];
  for (const t of parseIptablesDump(text, family, ['raw', 'mangle', 'nat', 'filter'])) {
    const toRule = (r: TraceRule): Rule => {
      if (!r.target) throw new Error(`not an interpose rule: ${r.text} (${r.unparsed})`);
      return { matches: r.matches as Match[], target: r.target };
    };
    const chains = t.chains
      .filter((c) => !isBuiltinChain(t.table, c.name) && c.name.startsWith(OWNED_CHAIN_PREFIX))
      .map((c) => ({ name: c.name, rules: c.rules.map(toRule) }));
    const builtin = t.chains
      .filter((c) => BUILTIN_CHAINS[t.table].includes(c.name) && c.rules.length > 0)
      .map((c) => ({ chain: c.name, head: [], tail: c.rules.map(toRule) }));
    if (chains.length > 0 || builtin.length > 0) tables.push({ table: t.table, chains, builtin });
  }
  return { family, tables };
}
