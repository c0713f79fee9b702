/** What ADD reads from the previous plugin's result (prevResult), besides passing it through. */

/**
 * Whether prevResult's IPs include a global IPv6 address, or undefined when it lists none at
 * all. The chain's earlier plugins made the namespace's interfaces and report every address
 * they gave it, so this is what `ip -6 addr show scope global` would find there a moment later,
 * without a process (nsenter + ip) on every ADD.
 */
export function ipv6FromPrevResult(prevResult: unknown): boolean | undefined {
  const ips = (prevResult as { ips?: unknown } | null)?.ips;
  if (!Array.isArray(ips) || ips.length === 0) return undefined;
  return ips.some((ip: { address?: unknown }) => typeof ip?.address === 'string' && ip.address.includes(':') && !/^fe[89ab]/i.test(ip.address));
}
