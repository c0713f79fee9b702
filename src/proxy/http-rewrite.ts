/**
 * The VirtualService route actions that change a request or answer it locally, with the
 * Envoy route semantics Istio translates them to:
 *   - `rewrite.uri` → prefix_rewrite (replaces the matched uri prefix; the whole path for exact
 *     and regex matches; "/" when the route has no uri match), `rewrite.authority` →
 *     host_rewrite_literal (`uriRegexRewrite` is not in the Istio 1.18 schema the proxy validates against);
 *   - `headers` → request/response headers_to_remove, then set (overwrite), then add (append),
 *     destination level before route level;
 *   - `redirect` → Envoy's redirect action (Location, code 301 unless redirectCode);
 *   - `directResponse` → Envoy's direct_response.
 */
import type { FieldFail } from './http-retry.js';
import { integerIn, isObj, optString } from './http-route-fields.js';
import type {
  DirectResponsePolicy,
  HeaderOperations,
  HeaderPolicy,
  HttpMatch,
  RedirectPolicy,
  RewritePolicy,
} from './istio-types.js';

// ---- reading ----

export function readRewrite(raw: unknown, fail: FieldFail): RewritePolicy {
  if (!isObj(raw)) fail('rewrite', raw, 'a mapping');
  const out: RewritePolicy = {};
  const uri = optString(raw, 'uri', 'rewrite', fail);
  if (uri !== undefined && uri !== '') out.uri = uri;
  const authority = optString(raw, 'authority', 'rewrite', fail);
  if (authority !== undefined && authority !== '') out.authority = authority;
  return out;
}

function readOperations(raw: unknown, field: string, fail: FieldFail): HeaderOperations {
  if (!isObj(raw)) fail(field, raw, 'a mapping with set, add and remove');
  const pairs = (key: 'set' | 'add'): [string, string][] => {
    const m = raw[key];
    if (m === undefined || m === null) return [];
    if (!isObj(m)) fail(`${field}.${key}`, m, 'a mapping of header name to value');
    return Object.entries(m).map(([name, value]) => {
      if (typeof value !== 'string') fail(`${field}.${key}.${name}`, value, 'a string');
      return [headerName(name, `${field}.${key}.${name}`, fail), value];
    });
  };
  const removeRaw = raw['remove'] ?? [];
  if (!Array.isArray(removeRaw)) fail(`${field}.remove`, removeRaw, 'a list of header names');
  const remove = removeRaw.map((n, i) => {
    if (typeof n !== 'string') fail(`${field}.remove[${i}]`, n, 'a header name');
    return headerName(n, `${field}.remove[${i}]`, fail);
  });
  return { set: pairs('set'), add: pairs('add'), remove };
}

function headerName(name: string, field: string, fail: FieldFail): string {
  const lower = name.toLowerCase();
  // Envoy refuses to mutate pseudo-headers and Host this way; rewrite.authority sets the host.
  if (lower === '' || lower.startsWith(':') || lower === 'host') fail(field, name, 'a header name other than Host and pseudo-headers (use rewrite.authority for the host)');
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(lower)) fail(field, name, 'an HTTP header name (RFC 9110 token)');
  return lower;
}

/** `headers` at route or destination level (`field` says which, for messages). */
export function readHeaders(raw: unknown, field: string, fail: FieldFail): HeaderPolicy {
  if (!isObj(raw)) fail(field, raw, 'a mapping with request and response');
  const out: HeaderPolicy = {};
  if (raw['request'] !== undefined && raw['request'] !== null) out.request = readOperations(raw['request'], `${field}.request`, fail);
  if (raw['response'] !== undefined && raw['response'] !== null) out.response = readOperations(raw['response'], `${field}.response`, fail);
  return out;
}

const REDIRECT_CODES = [301, 302, 303, 307, 308];

export function readRedirect(raw: unknown, fail: FieldFail): RedirectPolicy {
  if (!isObj(raw)) fail('redirect', raw, 'a mapping');
  const code = raw['redirectCode'] ?? 301;
  if (typeof code !== 'number' || !REDIRECT_CODES.includes(code)) fail('redirect.redirectCode', code, `one of ${REDIRECT_CODES.join(', ')}`);
  const out: RedirectPolicy = { code };
  const uri = optString(raw, 'uri', 'redirect', fail);
  if (uri) out.uri = uri;
  const authority = optString(raw, 'authority', 'redirect', fail);
  if (authority) out.authority = authority;
  const scheme = optString(raw, 'scheme', 'redirect', fail);
  if (scheme) out.scheme = scheme;
  if (raw['port'] !== undefined) out.port = integerIn(raw['port'], 1, 65535, 'redirect.port', 'a port number 1-65535', fail);
  if (raw['derivePort'] !== undefined) {
    const d = raw['derivePort'];
    if (d !== 'FROM_PROTOCOL_DEFAULT' && d !== 'FROM_REQUEST_PORT') fail('redirect.derivePort', d, 'FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT');
    if (out.port !== undefined) fail('redirect.derivePort', d, 'either port or derivePort, not both');
    out.derivePort = d;
  }
  return out;
}

export function readDirectResponse(raw: unknown, fail: FieldFail): DirectResponsePolicy {
  if (!isObj(raw)) fail('directResponse', raw, 'a mapping');
  const status = raw['status'];
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    fail('directResponse.status', status, 'an HTTP status from 200 to 599');
  }
  const out: DirectResponsePolicy = { status };
  const body = raw['body'];
  if (body !== undefined && body !== null) {
    if (!isObj(body)) fail('directResponse.body', body, 'a mapping with string or bytes');
    if (typeof body['string'] === 'string') out.body = Buffer.from(body['string']);
    else if (typeof body['bytes'] === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(body['bytes'])) out.body = Buffer.from(body['bytes'], 'base64');
    else fail('directResponse.body', body, 'string (text) or bytes (base64)');
    // Envoy's max_direct_response_body_size_bytes default.
    if (out.body.length > 4096) fail('directResponse.body', `${out.body.length} bytes`, 'at most 4096 bytes (Envoy\'s direct response limit)');
  }
  return out;
}

// ---- applying ----

/** The path (query kept) after `rewrite`, given the match block that selected the route. */
export function rewritePath(path: string, rewrite: RewritePolicy, match: HttpMatch | undefined): string {
  const q = path.indexOf('?');
  const bare = q === -1 ? path : path.slice(0, q);
  const query = q === -1 ? '' : path.slice(q);
  if (rewrite.uri === undefined) return path;
  const uri = match?.uri;
  const matched = uri?.prefix !== undefined ? uri.prefix.length : uri ? bare.length : 1;
  return rewrite.uri + bare.slice(matched) + query;
}

/** Header operations applied to a name/value list (the order of untouched headers kept). */
export function applyHeaderOperations(headers: [string, string][], ops: HeaderOperations | undefined): [string, string][] {
  if (!ops) return headers;
  const drop = new Set([...ops.remove, ...ops.set.map(([n]) => n)]);
  const out = drop.size === 0 ? headers : headers.filter(([n]) => !drop.has(n.toLowerCase()));
  return [...out, ...ops.set, ...ops.add];
}

/** The same for a Node header object (HTTP/2 side): repeated values become arrays. */
export function applyHeaderOperationsToObject(
  headers: Record<string, string | string[] | number | undefined>,
  ops: HeaderOperations | undefined,
): void {
  if (!ops) return;
  for (const name of [...ops.remove, ...ops.set.map(([n]) => n)]) delete headers[name];
  for (const [name, value] of [...ops.set, ...ops.add]) {
    const old = headers[name];
    headers[name] = old === undefined ? value : [...(Array.isArray(old) ? old : [String(old)]), value];
  }
}

/** Destination-level operations first, then the route's (Envoy: weighted cluster, then route). */
export function mergeHeaderPolicies(first: HeaderPolicy | undefined, second: HeaderPolicy | undefined): HeaderPolicy | undefined {
  if (!first) return second;
  if (!second) return first;
  const merge = (a: HeaderOperations | undefined, b: HeaderOperations | undefined): HeaderOperations | undefined =>
    !a ? b : !b ? a : { set: [...a.set, ...b.set], add: [...a.add, ...b.add], remove: [...a.remove, ...b.remove] };
  const request = merge(first.request, second.request);
  const response = merge(first.response, second.response);
  return { ...(request ? { request } : {}), ...(response ? { response } : {}) };
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

/** The Location of an Envoy redirect for a request to `authority` + `path` (scheme http). */
export function redirectLocation(redirect: RedirectPolicy, authority: string, path: string): string {
  const scheme = (redirect.scheme ?? 'http').toLowerCase();
  const { host, port } = splitAuthority(redirect.authority ?? authority);
  const requestPort = splitAuthority(authority).port;
  let outPort: number | undefined;
  if (redirect.port !== undefined) outPort = redirect.port;
  else if (redirect.derivePort === 'FROM_REQUEST_PORT') outPort = requestPort ?? 80;
  else if (redirect.derivePort === 'FROM_PROTOCOL_DEFAULT') outPort = undefined;
  // Envoy drops a port that is the old scheme's default when the scheme changes.
  else outPort = redirect.scheme && port === DEFAULT_PORTS['http'] ? undefined : port;
  if (outPort !== undefined && outPort === DEFAULT_PORTS[scheme]) outPort = undefined;
  let target = path;
  if (redirect.uri !== undefined) {
    // A query in the new uri replaces the request's; otherwise the request's is kept.
    const q = path.indexOf('?');
    target = redirect.uri.includes('?') || q === -1 ? redirect.uri : redirect.uri + path.slice(q);
  }
  return `${scheme}://${host}${outPort !== undefined ? `:${outPort}` : ''}${target}`;
}

function splitAuthority(authority: string): { host: string; port?: number } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority };
  return { host: m[1]!, ...(m[2] ? { port: Number(m[2]) } : {}) };
}
