/**
 * CidrTrie: longest-prefix match over IPv4 and IPv6 CIDRs, backed by the native addon
 * (native/src/lpm: a 16-8-4-4 expanded trie for IPv4, path-compressed Tree Bitmap nodes for
 * IPv6; the headers there explain the layouts).
 *
 * Every argument is validated here, before the addon sees it. Addresses are read by small
 * strict parsers of dotted-decimal IPv4 and RFC 4291 IPv6 text: the one-at-a-time lookup is
 * on the redirect target's hot path, where ipaddr.js would cost more than the lookup itself.
 */
import { loadAddon, type NativeAddon, type NativeTrieHandle } from '../native-loader.js';

const MAX_VALUE = 2 ** 31 - 1;

/**
 * IPv4 text `a.b.c.d` (decimal, no leading zeros) in [start, end) as an unsigned 32-bit
 * number, or -1. Unrolled per octet rather than a character loop with state: lookup() spends
 * most of its JavaScript time here, and this form took about 10 ns off each call.
 */
function parseIPv4(text: string, start: number, end: number): number {
  let i = start;
  let acc = 0;
  for (let part = 0; part < 4; part++) {
    if (part !== 0) {
      if (i >= end || text.charCodeAt(i) !== 46 /* . */) return -1;
      i++;
    }
    if (i >= end) return -1;
    let d = text.charCodeAt(i) - 48;
    if (!(d >= 0 && d <= 9)) return -1;
    let octet = d;
    i++;
    // A leading zero ends the octet, so "01" fails at the next dot check (octal in inet_aton).
    if (octet !== 0 && i < end) {
      d = text.charCodeAt(i) - 48;
      if (d >= 0 && d <= 9) {
        octet = octet * 10 + d;
        i++;
        if (i < end) {
          d = text.charCodeAt(i) - 48;
          if (d >= 0 && d <= 9) {
            octet = octet * 10 + d;
            i++;
            if (octet > 255) return -1;
          }
        }
      }
    }
    acc = (acc << 8) | octet;
  }
  return i === end ? acc >>> 0 : -1;
}

const groups = new Uint16Array(8);

// Hex digit values by character code (-1: not a hex digit): one typed-array load per
// character instead of three range tests.
const HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[97 + c] = HEX[65 + c] = 10 + c;

/**
 * The 16 bytes of IPv6 text (RFC 4291 section 2.2: hex groups, one `::`, an optional dotted
 * IPv4 tail) in s[0, n) into `out`; false when the text is not an IPv6 address. Zone ids
 * (`%eth0`) are refused: they name links, not prefixes. Hand-written because ipaddr.js
 * parsing costs tens of microseconds per IPv6 address, which would dominate lookup().
 */
function parseIPv6(s: string, out: Uint8Array, n = s.length): boolean {
  if (n < 2 || n > 45) return false;
  let ng = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58 /* : */) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let v = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      const d = c < 128 ? HEX[c]! : -1;
      if (d < 0) break;
      v = v * 16 + d;
    }
    if (i < n && s.charCodeAt(i) === 46 /* . */) {
      // Dotted IPv4 tail: the last 32 bits.
      if (ng > 6) return false;
      const v4 = parseIPv4(s, start, n);
      if (v4 < 0) return false;
      groups[ng++] = v4 >>> 16;
      groups[ng++] = v4 & 0xffff;
      i = n;
      break;
    }
    if (i === start || i - start > 4 || ng === 8) return false;
    groups[ng++] = v;
    if (i === n) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i === n) return false; // a single trailing colon
    if (s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = ng;
      i++;
    }
  }
  if (gap < 0 ? ng !== 8 : ng > 7) return false;
  const zeros = 8 - ng;
  for (let g = 0, src = 0; g < 8; g++) {
    const v = gap >= 0 && g >= gap && g < gap + zeros ? 0 : groups[src++]!;
    out[2 * g] = v >> 8;
    out[2 * g + 1] = v & 0xff;
  }
  return true;
}

function isMapped(b: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[offset + i] !== 0) return false;
  return b[offset + 10] === 0xff && b[offset + 11] === 0xff;
}

function mappedToV4(b: Uint8Array): number {
  return ((b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!) >>> 0;
}

const scratch = new Uint8Array(16);

// Results of parseCidrArg, kept in module state rather than a fresh object per call: a large
// table is loaded with a million inserts, and the allocations showed up as GC time.
let parsedAddr4 = 0;
let parsedLen = 0;

/** `cidr`, or `cidrs[index]` for an element of insertMany's array (index >= 0). */
function cidrArg(index: number): string {
  return index < 0 ? 'cidr' : `cidrs[${index}]`;
}

/**
 * Validates `cidr`; returns its family with the address in parsedAddr4 (IPv4) or scratch
 * (IPv6) and the prefix length in parsedLen. Errors name the argument `cidr`, or
 * `cidrs[index]` when index >= 0 (built only on failure: this runs a million times when a
 * large table is loaded).
 */
function parseCidrArg(method: string, cidr: unknown, index = -1): 4 | 6 {
  if (typeof cidr !== 'string') {
    throw new TypeError(`CidrTrie.${method}: ${cidrArg(index)} must be a string such as "10.0.0.0/8", got ${typeof cidr}`);
  }
  // Prefix length: 1-3 decimal digits after the last '/', parsed by hand (this runs once per
  // insert, a million times when a large table is loaded).
  const slash = cidr.lastIndexOf('/');
  let len = 0;
  const digits = cidr.length - slash - 1;
  if (slash >= 0 && digits >= 1 && digits <= 3) {
    for (let i = slash + 1; i < cidr.length; i++) {
      const c = cidr.charCodeAt(i);
      if (c < 48 || c > 57) {
        len = -1;
        break;
      }
      len = len * 10 + (c - 48);
    }
  } else {
    len = -1;
  }
  if (len < 0) {
    throw new TypeError(
      `CidrTrie.${method}: ${cidrArg(index)} ${JSON.stringify(cidr)} is not a CIDR: expected ADDRESS/LENGTH such as 10.0.0.0/8 or 2001:db8::/32`,
    );
  }
  const v4 = parseIPv4(cidr, 0, slash);
  if (v4 >= 0) {
    if (len > 32) {
      throw new RangeError(`CidrTrie.${method}: ${cidrArg(index)} ${JSON.stringify(cidr)} has prefix length ${len}: expected 0-32 for IPv4`);
    }
    parsedAddr4 = v4;
    parsedLen = len;
    return 4;
  }
  if (!parseIPv6(cidr, scratch, slash)) {
    throw new TypeError(
      `CidrTrie.${method}: ${cidrArg(index)} ${JSON.stringify(cidr)} has no valid address: expected dotted-decimal IPv4 or IPv6 before the /`,
    );
  }
  if (len > 128) {
    throw new RangeError(`CidrTrie.${method}: ${cidrArg(index)} ${JSON.stringify(cidr)} has prefix length ${len}: expected 0-128 for IPv6`);
  }
  // ::ffff:0:0/96 and longer are IPv4 prefixes written in IPv6, and IPv4-mapped lookups
  // consult the IPv4 table, so store them there.
  if (len >= 96 && isMapped(scratch)) {
    parsedAddr4 = mappedToV4(scratch);
    parsedLen = len - 96;
    return 4;
  }
  parsedLen = len;
  return 6;
}

/**
 * Throws unless `value` is an integer 0 … 2^31-1. Errors name it `value`, or `values[index]`
 * when index >= 0.
 */
function checkValue(method: string, value: unknown, index = -1): void {
  if (typeof value !== 'number') {
    const arg = index < 0 ? 'value' : `values[${index}]`;
    throw new TypeError(`CidrTrie.${method}: ${arg} must be an integer 0-${MAX_VALUE}, got ${typeof value}`);
  }
  if (!Number.isInteger(value) || value < 0 || value > MAX_VALUE) {
    const arg = index < 0 ? 'value' : `values[${index}]`;
    throw new RangeError(`CidrTrie.${method}: ${arg} ${value} is out of range: expected an integer 0-${MAX_VALUE}`);
  }
}

function invalidIp(ip: unknown): TypeError {
  return new TypeError(
    `CidrTrie.lookup: ip ${JSON.stringify(ip)} is not an IP address: expected dotted-decimal IPv4 or IPv6 text`,
  );
}

/**
 * Longest-prefix match over IPv4 and IPv6 CIDRs with a number attached to each prefix.
 *
 * - Values are integers 0 … 2^31-1; inserting the same prefix again replaces its value.
 * - Host bits of an inserted CIDR are ignored (10.1.2.3/8 is 10.0.0.0/8), as the kernel does.
 * - IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 prefixes only; IPv6 prefixes of
 *   ::ffff:0:0/96 or longer are stored as the IPv4 prefixes they denote.
 * - Batch lookups take IPv4 addresses as unsigned 32-bit numbers (10.0.0.1 = 0x0a000001) and
 *   IPv6 addresses as 16 network-order bytes each; they write -1 for "no match".
 * - Load a large table with insertMany: one call into the addon instead of one per prefix.
 */
export class CidrTrie {
  readonly #addon: NativeAddon;
  readonly #native: NativeTrieHandle;

  constructor() {
    this.#addon = loadAddon();
    this.#native = this.#addon.createTrie();
  }

  /** Adds `cidr` with `value`, replacing the value if the prefix is already present. */
  insert(cidr: string, value: number): void {
    checkValue('insert', value);
    if (parseCidrArg('insert', cidr) === 4) this.#addon.trieInsert4(this.#native, parsedAddr4, parsedLen, value);
    else this.#addon.trieInsert6(this.#native, scratch, parsedLen, value);
  }

  /**
   * insert(cidrs[i], values[i]) for every i, in order (a later duplicate prefix replaces an
   * earlier one), in one call into the addon: the way to load a large table. Every entry is
   * validated before anything is inserted, so a bad one leaves the trie unchanged.
   */
  insertMany(cidrs: readonly string[], values: ArrayLike<number>): void {
    if (!Array.isArray(cidrs)) {
      throw new TypeError(`CidrTrie.insertMany: cidrs must be an array of CIDR strings, got ${typeof cidrs}`);
    }
    if (typeof values !== 'object' || values === null || typeof values.length !== 'number') {
      throw new TypeError(`CidrTrie.insertMany: values must be an array of integers 0-${MAX_VALUE}`);
    }
    const n = cidrs.length;
    if (values.length !== n) {
      throw new RangeError(
        `CidrTrie.insertMany: values has length ${values.length}: expected cidrs.length (${n})`,
      );
    }
    const addrs4 = new Uint32Array(n);
    const lens4 = new Uint8Array(n);
    const values4 = new Int32Array(n);
    let n4 = 0;
    // IPv6 arrays are only allocated once an IPv6 prefix turns up, sized for the rest.
    let addrs6: Uint8Array | undefined;
    let lens6: Uint8Array | undefined;
    let values6: Int32Array | undefined;
    let n6 = 0;
    for (let i = 0; i < n; i++) {
      const value = values[i]!;
      checkValue('insertMany', value, i);
      if (parseCidrArg('insertMany', cidrs[i], i) === 4) {
        addrs4[n4] = parsedAddr4;
        lens4[n4] = parsedLen;
        values4[n4++] = value;
      } else {
        if (addrs6 === undefined) {
          addrs6 = new Uint8Array(16 * (n - i));
          lens6 = new Uint8Array(n - i);
          values6 = new Int32Array(n - i);
        }
        addrs6.set(scratch, 16 * n6);
        lens6![n6] = parsedLen;
        values6![n6++] = value;
      }
    }
    if (n4 > 0) {
      this.#addon.trieInsertMany4(this.#native, addrs4.subarray(0, n4), lens4.subarray(0, n4), values4.subarray(0, n4));
    }
    if (n6 > 0) {
      this.#addon.trieInsertMany6(
        this.#native,
        addrs6!.subarray(0, 16 * n6),
        lens6!.subarray(0, n6),
        values6!.subarray(0, n6),
      );
    }
  }

  /** Removes `cidr`; true when it was present. Shorter covering prefixes match again. */
  delete(cidr: string): boolean {
    return parseCidrArg('delete', cidr) === 4
      ? this.#addon.trieErase4(this.#native, parsedAddr4, parsedLen)
      : this.#addon.trieErase6(this.#native, scratch, parsedLen);
  }

  /** The value of the longest prefix containing `ip`, or undefined when none does. */
  lookup(ip: string): number | undefined {
    if (typeof ip !== 'string') throw invalidIp(ip);
    let v: number;
    const v4 = parseIPv4(ip, 0, ip.length);
    if (v4 >= 0) {
      v = this.#addon.trieLookup4(this.#native, v4);
    } else {
      if (!parseIPv6(ip, scratch)) throw invalidIp(ip);
      v = isMapped(scratch)
        ? this.#addon.trieLookup4(this.#native, mappedToV4(scratch))
        : this.#addon.trieLookup6(this.#native, scratch);
    }
    return v < 0 ? undefined : v;
  }

  /** For each IPv4 address in `addrs`, writes the matching value (or -1) to the same index of `out`. */
  lookupManyV4(addrs: Uint32Array, out: Int32Array): void {
    if (!(addrs instanceof Uint32Array)) throw new TypeError('CidrTrie.lookupManyV4: addrs must be a Uint32Array');
    if (!(out instanceof Int32Array)) throw new TypeError('CidrTrie.lookupManyV4: out must be an Int32Array');
    if (out.length !== addrs.length) {
      throw new RangeError(
        `CidrTrie.lookupManyV4: out has length ${out.length}: expected addrs.length (${addrs.length})`,
      );
    }
    this.#addon.trieLookupMany4(this.#native, addrs, out);
  }

  /** For each 16-byte IPv6 address in `addrs`, writes the matching value (or -1) to `out`. */
  lookupManyV6(addrs: Uint8Array, out: Int32Array): void {
    if (!(addrs instanceof Uint8Array)) throw new TypeError('CidrTrie.lookupManyV6: addrs must be a Uint8Array');
    if (!(out instanceof Int32Array)) throw new TypeError('CidrTrie.lookupManyV6: out must be an Int32Array');
    if (addrs.length % 16 !== 0) {
      throw new RangeError(`CidrTrie.lookupManyV6: addrs has length ${addrs.length}: expected a multiple of 16`);
    }
    if (out.length !== addrs.length / 16) {
      throw new RangeError(
        `CidrTrie.lookupManyV6: out has length ${out.length}: expected addrs.length / 16 (${addrs.length / 16})`,
      );
    }
    this.#addon.trieLookupMany6(this.#native, addrs, out);
  }

  /** Number of prefixes stored (both families). */
  get size(): number {
    return this.#addon.trieSize(this.#native);
  }

  /**
   * Bytes of native memory the tables use, including each family's fixed 16-bit first level
   * (576 KiB once the family holds a prefix) and the exact-match index used by deletes.
   */
  get memoryBytes(): number {
    return this.#addon.trieMemoryBytes(this.#native);
  }

  /** @internal The native handle, for calls that classify inside C++ (originalDstLookup). */
  static nativeHandle(trie: CidrTrie): NativeTrieHandle {
    return trie.#native;
  }
}
