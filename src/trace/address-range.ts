/**
 * Address ranges for set lookups (`ip daddr @set`), as closed BigInt intervals. The tracer's
 * own small copy: the nft renderer's interval code is tuned for 100k-element applies and free
 * to change shape; a trace needs only "is this address in one of these ranges".
 */
import type ipaddr from 'ipaddr.js';
import type { Cidr, IpFamily } from '../net/cidr.js';

export interface AddressRange {
  readonly family: IpFamily;
  readonly start: bigint;
  readonly end: bigint;
}

export function addressValue(address: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  let v = 0n;
  for (const b of address.toByteArray()) v = (v << 8n) | BigInt(b);
  return v;
}

export function cidrRange(c: Cidr): AddressRange {
  const start = addressValue(c.address);
  const hostBits = BigInt((c.family === 4 ? 32 : 128) - c.prefixLength);
  return { family: c.family, start, end: start + (1n << hostBits) - 1n };
}

/** Sorted, overlapping and adjacent ranges merged (what an interval set holds). */
export function mergeRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const sorted = [...ranges].sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
  const out: AddressRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.family === r.family && r.start <= last.end + 1n) {
      out[out.length - 1] = { family: r.family, start: last.start, end: r.end > last.end ? r.end : last.end };
    } else {
      out.push(r);
    }
  }
  return out;
}

export function rangesContain(ranges: readonly AddressRange[], address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  const family: IpFamily = address.kind() === 'ipv4' ? 4 : 6;
  const v = addressValue(address);
  return ranges.some((r) => r.family === family && v >= r.start && v <= r.end);
}
