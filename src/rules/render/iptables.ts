/**
 * Ruleset IR → iptables-restore text. Each rule is written in the exact canonical form
 * iptables-save prints (option order, `-m tcp`, hex marks, masked CIDRs), so a rule read back
 * from the kernel compares with the rendered one as plain text: drift detection and cleanup
 * rely on that, and a kernel test holds it true.
 */
import type { IpFamily } from '../../net/cidr.js';
import type { FamilyRuleset, Match, Rule, TableRuleset, Target } from '../ir.js';
import { assertNever } from '../assert-never.js';

const hex = (n: number) => `0x${n.toString(16)}`;
const neg = (negate: boolean | undefined) => (negate ? '! ' : '');

/** The rule's options and target as iptables-save prints them (without `-A CHAIN`). */
export function renderRuleSpec(rule: Rule, family: IpFamily): string {
  const parts: string[] = [];
  const find = <K extends Match['kind']>(kind: K) =>
    rule.matches.find((m) => m.kind === kind) as Extract<Match, { kind: K }> | undefined;

  // iptables-save prints the IP header fields first, in this order, whatever the input order.
  const s = find('source');
  if (s && !matchesEverything(s)) parts.push(`${neg(s.negate)}-s ${s.cidr.text}`);
  const d = find('destination');
  if (d && !matchesEverything(d)) parts.push(`${neg(d.negate)}-d ${d.cidr.text}`);
  const i = find('inInterface');
  if (i) parts.push(`${neg(i.negate)}-i ${i.name}`);
  const o = find('outInterface');
  if (o) parts.push(`${neg(o.negate)}-o ${o.name}`);
  const p = find('protocol');
  if (p) parts.push(`-p ${p.protocol}`);

  for (const m of rule.matches) {
    switch (m.kind) {
      case 'source':
      case 'destination':
      case 'inInterface':
      case 'outInterface':
      case 'protocol':
        break;
      case 'destinationPort':
        parts.push(`-m ${requireProtocol(rule)} ${neg(m.negate)}--dport ${m.port}`);
        break;
      case 'sourcePort':
        parts.push(`-m ${requireProtocol(rule)} ${neg(m.negate)}--sport ${m.port}`);
        break;
      case 'destinationPorts':
        requireProtocol(rule);
        parts.push(`-m multiport ${neg(m.negate)}--dports ${m.ports.join(',')}`);
        break;
      case 'ownerUid':
        parts.push(`-m owner ${neg(m.negate)}--uid-owner ${m.uid}`);
        break;
      case 'ownerGid':
        parts.push(`-m owner ${neg(m.negate)}--gid-owner ${m.gid}`);
        break;
      case 'conntrackState':
        parts.push(`-m conntrack --ctstate ${m.states.join(',')}`);
        break;
      case 'mark':
        parts.push(`-m mark ${neg(m.negate)}--mark ${hex(m.value)}`);
        break;
      case 'connmark':
        parts.push(`-m connmark --mark ${hex(m.value)}`);
        break;
      default:
        assertNever(m);
    }
  }
  parts.push(renderTarget(rule.target, family));
  return parts.join(' ');
}

/**
 * `-d 0.0.0.0/0` (or `::/0`) is no match at all: the kernel stores a zero mask, and
 * iptables-save prints nothing for it. Writing it would make the rule read back as different.
 */
function matchesEverything(m: Extract<Match, { kind: 'source' | 'destination' }>): boolean {
  return !m.negate && m.cidr.prefixLength === 0;
}

function renderTarget(t: Target, family: IpFamily): string {
  switch (t.kind) {
    case 'jump':
      return `-j ${t.chain}`;
    case 'return':
      return '-j RETURN';
    case 'accept':
      return '-j ACCEPT';
    case 'drop':
      return '-j DROP';
    case 'redirect':
      return `-j REDIRECT --to-ports ${t.toPort}`;
    case 'tproxy':
      return `-j TPROXY --on-port ${t.onPort} --on-ip ${family === 4 ? '0.0.0.0' : '::'} --tproxy-mark ${hex(t.mark)}/${hex(t.mask)}`;
    case 'setMark':
      return `-j MARK --set-xmark ${hex(t.mark)}/0xffffffff`;
    case 'connmarkSave':
      return '-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff';
    case 'connmarkRestore':
      return '-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff';
    case 'ctZone':
      return `-j CT --zone ${t.zone}`;
    default:
      return assertNever(t);
  }
}

function requireProtocol(rule: Rule): string {
  const p = rule.matches.find((m) => m.kind === 'protocol');
  if (!p || p.kind !== 'protocol') throw new Error('a port match needs a protocol match in the same rule');
  return p.protocol;
}

/** Lines of one table for a fresh install: chain declarations, then every rule. */
export function renderTableLines(t: TableRuleset, family: IpFamily): string[] {
  const lines = [`*${t.table}`];
  for (const c of t.chains) lines.push(`:${c.name} - [0:0]`);
  lines.push(...renderTableRules(t, family), 'COMMIT');
  return lines;
}

/**
 * The commands that add one table's rules to empty chains: head rules inserted at the top of
 * the built-in chains (in order), tail rules appended, then the owned chains' rules.
 */
export function renderTableRules(t: TableRuleset, family: IpFamily): string[] {
  const lines: string[] = [];
  for (const b of t.builtin) {
    b.head.forEach((r, i) => lines.push(`-I ${b.chain} ${i + 1} ${renderRuleSpec(r, family)}`));
    for (const r of b.tail) lines.push(`-A ${b.chain} ${renderRuleSpec(r, family)}`);
  }
  for (const c of t.chains) for (const r of c.rules) lines.push(`-A ${c.name} ${renderRuleSpec(r, family)}`);
  return lines;
}

/** iptables-restore input (for `--noflush`) installing one family's rules on a clean kernel. */
export function renderRestore(ruleset: FamilyRuleset): string {
  return ruleset.tables.flatMap((t) => renderTableLines(t, ruleset.family)).join('\n') + '\n';
}
