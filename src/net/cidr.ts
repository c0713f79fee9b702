/**
 * CIDR value type. Parsing is strict (ipaddr.js underneath); host bits are masked the way the
 * kernel masks them, and text is rendered the way iptables-save prints it.
 */
import ipaddr from 'ipaddr.js';
import { formatAddress } from './ip-format.js';

export type IpFamily = 4 | 6;

export interface Cidr {
  readonly family: IpFamily;
  /** Network address with host bits cleared. */
  readonly address: ipaddr.IPv4 | ipaddr.IPv6;
  readonly prefixLength: number;
  /** Canonical `address/len`, as iptables-save prints it. */
  readonly text: string;
}

/**
 * Parses `a.b.c.d/n`, `x::y/n`, or a bare address (taken as /32 or /128). Returns undefined
 * when the text is not a valid address or prefix; callers turn that into a ValidationError.
 */
export function parseCidr(input: string): Cidr | undefined {
  const text = input.trim();
  if (text === '' || text.includes('%')) return undefined;
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  let prefixLength: number;
  try {
    if (text.includes('/')) {
      const [addrText, lenText] = text.split('/') as [string, string];
      if (!/^\d{1,3}$/.test(lenText)) return undefined;
      address = parseStrictAddress(addrText);
      prefixLength = Number(lenText);
    } else {
      address = parseStrictAddress(text);
      prefixLength = address.kind() === 'ipv4' ? 32 : 128;
    }
  } catch {
    return undefined;
  }
  const bits = address.kind() === 'ipv4' ? 32 : 128;
  if (prefixLength > bits) return undefined;
  const masked = maskAddress(address, prefixLength);
  const family: IpFamily = address.kind() === 'ipv4' ? 4 : 6;
  return { family, address: masked, prefixLength, text: `${formatAddress(masked)}/${prefixLength}` };
}

/** Parses one address; rejects the short and octal IPv4 forms ipaddr.js would otherwise accept. */
export function parseStrictAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (text.includes(':')) {
    const hex = embeddedIPv4ToHex(text);
    if (hex !== undefined && ipaddr.IPv6.isValid(hex)) return ipaddr.IPv6.parse(hex);
  }
  throw new Error(`not an IP address: ${text}`);
}

/**
 * Rewrites a dotted IPv4 tail (`::127.0.0.53`) as two hex words. ipaddr.js would read every
 * such tail as IPv4-mapped (`::ffff:…`), which is wrong for IPv4-compatible addresses like the
 * `::127.0.0.53` DNS server in Istio's tests.
 */
function embeddedIPv4ToHex(text: string): string | undefined {
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (!m) return text.includes('.') ? undefined : text;
  if (!ipaddr.IPv4.isValidFourPartDecimal(m[2]!)) return undefined;
  const [a, b, c, d] = ipaddr.IPv4.parse(m[2]!).octets as [number, number, number, number];
  return `${m[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

/** True when the text is a valid single IPv4 or IPv6 address. */
export function isAddress(text: string): boolean {
  try {
    parseStrictAddress(text);
    return true;
  } catch {
    return false;
  }
}

function maskAddress(address: ipaddr.IPv4 | ipaddr.IPv6, prefixLength: number): ipaddr.IPv4 | ipaddr.IPv6 {
  const bytes = address.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes) as ipaddr.IPv4 | ipaddr.IPv6;
}

/** True when the prefix lies inside loopback space (127/8 or ::1), as Go's IsLoopback sees it. */
export function isLoopbackCidr(cidr: Cidr): boolean {
  return cidr.address.range() === 'loopback';
}
