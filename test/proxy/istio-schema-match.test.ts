/**
 * Each VirtualService http matcher, read from YAML and applied by selectHttpRoute, with
 * Envoy's semantics: blocks OR-ed, fields AND-ed, RE2 full-match regexes.
 */
import test from 'ava';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import { selectHttpRoute, type HttpRequestFacts } from '../../src/proxy/routes.js';

/** A VirtualService whose first route has MATCH and whose second catches the rest. */
function routeFor(match: string, req: Partial<HttpRequestFacts>): string {
  const c = parseProxyConfig(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: m}
spec:
  hosts: [api.example.com]
  http:
  - name: gated
    match: ${match}
    route: [{destination: {host: canary.example.com}}]
  - name: rest
    route: [{destination: {host: api.example.com}}]
`);
  const facts: HttpRequestFacts = { path: '/', authority: 'api.example.com', method: 'GET', scheme: 'http', port: 80, gateway: 'mesh', rawHeaders: [], ...req };
  return selectHttpRoute(c.virtualServices[0]!, facts)!.name!;
}

test('headers: exact, prefix, regex, presence; names case-insensitive; repeated values joined by ","', (t) => {
  t.is(routeFor('[{headers: {x-canary: {exact: "yes"}}}]', { rawHeaders: ['X-Canary', 'yes'] }), 'gated');
  t.is(routeFor('[{headers: {x-canary: {exact: "yes"}}}]', { rawHeaders: ['X-Canary', 'no'] }), 'rest');
  t.is(routeFor('[{headers: {x-canary: {exact: "yes"}}}]', {}), 'rest', 'a header-gated route does not take requests without the header');
  t.is(routeFor('[{headers: {X-Canary: {prefix: "ye"}}}]', { rawHeaders: ['x-canary', 'yes'] }), 'gated');
  t.is(routeFor('[{headers: {x-user: {regex: "(?i)BOB|alice"}}}]', { rawHeaders: ['x-user', 'bob'] }), 'gated');
  t.is(routeFor('[{headers: {x-user: {regex: "bob"}}}]', { rawHeaders: ['x-user', 'bobby'] }), 'rest', 'regex matches the whole value');
  t.is(routeFor('[{headers: {x-user: {}}}]', { rawHeaders: ['x-user', ''] }), 'gated');
  t.is(routeFor('[{headers: {x-user: {regex: ".*"}}}]', {}), 'rest');
  t.is(routeFor('[{headers: {x-a: {exact: "1,2"}}}]', { rawHeaders: ['x-a', '1', 'X-A', '2'] }), 'gated');
});

test('withoutHeaders: fails when the header matches; missing counts as ""; {} means absent', (t) => {
  t.is(routeFor('[{withoutHeaders: {x-debug: {exact: "1"}}}]', { rawHeaders: ['x-debug', '1'] }), 'rest');
  t.is(routeFor('[{withoutHeaders: {x-debug: {exact: "1"}}}]', { rawHeaders: ['x-debug', '0'] }), 'gated');
  t.is(routeFor('[{withoutHeaders: {x-debug: {exact: "1"}}}]', {}), 'gated');
  t.is(routeFor('[{withoutHeaders: {x-debug: {regex: "x?"}}}]', {}), 'rest', 'the missing header is "", which x? matches');
  t.is(routeFor('[{withoutHeaders: {x-debug: {}}}]', {}), 'gated');
  t.is(routeFor('[{withoutHeaders: {x-debug: {}}}]', { rawHeaders: ['x-debug', 'x'] }), 'rest');
});

test('queryParams: first value, percent-decoded; uri ignores the query string', (t) => {
  t.is(routeFor('[{queryParams: {v: {exact: "a b"}}}]', { path: '/x?w=1&v=a%20b&v=c' }), 'gated');
  t.is(routeFor('[{queryParams: {v: {exact: "c"}}}]', { path: '/x?v=a&v=c' }), 'rest');
  t.is(routeFor('[{queryParams: {v: {}}}]', { path: '/x?v' }), 'gated');
  t.is(routeFor('[{queryParams: {v: {regex: "[0-9]+"}}}]', { path: '/x' }), 'rest');
  t.is(routeFor('[{uri: {exact: /x}}]', { path: '/x?v=1' }), 'gated');
});

test('method, authority, scheme, ignoreUriCase', (t) => {
  t.is(routeFor('[{method: {exact: POST}}]', { method: 'POST' }), 'gated');
  t.is(routeFor('[{method: {exact: POST}}]', { method: 'GET' }), 'rest');
  t.is(routeFor('[{authority: {prefix: "api."}}]', { authority: 'api.example.com:8080' }), 'gated');
  t.is(routeFor('[{authority: {exact: "other"}}]', {}), 'rest');
  t.is(routeFor('[{scheme: {exact: http}}]', {}), 'gated');
  t.is(routeFor('[{scheme: {exact: https}}]', {}), 'rest');
  t.is(routeFor('[{uri: {prefix: /API}, ignoreUriCase: true}]', { path: '/api/v1' }), 'gated');
  t.is(routeFor('[{uri: {prefix: /API}}]', { path: '/api/v1' }), 'rest');
  t.is(routeFor('[{uri: {regex: "/API.*"}, ignoreUriCase: true}]', { path: '/api/v1' }), 'rest', 'not for regex, as in Envoy');
});

test('blocks are OR-ed, fields within a block AND-ed', (t) => {
  const both = '[{headers: {x-a: {exact: "1"}}, method: {exact: POST}}]';
  t.is(routeFor(both, { rawHeaders: ['x-a', '1'], method: 'POST' }), 'gated');
  t.is(routeFor(both, { rawHeaders: ['x-a', '1'] }), 'rest');
  const either = '[{headers: {x-a: {exact: "1"}}}, {method: {exact: POST}}]';
  t.is(routeFor(either, { rawHeaders: ['x-a', '1'] }), 'gated');
  t.is(routeFor(either, { method: 'POST' }), 'gated');
  t.is(routeFor(either, {}), 'rest');
});

test('RE2: linear time on a pattern that stalls a backtracking engine; backreferences refused', (t) => {
  // A backtracking engine would take ages here (2^40 paths); RE2 answers at once.
  t.is(routeFor('[{headers: {x: {regex: "(a+)+b"}}}]', { rawHeaders: ['x', `${'a'.repeat(40)}c`] }), 'rest');
  t.throws(() => routeFor('[{headers: {x: {regex: "(a)\\\\1"}}}]', {}), { message: /regex.*RE2/ });
  t.throws(() => routeFor('[{uri: {regex: "a)|(b"}}]', {}), { message: /RE2/ }, 'the anchoring group is not a way to balance parentheses');
  t.throws(() => routeFor('[{headers: {":path": {exact: /}}}]', {}), { message: /pseudo-headers/ });
});
