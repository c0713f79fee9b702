import test from 'ava';
import { ValidationError } from '../../src/errors/index.js';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import { goDurationMs } from '../../src/config/value-parsers.js';
import * as seed from '../../src/lab/seed-resources.js';

test('reads the seeds unchanged: mesh mode, ServiceEntries, VirtualService timeout, gateway resources', (t) => {
  const c = parseProxyConfig(
    seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, seed.googleServiceEntry, seed.httpbinTimeout, seed.egressGateway),
  );
  t.is(c.mode, 'REGISTRY_ONLY');
  t.deepEqual(
    c.serviceEntries.map((s) => [s.name, s.hosts, s.ports.map((p) => `${p.number}/${p.protocol}`), s.resolution, s.location]),
    [
      ['httpbin-ext', ['httpbin.org'], ['80/HTTP'], 'DNS', 'MESH_EXTERNAL'],
      ['google', ['www.google.com'], ['443/HTTPS'], 'DNS', 'MESH_EXTERNAL'],
    ],
  );
  const timeout = c.virtualServices.find((v) => v.name === 'httpbin-ext')!;
  t.deepEqual(timeout.gateways, ['mesh']);
  t.is(timeout.http[0]!.timeoutMs, 3000);
  t.deepEqual(timeout.http[0]!.route, [{ destination: { host: 'httpbin.org' }, weight: 100 }]);
  const gw = c.gateways[0]!;
  t.is(gw.name, 'istio-egressgateway');
  t.deepEqual(gw.servers.map((s) => [s.port.number, s.port.protocol, s.hosts, s.tlsMode]), [
    [80, 'HTTP', ['httpbin.org'], undefined],
    [443, 'TLS', ['www.google.com'], 'PASSTHROUGH'],
  ]);
  const tls = c.virtualServices.find((v) => v.name === 'direct-google-through-egress-gateway')!;
  t.deepEqual(tls.tls[1]!.match[0], { sniHosts: ['www.google.com'], port: 443, gateways: ['istio-egressgateway'] });
  t.is(c.destinationRules[0]!.host, 'istio-egressgateway.istio-system.svc.cluster.local');
});

test('ALLOW_ANY is the default, as in Istio', (t) => {
  t.is(parseProxyConfig(seed.httpbinServiceEntry).mode, 'ALLOW_ANY');
  t.is(parseProxyConfig('').mode, 'ALLOW_ANY');
});

test('the mesh mode is read from the istio ConfigMap (kubectl get configmap istio -o yaml) and IstioOperator', (t) => {
  const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  mesh: |-
    accessLogFile: /dev/stdout
    outboundTrafficPolicy:
      mode: REGISTRY_ONLY
`;
  t.is(parseProxyConfig(configMap).mode, 'REGISTRY_ONLY');
  const operator = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    outboundTrafficPolicy:
      mode: REGISTRY_ONLY
`;
  t.is(parseProxyConfig(operator).mode, 'REGISTRY_ONLY');
});

test('v1beta1 and v1 API versions are accepted; unknown kinds are listed as ignored', (t) => {
  const c = parseProxyConfig(
    seed.docs(
      seed.httpbinServiceEntry.replace('v1alpha3', 'v1beta1'),
      seed.googleServiceEntry.replace('v1alpha3', 'v1'),
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny\nspec: {}\n',
    ),
  );
  t.is(c.serviceEntries.length, 2);
  t.deepEqual(c.ignored, ['AuthorizationPolicy "deny"']);
});

function rejects(t: import('ava').ExecutionContext, yaml: string, flag: RegExp, value: unknown) {
  const err = t.throws(() => parseProxyConfig(yaml, 'mesh.yaml'), { instanceOf: ValidationError });
  t.regex(err!.flag, flag);
  t.deepEqual(err!.value, value);
  return err!;
}

test('a malformed resource is an error naming the resource, the field, the value and what is accepted', (t) => {
  const err = rejects(t, seed.httpbinServiceEntry.replace('protocol: HTTP', 'protocol: HTTPX'), /^mesh\.yaml: ServiceEntry default\/httpbin-ext spec\.ports\[0\]\.protocol$/, 'HTTPX');
  t.regex(err.message, /one of HTTP, HTTPS, TLS, TCP/);
  rejects(t, seed.httpbinServiceEntry.replace('number: 80', 'number: 99999'), /spec\.ports\[0\]\.number$/, 99999);
  rejects(t, seed.httpbinServiceEntry.replace('resolution: DNS', 'resolution: MAGIC'), /spec\.resolution$/, 'MAGIC');
  rejects(t, seed.httpbinTimeout.replace('timeout: 3s', 'timeout: soon'), /^mesh\.yaml: VirtualService default\/httpbin-ext spec\.http\[0\]\.timeout$/, 'soon');
  rejects(t, seed.httpbinServiceEntry.replace('networking.istio.io/v1alpha3', 'networking.istio.io/v2'), /apiVersion$/, 'networking.istio.io/v2');
  rejects(t, seed.httpbinServiceEntry.replace('  - httpbin.org', '  - "http://httpbin.org"'), /spec\.hosts\[0\]$/, 'http://httpbin.org');
  rejects(t, seed.meshMode('ALLOW_ANY').replace('ALLOW_ANY', 'ALLOW_SOME'), /outboundTrafficPolicy\.mode$/, 'ALLOW_SOME');
  rejects(
    t,
    seed.googleServiceEntry.replace('resolution: DNS', 'resolution: STATIC\n  endpoints:\n  - address: not-an-ip'),
    /spec\.endpoints\[0\]\.address$/,
    'not-an-ip',
  );
  rejects(t, seed.httpbinServiceEntry.replace('  hosts:\n  - httpbin.org\n', '  addresses: [300.1.1.1]\n  hosts:\n  - httpbin.org\n'), /spec\.addresses\[0\]$/, '300.1.1.1');
});

test('a Gateway TLS server must be PASSTHROUGH (interpose never terminates TLS)', (t) => {
  const err = t.throws(() => parseProxyConfig(seed.egressGateway.replace('mode: PASSTHROUGH', 'mode: SIMPLE')), { instanceOf: ValidationError });
  t.regex(err!.message, /Gateway default\/istio-egressgateway spec\.servers\[1\]\.tls\.mode.*PASSTHROUGH/);
});

test('YAML syntax errors name the file and document', (t) => {
  const err = t.throws(() => parseProxyConfig('a: [1,\n', 'mesh.yaml'), { instanceOf: ValidationError });
  t.regex(err!.flag, /^mesh\.yaml document 1$/);
});

test('durations: protobuf style, rejects anything else', (t) => {
  t.is(goDurationMs('3s'), 3000);
  t.is(goDurationMs('0.5s'), 500);
  t.is(goDurationMs('100ms'), 100);
  t.is(goDurationMs('1m30s'), 90_000);
  t.is(goDurationMs('1h'), 3_600_000);
  t.is(goDurationMs('3'), undefined);
  t.is(goDurationMs('3 s'), undefined);
  t.is(goDurationMs(''), undefined);
});
