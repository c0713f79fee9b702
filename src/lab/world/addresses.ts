/**
 * The world's fixed addresses, all from documentation ranges (RFC 5737 / RFC 3849): the pod
 * and world ends of the link, and one address per stand-in external service.
 */

/** The link between the pod and the world namespaces. */
export const LINK = {
  pod: { v4: '198.51.100.10', v6: '2001:db8:100::10' },
  world: { v4: '198.51.100.1', v6: '2001:db8:100::1' },
  prefix: { v4: 24, v6: 64 },
} as const;

/** A stand-in for an external service the seeds call. */
export interface StandInService {
  host: string;
  address: string;
  address6: string;
  port: number;
  protocol: 'HTTP' | 'HTTPS';
}

/** httpbin.org over plain HTTP: /headers, /status/CODE (418 teapot), /delay/N, /get, /ip. */
export const HTTPBIN: StandInService = {
  host: 'httpbin.org',
  address: '203.0.113.10',
  address6: '2001:db8:113::10',
  port: 80,
  protocol: 'HTTP',
};

/** www.google.com over TLS, with a certificate from the world's own test CA. */
export const GOOGLE: StandInService = {
  host: 'www.google.com',
  address: '203.0.113.20',
  address6: '2001:db8:113::20',
  port: 443,
  protocol: 'HTTPS',
};

/** An address in the world with nothing listening (connections are refused). */
export const NOWHERE = { address: '203.0.113.99' } as const;

export const STAND_INS: readonly StandInService[] = [HTTPBIN, GOOGLE];
