/**
 * Reads the actions of one VirtualService http route besides its destinations — `retries`,
 * `fault`, `rewrite`, `headers`, `redirect`, `directResponse` — into HttpRoute fields. The
 * shapes were checked against Istio's schema already; this reads their meaning, and `fail`
 * names the field (relative to the route) when a value is valid for Istio but not usable.
 */
import { readFault } from './http-fault.js';
import { readRetries, type FieldFail } from './http-retry.js';
import { readDirectResponse, readHeaders, readRedirect, readRewrite } from './http-rewrite.js';
import type { HttpRoute } from './istio-types.js';

export type RouteActions = Pick<HttpRoute, 'retries' | 'fault' | 'rewrite' | 'headers' | 'redirect' | 'directResponse'>;

export function readRouteActions(route: Record<string, unknown>, fail: FieldFail): RouteActions {
  const out: RouteActions = {};
  const has = (k: string) => route[k] !== undefined && route[k] !== null;
  if (has('retries')) out.retries = readRetries(route['retries'], fail);
  if (has('fault')) out.fault = readFault(route['fault'], fail);
  if (has('rewrite')) out.rewrite = readRewrite(route['rewrite'], fail);
  if (has('headers')) out.headers = readHeaders(route['headers'], 'headers', fail);
  if (has('redirect')) out.redirect = readRedirect(route['redirect'], fail);
  if (has('directResponse')) out.directResponse = readDirectResponse(route['directResponse'], fail);
  if (out.redirect && out.directResponse) fail('directResponse', route['directResponse'], 'either redirect or directResponse, not both');
  if (out.redirect && out.rewrite) fail('rewrite', route['rewrite'], 'no rewrite next to redirect (Istio forbids both)');
  return out;
}
