/**
 * The Ruleset IR: tables, chains and rules as typed data. One IR, several consumers: the
 * iptables renderer, the nftables renderer, the packet tracer and drift detection all read
 * it, so they cannot disagree about what a rule means.
 */
import type { Cidr, IpFamily } from '../net/cidr.js';

export type TableName = 'raw' | 'mangle' | 'nat' | 'filter';

/** Built-in chains of each table (what iptables-save lists with a policy). */
export const BUILTIN_CHAINS: Readonly<Record<TableName, readonly string[]>> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

export function isBuiltinChain(table: TableName, chain: string): boolean {
  return BUILTIN_CHAINS[table].includes(chain);
}

export type L4Protocol = 'tcp' | 'udp';

/** A packet property a rule tests. `negate` inverts the test (iptables `!`). */
export type Match =
  | { kind: 'source'; cidr: Cidr; negate?: boolean }
  | { kind: 'destination'; cidr: Cidr; negate?: boolean }
  | { kind: 'inInterface'; name: string; negate?: boolean }
  | { kind: 'outInterface'; name: string; negate?: boolean }
  | { kind: 'protocol'; protocol: L4Protocol }
  /** Single destination port; needs a `protocol` match in the same rule. */
  | { kind: 'destinationPort'; port: number; negate?: boolean }
  /** Single source port; needs a `protocol` match in the same rule. */
  | { kind: 'sourcePort'; port: number; negate?: boolean }
  /** Up to 15 destination ports (the kernel's multiport limit). */
  | { kind: 'destinationPorts'; ports: readonly number[]; negate?: boolean }
  | { kind: 'ownerUid'; uid: number; negate?: boolean }
  | { kind: 'ownerGid'; gid: number; negate?: boolean }
  | { kind: 'conntrackState'; states: readonly ConntrackState[] }
  | { kind: 'mark'; value: number; negate?: boolean }
  | { kind: 'connmark'; value: number };

export type ConntrackState = 'INVALID' | 'NEW' | 'RELATED' | 'ESTABLISHED';

/** What a rule does when every match holds. */
export type Target =
  | { kind: 'jump'; chain: string }
  | { kind: 'return' }
  | { kind: 'accept' }
  | { kind: 'drop' }
  | { kind: 'redirect'; toPort: number }
  | { kind: 'tproxy'; onPort: number; mark: number; mask: number }
  | { kind: 'setMark'; mark: number }
  | { kind: 'connmarkSave' }
  | { kind: 'connmarkRestore' }
  | { kind: 'ctZone'; zone: number };

export interface Rule {
  readonly matches: readonly Match[];
  readonly target: Target;
}

/** A chain interpose owns outright: created (or flushed) and filled on every apply. */
export interface OwnedChain {
  readonly name: string;
  readonly rules: readonly Rule[];
}

/**
 * Rules interpose places in a built-in chain it shares with others: `head` goes above every
 * existing rule (iptables `-I CHAIN 1`), `tail` below (`-A CHAIN`), each in final order.
 */
export interface BuiltinRules {
  readonly chain: string;
  readonly head: readonly Rule[];
  readonly tail: readonly Rule[];
}

export interface TableRuleset {
  readonly table: TableName;
  /** Owned chains, in the order they were first used. */
  readonly chains: readonly OwnedChain[];
  readonly builtin: readonly BuiltinRules[];
}

/** Everything interpose installs for one address family. */
export interface FamilyRuleset {
  readonly family: IpFamily;
  readonly tables: readonly TableRuleset[];
}

/**
 * One rule of the merged view an nftables `inet` table holds. `family` is set when the rule
 * applies to that address family only (its matches say so, e.g. `ip daddr`); a rule without
 * it applies to every packet, IPv4 and IPv6 alike.
 */
export interface InetRule {
  readonly rule: Rule;
  readonly family?: IpFamily;
}

/** A chain of the merged view: a built-in chain name (base chain) or an owned one. */
export interface InetChain {
  readonly name: string;
  readonly rules: readonly InetRule[];
}

export interface InetTable {
  readonly table: TableName;
  /** Chains in the order they were first used. */
  readonly chains: readonly InetChain[];
}

/** The whole install: IPv4 always, IPv6 when enabled; plus policy routing for TPROXY. */
export interface Ruleset {
  readonly families: readonly FamilyRuleset[];
  /**
   * The same rules merged the way one nftables `inet` table holds them: built from the same
   * builder calls as `families`, in call order, so IPv4 and IPv6 rules interleave as
   * istio-nftables interleaves them and a rule shared by both families appears once. Absent
   * for hand-made rulesets; the nftables renderer then derives a merged view from `families`.
   */
  readonly inet?: readonly InetTable[];
  readonly tproxyRoutes?: TproxyRoutes;
}

/** `ip rule add fwmark MARK lookup TABLE` + `ip route add local default dev lo table TABLE`. */
export interface TproxyRoutes {
  readonly mark: number;
  readonly table: number;
  readonly families: readonly IpFamily[];
}

/** Prefix of every chain interpose (and istio-init) owns. */
export const OWNED_CHAIN_PREFIX = 'ISTIO_';
