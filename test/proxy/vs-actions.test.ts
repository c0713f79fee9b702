/**
 * The VirtualService route actions as read from YAML and decided per request, without
 * sockets: Istio's retry conversion (default policy, attempts 0, status codes in retryOn,
 * unimplemented conditions refused by name), Envoy's retry_on outcomes and URX, the replay
 * bound, prefix rewrite and redirect Location.
 */
import test from 'ava';
import { PassThrough } from 'node:stream';
import { ValidationError } from '../../src/errors/index.js';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import { DEFAULT_RETRY_POLICY, isRetriable, RetryState } from '../../src/proxy/http-retry.js';
import { ReplayableBody } from '../../src/proxy/http-retry-body.js';
import { redirectLocation, rewritePath } from '../../src/proxy/http-rewrite.js';

const vs = (route: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x, namespace: shop}
spec:
  hosts: [a.example]
  http:
  - ${route}
    route: [{destination: {host: a.example}}]
`;
const firstRoute = (route: string) => parseProxyConfig(vs(route)).virtualServices[0]!.http[0]!;

test('retries as Istio converts them: attempts 0 is off, numbers are retriable status codes, the rest from the default', (t) => {
  t.is(firstRoute('name: r').retries, undefined, 'no retries field: the default applies at routing');
  t.is(firstRoute('retries: {attempts: 0, retryOn: 5xx}').retries, null);
  const r = firstRoute('retries: {attempts: 4, perTryTimeout: 2s, retryOn: "gateway-error,409"}').retries!;
  t.deepEqual(r.on, ['gateway-error', 'retriable-status-codes']);
  t.deepEqual(r.statusCodes, [409]);
  t.is(r.retries, 4);
  t.is(r.perTryTimeoutMs, 2000);
  t.deepEqual(firstRoute('retries: {attempts: 1}').retries!.on, DEFAULT_RETRY_POLICY.on);
});

test('a retryOn condition the proxy does not implement is refused by name', (t) => {
  const err = t.throws(() => parseProxyConfig(vs('retries: {attempts: 2, retryOn: "5xx,retriable-headers"}'), 'mesh.yaml'), { instanceOf: ValidationError })!;
  t.is(err.flag, 'mesh.yaml: VirtualService shop/x spec.http[0].retries.retryOn');
  t.regex(err.message, /"retriable-headers" is not implemented/);
  t.throws(() => parseProxyConfig(vs('retries: {attempts: 2, retryOn: "5xxx"}')), { message: /retryOn.*"5xxx"/ });
});

test('Envoy retry_on outcomes; URX once the retries run out; a body over the bound is never replayed', (t) => {
  const p = { ...DEFAULT_RETRY_POLICY, on: ['gateway-error' as const], statusCodes: [] };
  t.true(isRetriable(p, { kind: 'response', status: 503 }));
  t.false(isRetriable(p, { kind: 'response', status: 500 }));
  t.true(isRetriable(p, { kind: 'connect-failure' }));
  t.true(isRetriable(DEFAULT_RETRY_POLICY, { kind: 'response', status: 200, grpcStatus: 14 }), 'unavailable');
  t.false(isRetriable(DEFAULT_RETRY_POLICY, { kind: 'reset' }), 'the default does not retry a reset');
  const state = new RetryState(DEFAULT_RETRY_POLICY, new ReplayableBody(new PassThrough(), () => {}), () => 0);
  t.is(state.retryAfter({ kind: 'connect-failure' }), 0);
  t.is(state.retryAfter({ kind: 'connect-failure' }), 0);
  t.is(state.attempt, 3);
  t.is(state.retryAfter({ kind: 'connect-failure' }), undefined);
  t.is(state.flag('UF'), 'UF,URX');
  const source = new PassThrough();
  const big = new ReplayableBody(source, () => {}, 10);
  source.write(Buffer.alloc(11));
  t.false(big.replayable);
  t.is(new RetryState(DEFAULT_RETRY_POLICY, big).retryAfter({ kind: 'connect-failure' }), undefined);
});

test('rewrite.uri replaces the matched prefix (whole path for exact); redirect builds Location', (t) => {
  t.is(rewritePath('/old/x?q=1', { uri: '/new' }, { uri: { prefix: '/old' } }), '/new/x?q=1');
  t.is(rewritePath('/exact', { uri: '/other' }, { uri: { exact: '/exact' } }), '/other');
  t.is(rewritePath('/foo', { uri: '/v2/' }, undefined), '/v2/foo', 'no uri match: Istio matches prefix "/"');
  t.is(redirectLocation({ code: 301, uri: '/n' }, 'a.example', '/o?x=1'), 'http://a.example/n?x=1');
  t.is(redirectLocation({ code: 301, scheme: 'https', port: 8443 }, 'a.example:80', '/o'), 'https://a.example:8443/o');
  t.is(firstRoute('name: r').redirect, undefined);
  t.is(parseProxyConfig(vs('redirect: {uri: /x}').replace('    route: [{destination: {host: a.example}}]\n', '')).virtualServices[0]!.http[0]!.redirect!.code, 301);
});

test('explicit retries on a route that reaches an HTTP2/GRPC port are accepted (HTTP/2 upstreams retry too)', (t) => {
  const entry = (protocol: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: shop}
spec:
  hosts: [a.example]
  ports: [{number: 8080, name: p, protocol: ${protocol}}]
  resolution: DNS
---
`;
  const retried = vs('retries: {attempts: 3, retryOn: "unavailable,internal"}');
  for (const protocol of ['GRPC', 'HTTP2', 'HTTP']) {
    t.deepEqual(parseProxyConfig(entry(protocol) + retried).virtualServices[0]!.http[0]!.retries!.on, ['unavailable', 'internal'], protocol);
  }
});
