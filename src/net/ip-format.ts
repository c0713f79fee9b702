/**
 * Address text exactly as iptables-save / ip6tables-save print it (glibc inet_ntop), so that
 * rendered rules compare byte-for-byte with what the kernel reports back.
 */
import ipaddr from 'ipaddr.js';

/**
 * Formats an IPv6 address the way glibc's inet_ntop does: RFC 5952 zero compression, and
 * the embedded IPv4 forms `::a.b.c.d` (IPv4-compatible, when the first 96 bits are zero and
 * the address is neither `::` nor `::1`) and `::ffff:a.b.c.d` (IPv4-mapped).
 */
export function formatIPv6(addr: ipaddr.IPv6): string {
  const w = addr.parts;
  const firstFiveZero = w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0;
  const low32 = `${w[6]! >> 8}.${w[6]! & 0xff}.${w[7]! >> 8}.${w[7]! & 0xff}`;
  if (firstFiveZero && w[5] === 0xffff) return `::ffff:${low32}`;
  // glibc prints the IPv4 tail when the longest zero run is exactly words 0..5.
  if (firstFiveZero && w[5] === 0 && w[6] !== 0) return `::${low32}`;
  return addr.toRFC5952String();
}

/** Formats either family in the kernel tools' canonical text. */
export function formatAddress(addr: ipaddr.IPv4 | ipaddr.IPv6): string {
  return addr.kind() === 'ipv6' ? formatIPv6(addr as ipaddr.IPv6) : addr.toString();
}

/**
 * The same text as formatIPv6, from eight 16-bit words instead of an ipaddr.js object, for
 * paths that format one address per CIDR of a 100k list. Written as bytes and decoded once:
 * Number#toString(16) and string concatenation cost ~1 µs per address, ten times this. A unit
 * test holds it to formatIPv6.
 */
export function formatIPv6Words(w: ArrayLike<number>): string {
  const end = writeIPv6Words(w, scratch, 0);
  return scratch.toString('latin1', 0, end);
}

const scratch = Buffer.alloc(64);
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/**
 * Writes formatIPv6Words' text for `w` into `buf` at `pos` (at most 45 bytes); returns the
 * position after it.
 */
export function writeIPv6Words(w: ArrayLike<number>, buf: Buffer, pos: number): number {
  let p = pos;
  const firstFiveZero = w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0;
  if (firstFiveZero && (w[5] === 0xffff || (w[5] === 0 && w[6] !== 0))) {
    // `::ffff:a.b.c.d` (IPv4-mapped) or `::a.b.c.d` (IPv4-compatible), as inet_ntop writes them.
    buf[p++] = 58;
    buf[p++] = 58;
    if (w[5] === 0xffff) {
      buf[p++] = 102;
      buf[p++] = 102;
      buf[p++] = 102;
      buf[p++] = 102;
      buf[p++] = 58;
    }
    const octets = [w[6]! >> 8, w[6]! & 0xff, w[7]! >> 8, w[7]! & 0xff];
    for (let i = 0; i < 4; i++) {
      const o = octets[i]!;
      if (o >= 100) buf[p++] = 48 + Math.floor(o / 100);
      if (o >= 10) buf[p++] = 48 + (Math.floor(o / 10) % 10);
      buf[p++] = 48 + (o % 10);
      if (i < 3) buf[p++] = 46;
    }
    return p;
  }
  // RFC 5952: the longest run of two or more zero words (the first of equal runs) becomes `::`.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      buf[p++] = 58;
      buf[p++] = 58;
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i !== bestStart + bestLen) buf[p++] = 58;
    const v = w[i]!;
    if (v >= 0x1000) buf[p++] = HEX_DIGITS[v >> 12]!;
    if (v >= 0x100) buf[p++] = HEX_DIGITS[(v >> 8) & 15]!;
    if (v >= 0x10) buf[p++] = HEX_DIGITS[(v >> 4) & 15]!;
    buf[p++] = HEX_DIGITS[v & 15]!;
  }
  return p;
}
