/**
 * Checks across resources that the per-field policy (istio-field-policy.ts) cannot make: a
 * field that is implemented on its own but not for every destination it can reach. Such a
 * configuration is refused at load, never ignored at request time.
 *
 * Today there is one: `retries` on an http route that can reach a ServiceEntry port of
 * protocol HTTP2 or GRPC. Those requests are proxied per stream to an HTTP/2 upstream, a path
 * with no retry loop (http2-proxy.ts), so the explicit policy would have no effect.
 */
import type { ProxyConfig } from './istio-types.js';
import { hostMatches } from './host-table.js';
import { IstioFieldError } from './istio-field-error.js';

const HTTP2_UPSTREAM = new Set(['HTTP2', 'GRPC']);

/** Throws IstioFieldError for the first combination the proxy cannot honour. */
export function checkUnsupportedCombinations(config: ProxyConfig, source: string): void {
  for (const vs of config.virtualServices) {
    vs.http.forEach((route, i) => {
      if (!route.retries) return; // no `retries` field, or `attempts: 0`
      for (const { destination } of route.route) {
        const http2Port = config.serviceEntries
          .filter((se) => se.hosts.some((h) => hostMatches(h, destination.host) || hostMatches(destination.host, h)))
          .flatMap((se) => se.ports)
          .find((p) => HTTP2_UPSTREAM.has(p.protocol) && (destination.port === undefined || p.number === destination.port));
        if (http2Port) {
          throw new IstioFieldError(
            `${source}: VirtualService ${vs.namespace}/${vs.name}`,
            `spec.http[${i}].retries`,
            undefined,
            `valid Istio, but interpose proxy does not retry requests sent upstream in HTTP/2: ` +
              `destination ${destination.host} reaches port ${http2Port.number} (${http2Port.protocol}); ` +
              'remove `retries` or set `attempts: 0` for this route',
          );
        }
      }
    });
  }
}
