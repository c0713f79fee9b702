/**
 * Interval sets for long CIDR lists. A run of rules that differ only in one address becomes one
 * rule matching `ip daddr @set`: one lookup in the kernel's interval tree instead of a linear
 * walk, and one element per merged range in the transaction instead of one rule per CIDR.
 *
 * nftables interval sets refuse overlapping elements, so the CIDRs are merged first:
 * overlapping and adjacent ranges become one. Merging keeps the union, which is all a run of
 * same-verdict rules can tell apart, so the set matches exactly the packets the rules did.
 */
import ipaddr from 'ipaddr.js';
import type { Cidr, IpFamily } from '../net/cidr.js';

/**
 * Lists longer than this (per family, per run of rules) become an interval set. Above every
 * list in Istio's own test configurations (at most two CIDRs), so the rules for those
 * configurations stay one per CIDR, exactly as istio-nftables writes them.
 */
export const SET_THRESHOLD = 8;

/** A closed range of addresses of one family, as unsigned integers. */
export interface AddressInterval {
  readonly family: IpFamily;
  readonly start: bigint;
  readonly end: bigint;
}

const bitsOf = (family: IpFamily) => (family === 4 ? 32 : 128);

// The hot path of a 100k-CIDR apply: IPv4 stays in plain numbers (exact up to 2^53), IPv6 goes
// through BigInt built from its eight words.

function ipv4Value(address: ipaddr.IPv4): number {
  const [a, b, c, d] = address.octets as [number, number, number, number];
  return a * 0x1000000 + b * 0x10000 + c * 0x100 + d;
}

function ipv6Value(address: ipaddr.IPv6): bigint {
  let hex = '0x';
  for (const w of address.parts) hex += w.toString(16).padStart(4, '0');
  return BigInt(hex);
}

function ipv4Text(n: number): string {
  return `${Math.floor(n / 0x1000000)}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

function ipv6Words(value: bigint): number[] {
  const hex = value.toString(16).padStart(32, '0');
  const words: number[] = [];
  for (let i = 0; i < 32; i += 4) words.push(parseInt(hex.slice(i, i + 4), 16));
  return words;
}

/**
 * IPv6 text from eight words, as glibc's inet_ntop writes it (what nft prints): the longest run
 * of two or more zero words (the first of equal runs) becomes `::`, and the IPv4-compatible and
 * IPv4-mapped forms end in dotted quads. Same output as net/ip-format's formatIPv6 (a unit
 * test holds them together), without building an ipaddr.js object per element.
 */
export function ipv6WordsText(w: readonly number[]): string {
  const firstFiveZero = w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0;
  const dotted = () => `${w[6]! >> 8}.${w[6]! & 0xff}.${w[7]! >> 8}.${w[7]! & 0xff}`;
  if (firstFiveZero && w[5] === 0xffff) return `::ffff:${dotted()}`;
  if (firstFiveZero && w[5] === 0 && w[6] !== 0) return `::${dotted()}`;
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: readonly number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}

/** The addresses a CIDR covers. */
export function cidrInterval(cidr: Cidr): AddressInterval {
  const start =
    cidr.family === 4 ? BigInt(ipv4Value(cidr.address as ipaddr.IPv4)) : ipv6Value(cidr.address as ipaddr.IPv6);
  const size = 1n << BigInt(bitsOf(cidr.family) - cidr.prefixLength);
  return { family: cidr.family, start, end: start + size - 1n };
}

/**
 * Sorts and merges CIDRs of one family into disjoint, non-adjacent intervals (what an interval
 * set accepts). Throws on mixed families: that is a caller bug, sets are typed by family.
 */
export function mergeCidrs(cidrs: readonly Cidr[]): AddressInterval[] {
  if (cidrs.length === 0) return [];
  const family = cidrs[0]!.family;
  for (const c of cidrs) if (c.family !== family) throw new Error(`mergeCidrs: mixed families (${cidrs[0]!.text}, ${c.text})`);
  if (family === 4) {
    const ranges = cidrs.map((c) => {
      const start = ipv4Value(c.address as ipaddr.IPv4);
      return [start, start + 2 ** (32 - c.prefixLength) - 1] as [number, number];
    });
    ranges.sort((a, b) => a[0] - b[0]);
    return mergeSorted(ranges, (a, b) => a <= b + 1).map(([start, end]) => ({ family, start: BigInt(start), end: BigInt(end) }));
  }
  const ranges = cidrs.map((c) => {
    const iv = cidrInterval(c);
    return [iv.start, iv.end] as [bigint, bigint];
  });
  ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return mergeSorted(ranges, (a, b) => a <= b + 1n).map(([start, end]) => ({ family, start, end }));
}

/** Merges sorted [start, end] ranges; `touches(nextStart, curEnd)` says overlap or adjacency. */
function mergeSorted<T extends number | bigint>(ranges: Array<[T, T]>, touches: (nextStart: T, curEnd: T) => boolean): Array<[T, T]> {
  const out: Array<[T, T]> = [];
  let cur = ranges[0]!;
  for (let i = 1; i < ranges.length; i++) {
    const next = ranges[i]!;
    if (touches(next[0], cur[1])) {
      if (next[1] > cur[1]) cur = [cur[0], next[1]];
    } else {
      out.push(cur);
      cur = next;
    }
  }
  out.push(cur);
  return out;
}

const addressText = (value: bigint, family: IpFamily) =>
  family === 4 ? ipv4Text(Number(value)) : ipv6WordsText(ipv6Words(value));

/**
 * One set element in the form `nft list` prints it: a bare address for a single address,
 * `addr/len` when the range is exactly a prefix, `first-last` otherwise.
 */
export function intervalElement(iv: AddressInterval): string {
  const first = addressText(iv.start, iv.family);
  if (iv.start === iv.end) return first;
  const size = iv.end - iv.start + 1n;
  if ((size & (size - 1n)) === 0n && iv.start % size === 0n) {
    const hostBits = size.toString(2).length - 1;
    return `${first}/${bitsOf(iv.family) - hostBits}`;
  }
  return `${first}-${addressText(iv.end, iv.family)}`;
}

/** True when the address falls in one of the (merged, sorted) intervals: the set's answer. */
export function intervalsContain(intervals: readonly AddressInterval[], address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  const v = address.kind() === 'ipv4' ? BigInt(ipv4Value(address as ipaddr.IPv4)) : ipv6Value(address as ipaddr.IPv6);
  let lo = 0;
  let hi = intervals.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const iv = intervals[mid]!;
    if (v < iv.start) hi = mid - 1;
    else if (v > iv.end) lo = mid + 1;
    else return true;
  }
  return false;
}
