/**
 * The packet a trace follows: the first packet of a connection (or a later one, with
 * `ctState`), with the socket's owner for locally generated traffic.
 */
import ipaddr from 'ipaddr.js';
import { ValidationError } from '../errors/validation-error.js';
import type { IpFamily } from '../net/cidr.js';
import { parseStrictAddress } from '../net/cidr.js';
import type { ConntrackState, L4Protocol } from '../rules/ir.js';
import { formatAddress } from '../net/ip-format.js';
import { kernelDestination, unmapped } from './kernel-destination.js';

/** Locally generated (OUTPUT) or arriving from the network for this host (PREROUTING). */
export type Direction = 'outbound' | 'inbound';

export interface TracePacket {
  readonly family: IpFamily;
  readonly protocol: L4Protocol;
  readonly src: ipaddr.IPv4 | ipaddr.IPv6;
  readonly dst: ipaddr.IPv4 | ipaddr.IPv6;
  readonly sport: number;
  readonly dport: number;
  readonly direction: Direction;
  /** Owner of the sending socket (outbound only; inbound packets have none). */
  readonly uid: number;
  readonly gid: number;
  /** Interface the packet leaves by (outbound) or arrives on (inbound). */
  readonly outInterface?: string;
  readonly inInterface?: string;
  /** Conntrack state of the packet; NEW is the first packet of a connection. */
  readonly ctState: ConntrackState;
  /** Packet mark (skb->mark) and connection mark when the trace starts. */
  readonly mark: number;
  readonly ctMark: number;
  /**
   * Set when the kernel rewrote the destination given before OUTPUT (an IPv4-mapped or
   * unspecified address, see kernel-destination.ts): the address as given, and why `dst` differs.
   */
  readonly dstRewrite?: { readonly given: string; readonly reason: string };
}

/** Options as a user gives them (strings from the command line, or numbers). */
export interface PacketOptions {
  src?: string;
  dst: string;
  dport: string | number;
  sport?: string | number;
  proto?: string;
  uid?: string | number;
  gid?: string | number;
  in?: string;
  out?: string;
  direction?: string;
  state?: string;
  mark?: string | number;
}

/** Assumptions the trace made because an option was left out, printed with the result. */
export interface PacketBuild {
  readonly packet: TracePacket;
  readonly assumptions: readonly string[];
}

const STATES: readonly ConntrackState[] = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID'];

function address(flag: string, text: string): ipaddr.IPv4 | ipaddr.IPv6 {
  try {
    return parseStrictAddress(text.trim());
  } catch {
    throw new ValidationError(flag, text, 'an IPv4 or IPv6 address such as 203.0.113.5 or 2001:db8::5');
  }
}

function integer(flag: string, value: string | number, min: number, max: number, what: string): number {
  const text = String(value).trim();
  let n = Number.NaN;
  if (/^\d+$/.test(text)) n = Number(text);
  else if (/^0x[0-9a-f]+$/i.test(text)) n = Number.parseInt(text.slice(2), 16);
  if (!Number.isInteger(n) || n < min || n > max) throw new ValidationError(flag, value, `${what} from ${min} to ${max}`);
  return n;
}

function iface(flag: string, name: string): string {
  if (name.length === 0 || name.length > 15 || /[/:\s+*]/.test(name) || !/^[\x21-\x7e]+$/.test(name)) {
    throw new ValidationError(flag, name, 'an interface name (1-15 printable characters, no "/", ":", spaces or wildcards)');
  }
  return name;
}

/**
 * Validates the options and fills in what was left out. Defaults: TCP, direction inbound when
 * `--in` is given (else outbound), uid 0, gid = uid, state NEW, marks 0, out interface `lo`
 * for a loopback destination and `eth0` otherwise, source 127.0.0.1/::1 or a documentation
 * address. Every default that can change a verdict is listed in `assumptions`.
 *
 * An outbound packet's destination is the one the kernel gives it before OUTPUT: an
 * IPv4-mapped address becomes IPv4, the unspecified address loopback by lo (the packet's
 * `dstRewrite` says so). Inbound, both are refused: only sockets rewrite them.
 */
export function buildPacket(o: PacketOptions): PacketBuild {
  const assumptions: string[] = [];
  const given = address('--dst', o.dst);
  const proto = (o.proto ?? 'tcp').toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp') throw new ValidationError('--proto', o.proto, 'tcp or udp');
  const dport = integer('--dport', o.dport, 1, 65535, 'a port');
  const sport = o.sport === undefined ? 40000 : integer('--sport', o.sport, 1, 65535, 'a port');

  if (o.in !== undefined && o.out !== undefined) {
    throw new ValidationError('--in/--out', `${o.in}/${o.out}`, 'only one of --in (inbound) and --out (outbound)');
  }
  let direction: Direction;
  if (o.direction !== undefined) {
    if (o.direction !== 'outbound' && o.direction !== 'inbound') throw new ValidationError('--direction', o.direction, 'outbound or inbound');
    direction = o.direction;
  } else {
    direction = o.in !== undefined ? 'inbound' : 'outbound';
  }
  if (direction === 'outbound' && o.in !== undefined) throw new ValidationError('--in', o.in, '--out IFACE for an outbound packet (--in is for inbound)');
  if (direction === 'inbound' && o.out !== undefined) throw new ValidationError('--out', o.out, '--in IFACE for an inbound packet (--out is for outbound)');

  // A source given as an IPv4-mapped address is the IPv4 address an IPv6 socket sends from.
  const givenSrc = o.src !== undefined ? unmapped(address('--src', o.src)) : undefined;
  let dst = given;
  let dstRewrite: TracePacket['dstRewrite'];
  let viaLoopback = false;
  if (direction === 'outbound') {
    // What the kernel makes of the address before OUTPUT: that is the packet the rules see.
    const k = kernelDestination(given, givenSrc);
    dst = k.address;
    viaLoopback = k.loopback;
    if (k.reason !== undefined) dstRewrite = { given: formatAddress(given), reason: k.reason };
  } else if (given.range() === 'unspecified' || unmapped(given) !== given) {
    // Only sockets rewrite these; a packet from the network to them is not for this host.
    throw new ValidationError('--dst', o.dst, given.range() === 'unspecified'
      ? 'an address an inbound packet can be for (the kernel drops packets to the unspecified address as martians)'
      : `an address an inbound packet can be for: an IPv4-mapped address is a socket-API form, never on the wire (for an IPv4 packet use --dst ${formatAddress(unmapped(given))})`);
  }
  const family: IpFamily = dst.kind() === 'ipv4' ? 4 : 6;

  const loopbackDst = dst.range() === 'loopback';
  let src: ipaddr.IPv4 | ipaddr.IPv6;
  if (givenSrc !== undefined) {
    src = givenSrc;
    if (src.kind() !== dst.kind()) {
      const like = dstRewrite ? `, as the kernel sends --dst ${o.dst} (to ${formatAddress(dst)})` : `, like --dst ${o.dst}`;
      throw new ValidationError('--src', o.src, `an IPv${family} address${like}`);
    }
  } else {
    src = loopbackDst ? dst : parseStrictAddress(family === 4 ? '192.0.2.1' : '2001:db8::1');
    assumptions.push(`source address ${formatAddress(src)} (use --src)`);
  }

  let uid = 0;
  let gid = 0;
  if (direction === 'outbound') {
    uid = o.uid === undefined ? 0 : integer('--uid', o.uid, 0, 0xfffffffe, 'a numeric uid');
    gid = o.gid === undefined ? uid : integer('--gid', o.gid, 0, 0xfffffffe, 'a numeric gid');
    if (o.uid === undefined) assumptions.push('sent by uid 0 (use --uid)');
    if (o.gid === undefined) assumptions.push(`sent with gid ${gid} (use --gid)`);
  } else if (o.uid !== undefined || o.gid !== undefined) {
    throw new ValidationError(o.uid !== undefined ? '--uid' : '--gid', o.uid ?? o.gid, 'no owner for an inbound packet (owner matches see only locally generated packets)');
  }

  let outInterface: string | undefined;
  let inInterface: string | undefined;
  if (direction === 'outbound') {
    if (viaLoopback) {
      // The kernel picks lo itself here; no route or --out changes that.
      if (o.out !== undefined && iface('--out', o.out) !== 'lo') {
        throw new ValidationError('--out', o.out, `lo, or no --out: ${dstRewrite!.reason}`);
      }
      outInterface = 'lo';
    } else {
      outInterface = o.out !== undefined ? iface('--out', o.out) : loopbackDst ? 'lo' : 'eth0';
      if (o.out === undefined) assumptions.push(`leaves by interface ${outInterface} (use --out)`);
    }
  } else {
    inInterface = o.in !== undefined ? iface('--in', o.in) : 'eth0';
    if (o.in === undefined) assumptions.push(`arrives on interface ${inInterface} (use --in)`);
  }

  const stateText = (o.state ?? 'NEW').toUpperCase();
  if (!STATES.includes(stateText as ConntrackState)) throw new ValidationError('--state', o.state, STATES.join(', '));
  const mark = o.mark === undefined ? 0 : integer('--mark', o.mark, 0, 0xffffffff, 'a packet mark');

  const packet: TracePacket = {
    family,
    protocol: proto,
    src,
    dst,
    sport,
    dport,
    direction,
    uid,
    gid,
    ...(outInterface !== undefined ? { outInterface } : {}),
    ...(inInterface !== undefined ? { inInterface } : {}),
    ctState: stateText as ConntrackState,
    mark,
    ctMark: 0,
    ...(dstRewrite !== undefined ? { dstRewrite } : {}),
  };
  return { packet, assumptions };
}

/** `203.0.113.5:443` / `[2001:db8::5]:443`. */
export function endpoint(addr: ipaddr.IPv4 | ipaddr.IPv6, port: number): string {
  return addr.kind() === 'ipv6' ? `[${addr.toString()}]:${port}` : `${addr.toString()}:${port}`;
}
