/** "ip:port" the way Envoy prints addresses: IPv6 in brackets, IPv4-mapped IPv6 unwrapped. */
export function formatHostPort(address: string | undefined, port: number | undefined): string {
  if (!address || port === undefined) return '-';
  const a = unmapIPv4(address);
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

/** "::ffff:192.0.2.1" → "192.0.2.1" (dual-stack listeners report IPv4 peers this way). */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
