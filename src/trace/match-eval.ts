/**
 * Whether one match holds for a packet, and in words why not. Semantics are the kernel's:
 * iptables' `+` interface suffix and nft's `*` are prefix wildcards (nft takes `+` literally),
 * owner matches need a local socket, marks compare all 32 bits (interpose never masks them).
 */
import ipaddr from 'ipaddr.js';
import { addressInCidr } from '../net/cidr.js';
import { formatAddress } from '../net/ip-format.js';
import { rangesContain } from './address-range.js';
import type { RuleSyntax, TraceMatch } from './program.js';

/** The packet as the walker sees it at a given moment (NAT and marks change it). */
export interface PacketView {
  readonly family: 4 | 6;
  readonly protocol: 'tcp' | 'udp';
  readonly src: ipaddr.IPv4 | ipaddr.IPv6;
  readonly dst: ipaddr.IPv4 | ipaddr.IPv6;
  readonly sport: number;
  readonly dport: number;
  /** Undefined when the packet has no local socket (arriving packets, loopback re-entry). */
  readonly owner?: { uid: number; gid: number };
  readonly inInterface?: string;
  readonly outInterface?: string;
  readonly ctState: string;
  readonly mark: number;
  readonly ctMark: number;
}

export interface MatchResult {
  readonly ok: boolean;
  /** Why the match failed (undefined when it held). */
  readonly why?: string;
  /** Which kind of match failed. */
  readonly failed?: TraceMatch['kind'];
}

const hex = (n: number) => `0x${n.toString(16)}`;
const HOLD: MatchResult = { ok: true };
const fail = (why: string): MatchResult => ({ ok: false, why });

/**
 * Interface name test. The IR writes the prefix wildcard as iptables does (`eth+`), whichever
 * backend the rule came from: the nftables renderer installs it as `eth*`, and the nft dump
 * parser reads `eth*` back as `eth+`.
 */
export function interfaceMatches(pattern: string, name: string): boolean {
  if (pattern.endsWith('+')) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

/** Applies `negate` to a positive test and words the failure. */
function test(holds: boolean, negate: boolean | undefined, positive: string, negative: string): MatchResult {
  const result = negate ? !holds : holds;
  if (result) return HOLD;
  return fail(negate ? negative : positive);
}

export function evaluateMatch(m: TraceMatch, p: PacketView, syntax: RuleSyntax): MatchResult {
  switch (m.kind) {
    case 'source': {
      const a = formatAddress(p.src);
      if (m.cidr.family !== p.family) return fail(`source ${a} is not IPv${m.cidr.family}`);
      return test(addressInCidr(p.src, m.cidr), m.negate, `source ${a} is not in ${m.cidr.text}`, `source ${a} is in ${m.cidr.text}`);
    }
    case 'destination': {
      const a = formatAddress(p.dst);
      if (m.cidr.family !== p.family) return fail(`destination ${a} is not IPv${m.cidr.family}`);
      return test(addressInCidr(p.dst, m.cidr), m.negate, `destination ${a} is not in ${m.cidr.text}`, `destination ${a} is in ${m.cidr.text}`);
    }
    case 'addressSet': {
      const addr = m.field === 'source' ? p.src : p.dst;
      const a = formatAddress(addr);
      if (m.family !== p.family) return fail(`${m.field} ${a} is not IPv${m.family}`);
      return test(rangesContain(m.ranges, addr), m.negate, `${m.field} ${a} is not in set @${m.name}`, `${m.field} ${a} is in set @${m.name}`);
    }
    case 'inInterface': {
      if (p.inInterface === undefined) return fail('a locally generated packet has no input interface');
      const ok = interfaceMatches(m.name, p.inInterface);
      return test(ok, m.negate, `arrived on ${p.inInterface}, not ${m.name}`, `arrived on ${p.inInterface}`);
    }
    case 'outInterface': {
      if (p.outInterface === undefined) return fail('the output interface is not known yet (before routing)');
      const ok = interfaceMatches(m.name, p.outInterface);
      return test(ok, m.negate, `leaves by ${p.outInterface}, not ${m.name}`, `leaves by ${p.outInterface}`);
    }
    case 'protocol':
      return p.protocol === m.protocol ? HOLD : fail(`protocol is ${p.protocol}, not ${m.protocol}`);
    case 'destinationPort':
      return test(p.dport === m.port, m.negate, `destination port ${p.dport} is not ${m.port}`, `destination port is ${m.port}`);
    case 'sourcePort':
      return test(p.sport === m.port, m.negate, `source port ${p.sport} is not ${m.port}`, `source port is ${m.port}`);
    case 'destinationPorts':
      return test(
        m.ports.includes(p.dport),
        m.negate,
        `destination port ${p.dport} is not one of ${m.ports.join(',')}`,
        `destination port ${p.dport} is one of ${m.ports.join(',')}`,
      );
    case 'ownerUid':
      if (!p.owner) return fail('no local socket, so no owner to match');
      return test(p.owner.uid === m.uid, m.negate, `sent by uid ${p.owner.uid}, not ${m.uid}`, `sent by uid ${m.uid}`);
    case 'ownerGid':
      if (!p.owner) return fail('no local socket, so no owner to match');
      return test(p.owner.gid === m.gid, m.negate, `sent with gid ${p.owner.gid}, not ${m.gid}`, `sent with gid ${m.gid}`);
    case 'conntrackState':
      return m.states.includes(p.ctState as never)
        ? HOLD
        : fail(`conntrack state ${p.ctState} is not ${m.states.join(',')}`);
    case 'mark':
      return test(p.mark === m.value, m.negate, `packet mark ${hex(p.mark)} is not ${hex(m.value)}`, `packet mark is ${hex(m.value)}`);
    case 'connmark':
      return p.ctMark === m.value ? HOLD : fail(`connection mark ${hex(p.ctMark)} is not ${hex(m.value)}`);
    default:
      return assertNever(m);
  }
}

/** Every match must hold; the first that fails says why the rule was passed over. */
export function evaluateMatches(matches: readonly TraceMatch[], p: PacketView, syntax: RuleSyntax): MatchResult {
  for (const m of matches) {
    const r = evaluateMatch(m, p, syntax);
    if (!r.ok) return { ...r, failed: m.kind };
  }
  return HOLD;
}

function assertNever(x: never): never {
  throw new Error(`unhandled match ${JSON.stringify(x)}`);
}
