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
import { formatIPv6Words, writeIPv6Words } from '../net/ip-format.js';

/**
 * Lists longer than this (per family, per run of rules) become an interval set. Above every
 * list in Istio's own test configurations (at most two CIDRs), so the rules for those
 * configurations stay one per CIDR, exactly as istio-nftables writes them.
 */
export const SET_THRESHOLD = 8;

/**
 * A closed range of addresses of one family. Addresses are arrays of unsigned 32-bit words,
 * most significant first (one word for IPv4, four for IPv6): the hot path of a 100k-CIDR apply
 * stays in plain numbers, no BigInt and no ipaddr.js object per element.
 */
export interface AddressInterval {
  readonly family: IpFamily;
  readonly start: readonly number[];
  readonly end: readonly number[];
}

type Words = readonly number[];

function ipv4Value(address: ipaddr.IPv4): number {
  const o = address.octets;
  return o[0]! * 0x1000000 + o[1]! * 0x10000 + o[2]! * 0x100 + o[3]!;
}

function addressWords(address: ipaddr.IPv4 | ipaddr.IPv6): number[] {
  if (address.kind() === 'ipv4') return [ipv4Value(address as ipaddr.IPv4)];
  const p = (address as ipaddr.IPv6).parts;
  return [p[0]! * 0x10000 + p[1]!, p[2]! * 0x10000 + p[3]!, p[4]! * 0x10000 + p[5]!, p[6]! * 0x10000 + p[7]!];
}

function compareWords(a: Words, b: Words): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

/** The next address, or undefined after the last one. */
function successor(w: Words): number[] | undefined {
  const out = [...w];
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0xffffffff) {
      out[i] = out[i]! + 1;
      return out;
    }
    out[i] = 0;
  }
  return undefined;
}

/** The last address of the prefix starting at `start`. */
function lastOfPrefix(start: Words, prefixLength: number): number[] {
  return start.map((word, i) => {
    const kept = Math.min(32, Math.max(0, prefixLength - 32 * i));
    const hostMask = kept === 32 ? 0 : 2 ** (32 - kept) - 1;
    return (word | hostMask) >>> 0;
  });
}

/** The addresses a CIDR covers. */
export function cidrInterval(cidr: Cidr): AddressInterval {
  const start = addressWords(cidr.address);
  return { family: cidr.family, start, end: lastOfPrefix(start, cidr.prefixLength) };
}

/**
 * Sorts and merges CIDRs of one family into disjoint, non-adjacent intervals (what an interval
 * set accepts). Throws on mixed families: that is a caller bug, sets are typed by family.
 */
export function mergeCidrs(cidrs: readonly Cidr[]): AddressInterval[] {
  if (cidrs.length === 0) return [];
  const family = cidrs[0]!.family;
  for (const c of cidrs) if (c.family !== family) throw new Error(`mergeCidrs: mixed families (${cidrs[0]!.text}, ${c.text})`);
  if (family === 4 && cidrs.length < 2 ** 20) {
    const out: AddressInterval[] = [];
    mergeIPv4(cidrs, (start, end) => out.push({ family: 4, start: [start], end: [end] }));
    return out;
  }
  const intervals = cidrs.map(cidrInterval);
  intervals.sort((a, b) => compareWords(a.start, b.start));
  const out: AddressInterval[] = [];
  let cur = intervals[0]!;
  for (let i = 1; i < intervals.length; i++) {
    const next = intervals[i]!;
    // Overlapping, or adjacent (next starts right after cur ends): one range.
    const touches = compareWords(next.start, cur.end) <= 0 || compareWords(next.start, successor(cur.end) ?? cur.end) === 0;
    if (touches) {
      if (compareWords(next.end, cur.end) > 0) cur = { family, start: cur.start, end: next.end };
    } else {
      out.push(cur);
      cur = next;
    }
  }
  out.push(cur);
  return out;
}

/**
 * The IPv4 case without an object per CIDR: each start address and its index packed into one
 * double (start · 2^20 + index, exact below 2^52) so a native typed-array sort orders them.
 * Calls `emit(start, end)` for each merged range, in order.
 */
function mergeIPv4(cidrs: readonly Cidr[], emit: (start: number, end: number) => void): void {
  const n = cidrs.length;
  const keys = new Float64Array(n);
  const ends = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = cidrs[i]!;
    const start = ipv4Value(c.address as ipaddr.IPv4);
    keys[i] = start * 2 ** 20 + i;
    ends[i] = start + 2 ** (32 - c.prefixLength) - 1;
  }
  keys.sort();
  let curStart = -1;
  let curEnd = -2;
  for (let k = 0; k < n; k++) {
    const key = keys[k]!;
    const i = key % 2 ** 20;
    const start = (key - i) / 2 ** 20;
    const end = ends[i]!;
    if (start <= curEnd + 1) {
      if (end > curEnd) curEnd = end;
    } else {
      if (curStart >= 0) emit(curStart, curEnd);
      curStart = start;
      curEnd = end;
    }
  }
  emit(curStart, curEnd);
}

/**
 * Merged intervals in typed arrays: interval i spans starts[w·i … w·i+w-1] to ends[…], with w
 * words per address (1 for IPv4, 4 for IPv6), most significant word first. What a 100k-CIDR
 * apply carries from the merge to the kernel without an object per element.
 */
export interface PackedIntervals {
  readonly family: IpFamily;
  readonly count: number;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
}

/**
 * mergeCidrs in typed arrays: the same intervals (a unit test holds them together), in plain
 * numbers; this runs once per CIDR of a 100k list inside the apply.
 */
export function mergeCidrsPacked(cidrs: readonly Cidr[]): PackedIntervals {
  if (cidrs.length === 0) return { family: 4, count: 0, starts: new Uint32Array(0), ends: new Uint32Array(0) };
  const family = cidrs[0]!.family;
  for (const c of cidrs) if (c.family !== family) throw new Error(`mergeCidrsPacked: mixed families (${cidrs[0]!.text}, ${c.text})`);
  const words = family === 4 ? 1 : 4;
  const starts = new Uint32Array(words * cidrs.length);
  const ends = new Uint32Array(words * cidrs.length);
  let count = 0;
  if (family === 6) {
    mergeIPv6(cidrs, (s, e) => {
      starts.set(s, 4 * count);
      ends.set(e, 4 * count);
      count++;
    });
  } else if (cidrs.length >= 2 ** 20) {
    for (const iv of mergeCidrs(cidrs)) {
      starts[count] = iv.start[0]!;
      ends[count++] = iv.end[0]!;
    }
  } else {
    mergeIPv4(cidrs, (s, e) => {
      starts[count] = s;
      ends[count++] = e;
    });
  }
  return { family, count, starts: starts.subarray(0, words * count), ends: ends.subarray(0, words * count) };
}

/** The set elements for a CIDR list of one family: merged, sorted, in `nft list` form. */
export function mergedElements(cidrs: readonly Cidr[]): string[] {
  return packedElements(mergeCidrsPacked(cidrs));
}

/** Each packed interval in the form `nft list` prints it (see intervalElement). */
export function packedElements(p: PackedIntervals): string[] {
  const out = new Array<string>(p.count);
  if (p.family === 4) {
    for (let i = 0; i < p.count; i++) {
      const start = p.starts[i]!;
      const end = p.ends[i]!;
      const size = end - start + 1;
      const first = ipv4Text(start);
      // A prefix: the size is a power of two and the start is aligned to it.
      if (size === 1) out[i] = first;
      else if ((size & (size - 1)) === 0 && start % size === 0) out[i] = `${first}/${32 - Math.log2(size)}`;
      else out[i] = `${first}-${ipv4Text(end)}`;
    }
    return out;
  }
  const halves = new Array<number>(8);
  // One element's text, written as bytes and decoded once (see formatIPv6Words).
  const text = Buffer.alloc(128);
  for (let i = 0; i < p.count; i++) {
    const curStart = p.starts.subarray(4 * i, 4 * i + 4);
    const curEnd = p.ends.subarray(4 * i, 4 * i + 4);
    let at = writeIPv6Words(halvesOf(curStart, halves), text, 0);
    const len = prefixLengthOf(curStart, curEnd);
    if (len !== undefined && len < 128) {
      text[at++] = 47; // '/'
      if (len >= 100) text[at++] = 48 + Math.floor(len / 100);
      if (len >= 10) text[at++] = 48 + (Math.floor(len / 10) % 10);
      text[at++] = 48 + (len % 10);
    } else if (len === undefined) {
      text[at++] = 45; // '-'
      at = writeIPv6Words(halvesOf(curEnd, halves), text, at);
    }
    out[i] = text.toString('latin1', 0, at);
  }
  return out;
}

/**
 * The IPv6 case: each CIDR's first and last address as four 32-bit words in typed arrays, an
 * index sort on them, one pass to merge; `emit(start, end)` gets each merged range in order
 * (views that the next call overwrites).
 */
function mergeIPv6(cidrs: readonly Cidr[], emit: (start: Uint32Array, end: Uint32Array) => void): void {
  const n = cidrs.length;
  const starts = new Uint32Array(4 * n);
  const ends = new Uint32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const c = cidrs[i]!;
    const p = (c.address as ipaddr.IPv6).parts;
    const len = c.prefixLength;
    for (let k = 0; k < 4; k++) {
      const word = (p[2 * k]! * 0x10000 + p[2 * k + 1]!) >>> 0;
      const kept = len - 32 * k;
      const host = kept >= 32 ? 0 : kept <= 0 ? 0xffffffff : (0xffffffff >>> kept) >>> 0;
      starts[4 * i + k] = word;
      ends[4 * i + k] = (word | host) >>> 0;
    }
  }
  const order = sortByStart(starts, n);
  const curStart = new Uint32Array(4);
  const curEnd = new Uint32Array(4);
  const next = new Uint32Array(4);
  for (let r = 0; r < n; r++) {
    const i = order[r]!;
    const base = 4 * i;
    if (r > 0) {
      // Does this CIDR overlap the current range or start right after its end?
      let cmp = 0;
      for (let k = 0; k < 4 && cmp === 0; k++) cmp = starts[base + k]! - curEnd[k]!;
      let touches = cmp <= 0;
      if (!touches) {
        // curEnd + 1, unless curEnd is the last address (then nothing starts after it).
        let carry = 1;
        for (let k = 3; k >= 0; k--) {
          const v = curEnd[k]! + carry;
          next[k] = v >>> 0;
          carry = v > 0xffffffff ? 1 : 0;
        }
        touches = carry === 0 && next[0] === starts[base] && next[1] === starts[base + 1] && next[2] === starts[base + 2] && next[3] === starts[base + 3];
      }
      if (touches) {
        let later = 0;
        for (let k = 0; k < 4 && later === 0; k++) later = ends[base + k]! - curEnd[k]!;
        if (later > 0) for (let k = 0; k < 4; k++) curEnd[k] = ends[base + k]!;
        continue;
      }
      emit(curStart, curEnd);
    }
    for (let k = 0; k < 4; k++) {
      curStart[k] = starts[base + k]!;
      curEnd[k] = ends[base + k]!;
    }
  }
  emit(curStart, curEnd);
}

/**
 * Indices 0…n-1 ordered by the 128-bit start addresses in `starts` (four words each). A native
 * sort on (first word · 2^20 + index), as in mergeIPv4, then a comparison sort only within the
 * runs that share a first word: in real lists those are short.
 */
function sortByStart(starts: Uint32Array, n: number): Uint32Array {
  const byWords = (a: number, b: number) => {
    for (let k = 0; k < 4; k++) {
      const x = starts[4 * a + k]!;
      const y = starts[4 * b + k]!;
      if (x !== y) return x - y;
    }
    return a - b;
  };
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (n >= 2 ** 20) return order.sort(byWords);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = starts[4 * i]! * 2 ** 20 + i;
  keys.sort();
  for (let r = 0; r < n; r++) order[r] = keys[r]! % 2 ** 20;
  for (let r = 0; r < n; ) {
    const first = starts[4 * order[r]!]!;
    let e = r + 1;
    while (e < n && starts[4 * order[e]!] === first) e++;
    if (e - r > 1) order.subarray(r, e).sort(byWords);
    r = e;
  }
  return order;
}

const ipv4Text = (n: number) => `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;

/** The eight 16-bit words of four 32-bit words, into `halves` (reused). */
function halvesOf(w: ArrayLike<number>, halves: number[]): number[] {
  for (let k = 0; k < 4; k++) {
    halves[2 * k] = w[k]! >>> 16;
    halves[2 * k + 1] = w[k]! & 0xffff;
  }
  return halves;
}

/** IPv6 text from eight 16-bit words, as glibc's inet_ntop writes it (what nft prints). */
export const ipv6WordsText = (w: readonly number[]): string => formatIPv6Words(w);

function wordsText(w: Words, family: IpFamily): string {
  if (family === 4) return ipv4Text(w[0]!);
  const halves = new Array<number>(8);
  for (let i = 0; i < 4; i++) {
    halves[2 * i] = w[i]! >>> 16;
    halves[2 * i + 1] = w[i]! & 0xffff;
  }
  return ipv6WordsText(halves);
}

/** The prefix length when [start, end] is exactly one prefix, else undefined. */
function prefixLengthOf(start: ArrayLike<number>, end: ArrayLike<number>): number | undefined {
  let i = 0;
  while (i < start.length && start[i] === end[i]) i++;
  if (i === start.length) return 32 * start.length;
  // In the first differing word the differing bits must be all the low ones: start 0…0, end 1…1.
  const x = (start[i]! ^ end[i]!) >>> 0;
  if (((x + 1) & x) !== 0 && x !== 0xffffffff) return undefined;
  if ((start[i]! & x) !== 0 || ((end[i]! & x) >>> 0) !== x) return undefined;
  for (let k = i + 1; k < start.length; k++) if (start[k] !== 0 || end[k] !== 0xffffffff) return undefined;
  const hostBits = x === 0xffffffff ? 32 : Math.log2(x + 1);
  return 32 * i + (32 - hostBits);
}

/**
 * One set element in the form `nft list` prints it: a bare address for a single address,
 * `addr/len` when the range is exactly a prefix, `first-last` otherwise.
 */
export function intervalElement(iv: AddressInterval): string {
  const first = wordsText(iv.start, iv.family);
  const len = prefixLengthOf(iv.start, iv.end);
  if (len === 32 * iv.start.length) return first;
  if (len !== undefined) return `${first}/${len}`;
  return `${first}-${wordsText(iv.end, iv.family)}`;
}

/** True when the address falls in one of the (merged, sorted) intervals: the set's answer. */
export function intervalsContain(intervals: readonly AddressInterval[], address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  const v = addressWords(address);
  let lo = 0;
  let hi = intervals.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const iv = intervals[mid]!;
    if (compareWords(v, iv.start) < 0) hi = mid - 1;
    else if (compareWords(v, iv.end) > 0) lo = mid + 1;
    else return true;
  }
  return false;
}
