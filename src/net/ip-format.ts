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
