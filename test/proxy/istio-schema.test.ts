/**
 * Istio resources are checked against Istio's CRD schemas (unknown fields rejected, as
 * `kubectl apply` with server-side field validation does) and against the field policy: a
 * field the proxy does not implement is refused with its path, or warned about when it cannot
 * change traffic. docs/proxy.md lists the policy table.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { ValidationError } from '../../src/errors/index.js';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import { fieldPolicyMarkdown } from '../../src/proxy/istio-field-policy.js';
import * as seed from '../../src/lab/seed-resources.js';

const vs = (http: string, extra = '') => `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: x, namespace: shop}
spec:
  hosts: [httpbin.org]
${extra}  http:
${http}`;

function rejected(t: import('ava').ExecutionContext, yaml: string): ValidationError {
  const err = t.throws(() => parseProxyConfig(yaml, 'mesh.yaml'), { instanceOf: ValidationError });
  return err!;
}

test('a misspelled field is rejected naming its path, as kubectl apply does', (t) => {
  const err = rejected(t, vs('  - retires: {attempts: 3}\n    route: [{destination: {host: httpbin.org}}]\n'));
  t.is(err.flag, 'mesh.yaml: VirtualService shop/x spec.http[0].retires');
  t.regex(err.message, /^mesh\.yaml: VirtualService shop\/x spec\.http\[0\]\.retires: unknown field: Istio's VirtualService has .*retries.* at spec\.http\[0\]/);
  const deep = rejected(t, vs('  - match: [{headers: {x-user: {exakt: bob}}}]\n    route: [{destination: {host: httpbin.org}}]\n'));
  t.is(deep.flag, 'mesh.yaml: VirtualService shop/x spec.http[0].match[0].headers.x-user.exakt');
  const top = rejected(t, seed.httpbinServiceEntry.replace('  resolution: DNS', '  resolutoin: DNS'));
  t.regex(top.message, /ServiceEntry default\/httpbin-ext spec\.resolutoin: unknown field/);
});

test('valid Istio the proxy does not implement is refused with the field and the reason', (t) => {
  for (const [field, yaml] of [
    ['spec.http[0].mirror', '  - mirror: {host: other.example}\n    route: [{destination: {host: httpbin.org}}]\n'],
    ['spec.http[0].fault.abort.http2Error', '  - fault: {abort: {http2Error: CANCEL}}\n    route: [{destination: {host: httpbin.org}}]\n'],
    ['spec.http[0].match[0].sourceLabels', '  - match: [{sourceLabels: {app: a}}]\n    route: [{destination: {host: httpbin.org}}]\n'],
  ]) {
    const err = rejected(t, vs(yaml!));
    t.is(err.flag, `mesh.yaml: VirtualService shop/x ${field}`);
    t.regex(err.message, /valid Istio, but interpose proxy does not implement it: /);
  }
  const dr = (spec: string) => `apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: httpbin.org\n${spec}`;
  // DestinationRule: what is still not implemented is refused (the implemented rest: test/proxy/dr-*.test.ts).
  t.regex(rejected(t, dr('  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n')).message, /spec\.trafficPolicy\.tls\.mode: valid Istio, but interpose proxy does not implement it: Istio mutual TLS/);
  t.regex(rejected(t, dr('  trafficPolicy: {connectionPool: {http: {maxRetries: 3}}}\n')).message, /spec\.trafficPolicy\.connectionPool\.http\.maxRetries: valid Istio/);
  t.regex(rejected(t, dr('  trafficPolicy: {loadBalancer: {consistentHash: {minimumRingSize: 1024}}}\n')).message, /spec\.trafficPolicy\.loadBalancer\.consistentHash: valid Istio.*consistentHash/);
  t.regex(rejected(t, dr('  trafficPolicy: {outlierDetection: {minHealthPercent: 50}}\n')).message, /spec\.trafficPolicy\.outlierDetection\.minHealthPercent: valid Istio/);
  t.regex(rejected(t, dr('  workloadSelector: {matchLabels: {app: a}}\n')).message, /spec\.workloadSelector: valid Istio.*labels/);
  t.regex(rejected(t, dr('  trafficPolicy: {tls: {mode: MUTUAL, caCertificates: /x.pem}}\n')).message, /spec\.trafficPolicy\.tls\.clientCertificate: .*MUTUAL needs clientCertificate and privateKey/);
  // What the proxy does anyway is accepted.
  t.is(parseProxyConfig(dr('  trafficPolicy: {tls: {mode: DISABLE}}\n  subsets: [{name: v1}]\n')).destinationRules.length, 1);
});

test('fields that cannot change traffic are accepted with one warning line per resource', (t) => {
  const c = parseProxyConfig(seed.httpbinServiceEntry.replace('spec:\n', 'spec:\n  exportTo: [".", istio-system]\n  subjectAltNames: [a]\n'), 'mesh.yaml');
  t.deepEqual(c.warnings, [
    'mesh.yaml: ServiceEntry default/httpbin-ext: accepted without effect: spec.exportTo (the proxy applies every resource in its --config file, as if its workload were in every namespace the resource is exported to); spec.subjectAltNames (used to verify Istio mutual TLS, which interpose proxy does not originate)',
  ]);
  // "~" exports to no workload at all: applying it would change traffic.
  t.regex(rejected(t, seed.httpbinServiceEntry.replace('spec:\n', 'spec:\n  exportTo: ["~"]\n')).message, /spec\.exportTo\[0\]: valid Istio.*hides the resource/);
  t.deepEqual(parseProxyConfig(seed.httpbinServiceEntry).warnings, []);
});

test('schema violations name the field and what Istio accepts', (t) => {
  const timeout = rejected(t, vs('  - timeout: 7\n    route: [{destination: {host: httpbin.org}}]\n'));
  t.is(timeout.flag, 'mesh.yaml: VirtualService shop/x spec.http[0].timeout');
  t.regex(timeout.message, /expected a string/);
  const both = rejected(t, vs('  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: httpbin.org}}]\n'));
  t.is(both.flag, 'mesh.yaml: VirtualService shop/x spec.http[0].match[0].uri');
  t.regex(both.message, /only one of exact, prefix, regex/);
  const loc = rejected(t, seed.httpbinServiceEntry.replace('MESH_EXTERNAL', 'OUTSIDE'));
  t.regex(loc.message, /spec\.location: "OUTSIDE": expected one of MESH_EXTERNAL, MESH_INTERNAL/);
  const regex = rejected(t, vs('  - match: [{headers: {x: {regex: "(a)\\\\1"}}}]\n    route: [{destination: {host: httpbin.org}}]\n'));
  t.regex(regex.message, /headers\.x\.regex: .*expected an RE2 regular expression/);
});

test('resources that used to crash the loader are clean errors', (t) => {
  rejected(t, seed.httpbinServiceEntry.replace(/  ports:\n(    .*\n|  - .*\n)*/, ''));
  // Once crashes, now implemented: they load.
  t.is(parseProxyConfig(vs('  - redirect: {uri: /x}\n')).virtualServices[0]!.http[0]!.redirect?.code, 301);
  t.is(parseProxyConfig(vs('  - directResponse: {status: 200, body: {string: hi}}\n')).virtualServices[0]!.http[0]!.directResponse?.body?.toString(), 'hi');
  rejected(t, 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: [a], http: [null]}\n');
});

test('the policy table covers the seeds and docs/proxy.md lists every row', (t) => {
  const c = parseProxyConfig(seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, seed.googleServiceEntry, seed.httpbinTimeout, seed.egressGateway));
  t.is(c.virtualServices.length, 3);
  t.deepEqual(c.warnings, [
    'config: Gateway default/istio-egressgateway: accepted without effect: spec.selector (not evaluated: interpose proxy serves every Gateway in its --config file)',
  ]);
  // UPDATE_DOCS=1 rewrites the table between the markers, as UPDATE_GOLDEN does for goldens.
  const file = new URL('../../docs/proxy.md', import.meta.url);
  const docs = readFileSync(file, 'utf8');
  const begin = '<!-- field-policy:begin -->\n';
  const end = '\n<!-- field-policy:end -->';
  const table = docs.slice(docs.indexOf(begin) + begin.length, docs.indexOf(end));
  if (process.env['UPDATE_DOCS'] && docs.includes(begin)) {
    writeFileSync(file, docs.replace(`${begin}${table}${end}`, `${begin}${fieldPolicyMarkdown()}${end}`));
    return t.pass();
  }
  t.is(table, fieldPolicyMarkdown(), 'docs/proxy.md lists the field policy: regenerate with UPDATE_DOCS=1 npx ava test/proxy/istio-schema.test.ts');
});
