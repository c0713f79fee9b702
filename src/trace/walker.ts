/**
 * Walks a packet through a TraceProgram the way netfilter does:
 *
 *   outbound (locally generated): OUTPUT hook, then POSTROUTING; a packet that leaves by `lo`
 *     (addressed to this host, or redirected) comes straight back in: PREROUTING, then INPUT,
 *     without its socket (loopback orphans it) and without nat (the connection's NAT is set).
 *   inbound (from the network, for this host): PREROUTING, then INPUT.
 *
 * At each hook the base chains run in priority order (raw -300, mangle -150, nat -100 …).
 * nat chains see only a connection's first packet (conntrack NEW): for any other state they
 * are skipped and the report says the packet follows its connection's earlier decision. Once
 * a nat chain has set a binding, later nat chains at that hook are skipped too, as the kernel
 * does. Verdicts that involve nat therefore assume a NEW connection; the result says so.
 */
import ipaddr from 'ipaddr.js';
import { evaluateMatches, type PacketView } from './match-eval.js';
import { endpoint, type TracePacket } from './packet.js';
import type { BaseChain, Hook, TraceProgram, TraceRule } from './program.js';
import type { Verdict } from './verdict.js';

/** istio-agent's DNS proxy port: a redirect of port 53 there is a DNS redirect. */
import { AGENT_DNS_PORT as DNS_AGENT_PORT } from '../rules/istio-ruleset.js';

/** One line of the path: a base chain entered, a rule looked at, a chain left. */
export type TraceStep =
  | { readonly kind: 'hook'; readonly hook: Hook; readonly table: string; readonly chain: string; readonly priority: number; readonly note?: string }
  | { readonly kind: 'skip'; readonly hook: Hook; readonly table: string; readonly chain: string; readonly why: string }
  | { readonly kind: 'rule'; readonly depth: number; readonly chain: string; readonly text: string; readonly matched: boolean; readonly why?: string; readonly effect?: string }
  | { readonly kind: 'leave'; readonly depth: number; readonly chain: string; readonly why: string };

/** The rule that decided, with the jumps that led to it (outermost first). */
export interface Decision {
  readonly table: string;
  readonly hook: Hook;
  readonly chain: string;
  /** The deciding rule's text, or undefined when no rule matched (`why` says so). */
  readonly rule?: string;
  readonly via: readonly string[];
  readonly why: string;
  /**
   * When no rule matched: the rules of that chain that would have captured the packet
   * (jumps, REDIRECT, TPROXY), each with the reason it did not match — except those that
   * failed on the interface (the loopback paths), which say nothing about this packet.
   */
  readonly missed?: ReadonlyArray<{ readonly rule: string; readonly why: string }>;
}

export interface TraceResult {
  readonly verdict: Verdict;
  readonly decidedBy: readonly Decision[];
  readonly steps: readonly TraceStep[];
  /** Where the packet ends up: destination after NAT, marks. */
  readonly final: { readonly destination: string; readonly mark: number; readonly ctMark: number; readonly ctZone?: number };
  /** Caveats: NEW-connection assumption, rules not understood, chains not found. */
  readonly notes: readonly string[];
}

interface MutablePacket {
  family: 4 | 6;
  protocol: 'tcp' | 'udp';
  src: ipaddr.IPv4 | ipaddr.IPv6;
  dst: ipaddr.IPv4 | ipaddr.IPv6;
  sport: number;
  dport: number;
  owner?: { uid: number; gid: number };
  inInterface?: string;
  outInterface?: string;
  ctState: string;
  mark: number;
  ctMark: number;
  ctZone?: number;
}

type Outcome =
  | { kind: 'continue' }
  | { kind: 'drop' }
  | { kind: 'redirect'; port: number }
  | { kind: 'tproxy'; port: number };

interface ChainRun {
  outcome: Outcome;
  decision?: Decision;
  active: boolean;
}

const HOOK_ORDER: Record<'outbound' | 'inbound', Hook[]> = {
  outbound: ['output', 'postrouting'],
  inbound: ['prerouting', 'input'],
};

export function tracePacket(program: TraceProgram, packet: TracePacket): TraceResult {
  const p: MutablePacket = {
    family: packet.family,
    protocol: packet.protocol,
    src: packet.src,
    dst: packet.dst,
    sport: packet.sport,
    dport: packet.dport,
    ctState: packet.ctState,
    mark: packet.mark,
    ctMark: packet.ctMark,
    ...(packet.direction === 'outbound' ? { owner: { uid: packet.uid, gid: packet.gid } } : {}),
    ...(packet.outInterface !== undefined ? { outInterface: packet.outInterface } : {}),
    ...(packet.inInterface !== undefined ? { inInterface: packet.inInterface } : {}),
  };
  const steps: TraceStep[] = [];
  const notes: string[] = [];
  const decisions: Decision[] = [];
  let verdict: Verdict | undefined;
  let redirected: { port: number; decision?: Decision } | undefined;
  let tproxied: { port: number; decision?: Decision } | undefined;
  let natConsulted = false;

  const runHooks = (hooks: Hook[], reentry: boolean) => {
    for (const hook of hooks) {
      let natBound = false;
      const chains = program.baseChains
        .filter((b) => b.hook === hook && b.table.families.includes(p.family))
        .sort((a, b) => a.priority - b.priority);
      for (const base of chains) {
        // An empty base chain (iptables-save lists every built-in one) decides nothing.
        if ((base.table.chains.get(base.chain)?.length ?? 0) === 0) continue;
        if (base.type === 'nat') {
          const why = reentry
            ? 'nat is not consulted again: the connection got its NAT decision when it left'
            : p.ctState !== 'NEW'
              ? `nat rules see only a connection's first packet; a ${p.ctState} packet follows the decision its connection's first packet got (trace that one with --state NEW)`
              : natBound
                ? 'an earlier nat chain at this hook already set the NAT binding'
                : undefined;
          if (why) {
            steps.push({ kind: 'skip', hook, table: base.table.label, chain: base.chain, why });
            continue;
          }
          natConsulted = true;
        }
        steps.push({ kind: 'hook', hook, table: base.table.label, chain: base.chain, priority: base.priority });
        const run = walkBaseChain(base, p, steps, notes);
        if (run.outcome.kind === 'drop') {
          verdict = { kind: 'drop' };
          if (run.decision) decisions.push(run.decision);
          return;
        }
        if (run.outcome.kind === 'redirect') {
          natBound = true;
          redirected = { port: run.outcome.port, ...(run.decision ? { decision: run.decision } : {}) };
          // REDIRECT in OUTPUT maps to the loopback address; in PREROUTING to the primary
          // address of the incoming interface (we keep the destination address: it is local).
          if (hook === 'output') {
            p.dst = ipaddr.parse(p.family === 4 ? '127.0.0.1' : '::1') as ipaddr.IPv4 | ipaddr.IPv6;
            p.outInterface = 'lo';
          }
          p.dport = run.outcome.port;
        } else if (run.outcome.kind === 'tproxy') {
          tproxied = { port: run.outcome.port, ...(run.decision ? { decision: run.decision } : {}) };
        } else if (run.decision && run.active && isCapturePoint(base)) {
          decisions.push(run.decision);
        }
      }
    }
  };

  runHooks(HOOK_ORDER[packet.direction], false);
  if (!verdict && packet.direction === 'outbound' && p.outInterface === 'lo') {
    // Loopback hands the packet back to this host: PREROUTING and INPUT, as arriving on lo.
    delete p.owner;
    p.inInterface = 'lo';
    delete p.outInterface;
    runHooks(['prerouting', 'input'], true);
  }

  if (!verdict) {
    if (tproxied) {
      verdict = { kind: 'tproxy', port: tproxied.port, mark: p.mark };
      notes.push(
        `TPROXY delivers only to a transparent socket (IP_TRANSPARENT) listening on port ${tproxied.port}, reached through the policy route for the mark; without one the kernel drops the packet`,
      );
      decisions.length = 0;
      if (tproxied.decision) decisions.push(tproxied.decision);
    } else if (redirected) {
      const dns = packet.dport === 53 && (redirected.port === DNS_AGENT_PORT || /dns/i.test(redirected.decision?.chain ?? ''));
      verdict = dns ? { kind: 'dns-redirect', port: redirected.port } : { kind: 'redirect', port: redirected.port };
      decisions.length = 0;
      if (redirected.decision) decisions.push(redirected.decision);
    } else {
      verdict = { kind: 'untouched' };
    }
  }
  if (natConsulted) {
    notes.unshift(
      "assumes a NEW connection (its first packet): nat rules decide only then, and every later packet of the connection follows that decision",
    );
  }
  const out: TraceResult['final'] = {
    destination: endpoint(p.dst, p.dport),
    mark: p.mark,
    ctMark: p.ctMark,
    ...(p.ctZone !== undefined ? { ctZone: p.ctZone } : {}),
  };
  return { verdict, decidedBy: decisions, steps, final: out, notes: [...new Set(notes)] };
}

/** Chains where capture is decided: nat OUTPUT/PREROUTING (REDIRECT) and mangle PREROUTING (TPROXY). */
function isCapturePoint(base: BaseChain): boolean {
  if (base.type === 'nat') return base.hook === 'output' || base.hook === 'prerouting';
  return base.table.role === 'mangle' && base.hook === 'prerouting';
}

interface Frame {
  chain: string;
  rules: readonly TraceRule[];
  index: number;
  /** The rule that jumped here (undefined for the base chain). */
  caller?: string;
  /** Capturing rules of this chain that did not match, and why. */
  missed: Array<{ rule: string; why: string }>;
}

const captures = (t: TraceRule['target']) => t !== undefined && (t.kind === 'jump' || t.kind === 'redirect' || t.kind === 'tproxy');

function walkBaseChain(base: BaseChain, p: MutablePacket, steps: TraceStep[], notes: string[]): ChainRun {
  const table = base.table;
  const stack: Frame[] = [{ chain: base.chain, rules: table.chains.get(base.chain) ?? [], index: 0, missed: [] }];
  const view = (): PacketView => p;
  const via = () => stack.map((f) => f.caller).filter((c): c is string => c !== undefined);
  const decision = (rule: string | undefined, chain: string, why: string, jumps = via()): Decision => ({
    table: table.label,
    hook: base.hook,
    chain,
    ...(rule !== undefined ? { rule } : {}),
    via: jumps,
    why,
  });
  let last: Decision | undefined;
  let active = false;

  for (;;) {
    const frame = stack[stack.length - 1]!;
    if (frame.index >= frame.rules.length) {
      const depth = stack.length - 1;
      if (depth === 0) {
        steps.push({ kind: 'leave', depth, chain: frame.chain, why: 'end of base chain: policy ACCEPT' });
        return { outcome: { kind: 'continue' }, ...(last ? { decision: last } : {}), active };
      }
      steps.push({ kind: 'leave', depth, chain: frame.chain, why: `end of ${frame.chain}, back to ${stack[depth - 1]!.chain}` });
      last = { ...decision(undefined, frame.chain, `no rule in ${frame.chain} matched`), missed: frame.missed };
      stack.pop();
      continue;
    }
    const rule = frame.rules[frame.index++]!;
    if (rule.family !== undefined && rule.family !== p.family) continue;
    const depth = stack.length - 1;
    if (!rule.target) {
      steps.push({ kind: 'rule', depth, chain: frame.chain, text: rule.text, matched: false, why: `not understood (${rule.unparsed ?? 'unknown'}); assumed not to match` });
      notes.push(`a rule the tracer does not understand was assumed not to match: ${rule.text}`);
      continue;
    }
    const r = evaluateMatches(rule.matches, view(), table.syntax);
    if (!r.ok) {
      // Interface rules (the loopback paths) are not near misses worth listing for this packet.
      if (captures(rule.target) && r.failed !== 'outInterface' && r.failed !== 'inInterface') frame.missed.push({ rule: rule.text, why: r.why ?? 'did not match' });
      steps.push({ kind: 'rule', depth, chain: frame.chain, text: rule.text, matched: false, ...(r.why ? { why: r.why } : {}) });
      continue;
    }
    const t = rule.target;
    const matched = (effect?: string) =>
      steps.push({ kind: 'rule', depth, chain: frame.chain, text: rule.text, matched: true, ...(effect ? { effect } : {}) });
    switch (t.kind) {
      case 'jump': {
        const rules = table.chains.get(t.chain);
        if (!rules) {
          matched(`jump to ${t.chain}, which does not exist here; skipped`);
          notes.push(`chain ${t.chain} of ${table.label} was not in the rules read; the jump was skipped`);
          continue;
        }
        matched(`jump to ${t.chain}`);
        active = true;
        stack.push({ chain: t.chain, rules, index: 0, caller: rule.text, missed: [] });
        continue;
      }
      case 'return':
        if (depth === 0) {
          matched('return from the base chain: policy ACCEPT');
          return { outcome: { kind: 'continue' }, decision: decision(rule.text, frame.chain, 'RETURN in the base chain: the packet is left alone'), active: true };
        }
        matched(`return to ${stack[depth - 1]!.chain}`);
        last = decision(rule.text, frame.chain, `RETURN: leaves ${frame.chain} without being captured`);
        stack.pop();
        continue;
      case 'accept':
        matched(`accept: ${table.label} ${base.chain} ends here`);
        return { outcome: { kind: 'continue' }, decision: decision(rule.text, frame.chain, 'ACCEPT'), active: true };
      case 'drop':
        matched('drop');
        return { outcome: { kind: 'drop' }, decision: decision(rule.text, frame.chain, 'DROP'), active: true };
      case 'redirect':
        matched(`redirect to port ${t.toPort}`);
        return { outcome: { kind: 'redirect', port: t.toPort }, decision: decision(rule.text, frame.chain, `REDIRECT to port ${t.toPort}`), active: true };
      case 'tproxy':
        p.mark = (p.mark & ~t.mask) ^ t.mark;
        p.mark >>>= 0;
        matched(`TPROXY to port ${t.onPort}, mark set to 0x${p.mark.toString(16)}`);
        return { outcome: { kind: 'tproxy', port: t.onPort }, decision: decision(rule.text, frame.chain, `TPROXY to port ${t.onPort}`), active: true };
      case 'setMark':
        p.mark = t.mark >>> 0;
        matched(`mark set to 0x${t.mark.toString(16)}`);
        continue;
      case 'connmarkSave':
        p.ctMark = p.mark;
        matched(`connection mark set to 0x${p.mark.toString(16)}`);
        continue;
      case 'connmarkRestore':
        p.mark = p.ctMark;
        matched(`mark set to the connection mark 0x${p.ctMark.toString(16)}`);
        continue;
      case 'ctZone':
        p.ctZone = t.zone;
        matched(`conntrack zone ${t.zone}`);
        continue;
      default:
        return assertNever(t);
    }
  }
}

function assertNever(x: never): never {
  throw new Error(`unhandled target ${JSON.stringify(x)}`);
}
