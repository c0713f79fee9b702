import ipaddr from 'ipaddr.js';
import { DiscoveryError } from './discovery-error.js';
import type { CidrFinding, CidrRole } from './types.js';

/**
 * Validates one CIDR read from a platform and normalises it to its network address, so that
 * "10.0.0.1/24" (ICP's documented default) becomes "10.0.0.0/24". Rejects anything ipaddr.js
 * does not accept as an IPv4 or IPv6 CIDR, naming where the value came from.
 */
export function parseCidr(value: string, source: string): { cidr: string; family: 4 | 6 } {
  const text = value.trim();
  if (!ipaddr.isValidCIDR(text)) {
    throw new DiscoveryError(
      `${source}: ${JSON.stringify(value)} is not a CIDR`,
      'expected an IPv4 or IPv6 range such as 10.96.0.0/12 or fd00:10:96::/112; the platform output may be malformed or from an unsupported version',
    );
  }
  const [address, prefix] = ipaddr.parseCIDR(text);
  if (address.kind() === 'ipv4') {
    return { cidr: `${ipaddr.IPv4.networkAddressFromCIDR(text).toString()}/${prefix}`, family: 4 };
  }
  return { cidr: `${ipaddr.IPv6.networkAddressFromCIDR(text).toString()}/${prefix}`, family: 6 };
}

/**
 * Turns a field's value into findings. Platforms write several ranges either as a JSON array
 * or as one comma-separated string (dual-stack kubeadm, k3s), so both are accepted; empty and
 * missing values give no findings.
 */
export function findingsFrom(
  value: unknown,
  role: CidrRole,
  source: string,
  assumedDefault = false,
): CidrFinding[] {
  if (value === undefined || value === null || value === '') return [];
  const items = Array.isArray(value) ? value : [value];
  const out: CidrFinding[] = [];
  for (const item of items) {
    if (typeof item !== 'string') {
      throw new DiscoveryError(
        `${source}: expected a CIDR string, found ${JSON.stringify(item)}`,
        'the platform output may be malformed or from an unsupported version',
      );
    }
    for (const part of item.split(',')) {
      if (part.trim() === '') continue;
      out.push({ ...parseCidr(part, source), role, source, assumedDefault });
    }
  }
  return out;
}

/** The distinct ranges, pods first then services, in the order found. */
export function includeRanges(findings: readonly CidrFinding[]): string[] {
  const ordered = [...findings.filter((f) => f.role === 'pod'), ...findings.filter((f) => f.role === 'service')];
  return [...new Set(ordered.map((f) => f.cidr))];
}
