/**
 * DestinationRule traffic policies with curl in a pod namespace, the proxy (uid 1337) between it
 * and upstream servers in the world namespace (test/proxy/helpers/dr-upstreams.ts): TLS
 * origination (SIMPLE, wrong CA, SNI/SAN mismatch, MUTUAL against a server that requires a
 * client certificate), connectionPool overflow (503 UO) and maxRequestsPerConnection, outlier
 * ejection of a failing endpoint, and subsets chosen by endpoint labels. Before DestinationRules
 * were implemented every one of these fields was refused (or, earlier, ignored): each test
 * asserts what only the implemented policy does.
 */
import test from 'ava';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { isRoot, kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import type { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { createTestCa, type TestCa } from '../../src/lab/world/test-ca.js';
import { startPodProxy, type PodProxy } from './helpers/pod-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';
import type { UpstreamSpec } from './helpers/dr-upstreams.js';
import * as seed from '../../src/lab/seed-resources.js';

const A = '203.0.113.31';
const MTLS = '203.0.113.32';
const B = '203.0.113.33';
const FAILING = '203.0.113.34';
/** An endpoint whose SYNs the world drops: a connect to it never completes. */
const SILENT = '203.0.113.35';

let world: World;
let proxy: ProxyProcess;
let reload: PodProxy['apply'];
let ca: TestCa;
let upstreams: ResultPromise | undefined;

test.before(async () => {
  if (!isRoot) return;
  world = await World.create({ prefix: 'dr' });
  for (const a of [A, MTLS, B, FAILING, SILENT]) await world.inWorld(['ip', 'addr', 'add', `${a}/32`, 'dev', 'lo']);
  await world.inWorld(['iptables', '-A', 'INPUT', '-d', SILENT, '-p', 'tcp', '-j', 'DROP']);
  const dir = join(world.dir, 'dr-ca');
  mkdirSync(dir);
  ca = await createTestCa(dir, ['svc.test', 'client.test']);
  // The proxy reads the client key as uid 1337.
  chmodSync(ca.servers['client.test']!.key, 0o644);
  const svc = ca.servers['svc.test']!;
  const specs: UpstreamSpec[] = [
    { name: 'a', address: A, port: 8080 },
    { name: 'b', address: B, port: 8080 },
    { name: 'failing', address: FAILING, port: 8080, fail: true },
    { name: 'tls', address: A, port: 8443, tls: svc },
    { name: 'mtls', address: MTLS, port: 8443, tls: { ...svc, clientCa: ca.caCert } },
  ];
  const script = fileURLToPath(new URL('./helpers/dr-upstreams.ts', import.meta.url));
  upstreams = execa('ip', ['netns', 'exec', world.world.name, process.execPath, '--import', 'tsx', script, JSON.stringify(specs)], { reject: false });
  await new Promise<void>((resolve, reject) => {
    upstreams!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    void upstreams!.then((r) => reject(new Error(`upstreams exited: ${String(r.stderr)}`)));
  });
  ({ proxy, apply: reload } = await startPodProxy(world, seed.meshMode('REGISTRY_ONLY')));
});

test.after.always(async () => {
  await proxy?.stop();
  upstreams?.kill('SIGTERM');
  await upstreams;
  await world?.destroy();
});

/** Applies RESOURCES under a REGISTRY_ONLY mesh. */
async function apply(...resources: string[]): Promise<void> {
  await reload(seed.docs(seed.meshMode('REGISTRY_ONLY'), ...resources));
}

/** curl http://HOST/PATH from the pod, HOST resolved to A (the proxy routes by Host). */
async function curl(host: string, path = '/', extra: string[] = []): Promise<{ code: string; body: string }> {
  const r = await world.inPod(['curl', '-sS', '-m', '10', '--resolve', `${host}:80:${A}`, ...extra, '-w', '\n%{http_code}', `http://${host}${path}`], { reject: false });
  const out = String(r.stdout);
  const cut = out.lastIndexOf('\n');
  return { body: out.slice(0, cut), code: out.slice(cut + 1) };
}

const serverOf = (body: string) => (JSON.parse(body) as { server: string }).server;

/** A ServiceEntry HOST: port 80 (HTTP) served by ENDPOINTS on TARGET. */
function entry(host: string, target: number, endpoints: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.replace(/\./g, '-')}}
spec:
  hosts: [${host}]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: ${target}}]
  resolution: STATIC
  endpoints: ${endpoints}
`;
}

function rule(host: string, spec: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host.replace(/\./g, '-')}}
spec:
  host: ${host}
${spec}`;
}

const tlsEntry = entry('svc.test', 8443, `[{address: ${A}}]`);
const mtlsEntry = entry('svc.test', 8443, `[{address: ${MTLS}}]`);

kernelTest('tls SIMPLE: plain HTTP from the pod, TLS to targetPort 8443, verified against caCertificates', async (t) => {
  await apply(tlsEntry, rule('svc.test', `  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: ${ca.caCert}}}\n`));
  const mark = proxy.accessLog.length;
  const r = await curl('svc.test');
  t.is(r.code, '200', r.body);
  const answer = JSON.parse(r.body) as { server: string; sni: string };
  t.is(answer.server, 'tls');
  t.is(answer.sni, 'svc.test', 'the SNI is the request host (auto SNI)');
  const line = parseLogLine(await proxy.nextAccessLog(/"GET \/ HTTP\/1\.1" 200/, mark));
  t.is(line.upstreamHost, `${A}:8443`);
  t.is(line.cluster, 'outbound|80||svc.test');
});

kernelTest('tls SIMPLE with a CA that did not sign the server: 503 UF,URX (the default Istio retries try the connection twice more), the TLS failure in body and log', async (t) => {
  await apply(tlsEntry, rule('svc.test', `  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: ${world.caCert}}}\n`));
  const mark = proxy.accessLog.length;
  const r = await curl('svc.test');
  t.is(r.code, '503');
  t.regex(r.body, /transport failure reason: TLS_error:.*CERTIFICATE_VERIFY_FAILED/);
  const line = await proxy.nextAccessLog(/"GET \/ HTTP\/1\.1" 503/, mark);
  t.regex(line, / 503 UF,URX .* "TLS_error:\|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"$/);
});

kernelTest('tls sni and subjectAltNames: a certificate that does not name them is refused (503 UF), one that does is accepted', async (t) => {
  const tls = (extra: string) => rule('svc.test', `  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: ${ca.caCert}, ${extra}}}\n`);
  await apply(tlsEntry, tls('sni: other.test'));
  const sniMismatch = await curl('svc.test');
  t.is(sniMismatch.code, '503');
  t.regex(sniMismatch.body, /verify SAN list/);
  await apply(tlsEntry, tls('subjectAltNames: [other.test]'));
  const sanMismatch = await curl('svc.test');
  t.is(sanMismatch.code, '503');
  t.regex(sanMismatch.body, /verify SAN list/);
  await apply(tlsEntry, tls('sni: svc.test, subjectAltNames: [other.test, svc.test]'));
  t.is((await curl('svc.test')).code, '200');
});

kernelTest('tls MUTUAL: the client certificate is presented to a server that requires one; SIMPLE is refused there', async (t) => {
  const client = ca.servers['client.test']!;
  await apply(mtlsEntry, rule('svc.test', `  trafficPolicy: {tls: {mode: MUTUAL, caCertificates: ${ca.caCert}, clientCertificate: ${client.cert}, privateKey: ${client.key}}}\n`));
  const r = await curl('svc.test');
  t.is(r.code, '200', r.body);
  t.like(JSON.parse(r.body), { server: 'mtls', clientCn: 'client.test' });
  await apply(mtlsEntry, rule('svc.test', `  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: ${ca.caCert}}}\n`));
  const mark = proxy.accessLog.length;
  const refused = await curl('svc.test');
  t.is(refused.code, '503');
  t.regex(await proxy.nextAccessLog(/"GET \/ HTTP\/1\.1" 503/, mark), / 503 UF,URX .*"TLS_error:/);
});

kernelTest('connectionPool: beyond maxConnections + http1MaxPendingRequests requests get 503 UO; maxRequestsPerConnection closes connections', async (t) => {
  const slow = entry('slow.test', 8080, `[{address: ${A}}]`);
  await apply(slow, rule('slow.test', '  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}\n'));
  const mark = proxy.accessLog.length;
  const answers = await Promise.all([1, 2, 3, 4].map(() => curl('slow.test', '/delay/1500')));
  const codes = answers.map((a) => a.code).sort();
  t.deepEqual(codes, ['200', '200', '503', '503'], 'one connection, one pending request: the other two overflow');
  const overflow = parseLogLine(await proxy.nextAccessLog(/"GET \/delay\/1500 HTTP\/1\.1" 503/, mark));
  t.is(overflow.flags, 'UO');
  t.is(overflow.cluster, 'outbound|80||slow.test');

  // Three requests on one client connection: without the limit they would share one upstream connection.
  await apply(slow, rule('slow.test', '  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 1}}}\n'));
  const r = await world.inPod(['curl', '-sS', '-m', '10', '--resolve', `slow.test:80:${A}`, 'http://slow.test/', 'http://slow.test/', 'http://slow.test/'], { reject: false });
  const ports = String(r.stdout).trim().split('\n').map((l) => (JSON.parse(l) as { clientPort: number }).clientPort);
  t.is(new Set(ports).size, 3, `upstream client ports ${ports.join(', ')}`);
});

kernelTest('outlierDetection: the failing endpoint is ejected after consecutive5xxErrors, the rest is served by the healthy one', async (t) => {
  const pool = entry('pool.test', 8080, `[{address: ${A}}, {address: ${FAILING}}]`);
  await apply(pool, rule('pool.test', '  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}\n'));
  const codes: string[] = [];
  for (let i = 0; i < 12; i++) codes.push((await curl('pool.test')).code);
  t.is(codes.filter((c) => c === '500').length, 2, `answers: ${codes.join(' ')}`);
  t.deepEqual(codes.slice(-6), ['200', '200', '200', '200', '200', '200']);
});

kernelTest('subsets: a route\'s destination.subset picks the endpoints carrying the subset\'s labels', async (t) => {
  const labelled = entry('shop.test', 8080, `[{address: ${A}, labels: {version: v1}}, {address: ${B}, labels: {version: v2}}]`);
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [shop.test]
  http:
  - match: [{headers: {x-version: {exact: v2}}}]
    route: [{destination: {host: shop.test, subset: v2}}]
  - route: [{destination: {host: shop.test, subset: v1}}]
`;
  await apply(labelled, vs, rule('shop.test', '  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n'));
  const plain: string[] = [];
  const v2: string[] = [];
  // In runs, so that round robin over both endpoints could not pass for a subset.
  for (let i = 0; i < 4; i++) plain.push(serverOf((await curl('shop.test')).body));
  for (let i = 0; i < 4; i++) v2.push(serverOf((await curl('shop.test', '/', ['-H', 'x-version: v2'])).body));
  t.deepEqual(plain, ['a', 'a', 'a', 'a']);
  t.deepEqual(v2, ['b', 'b', 'b', 'b']);
  const mark = proxy.accessLog.length;
  await curl('shop.test');
  t.is(parseLogLine(await proxy.nextAccessLog(/"GET \/ HTTP\/1\.1" 200/, mark)).cluster, 'outbound|80|v1|shop.test');
});

kernelTest('ServiceEntry endpoint weights: round robin gives each endpoint its weight\'s share of every cycle, with or without a DestinationRule', async (t) => {
  const weighted = entry('weighted.test', 8080, `[{address: ${A}, weight: 3}, {address: ${B}, weight: 1}]`);
  for (const resources of [[weighted], [weighted, rule('weighted.test', '  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n')]]) {
    await apply(...resources);
    const servers: string[] = [];
    for (let i = 0; i < 8; i++) servers.push(serverOf((await curl('weighted.test')).body));
    // Two whole cycles of 3 + 1: exactly six answers from a and two from b.
    t.is(servers.filter((s) => s === 'a').length, 6, servers.join(' '));
    t.is(servers.filter((s) => s === 'b').length, 2, servers.join(' '));
  }
  // weight 0 means 1, as Istio sends it to Envoy: equal shares.
  await apply(entry('weighted.test', 8080, `[{address: ${A}, weight: 0}, {address: ${B}}]`));
  const equal: string[] = [];
  for (let i = 0; i < 4; i++) equal.push(serverOf((await curl('weighted.test')).body));
  t.is(equal.filter((s) => s === 'a').length, 2, equal.join(' '));
});

kernelTest('connectionPool.tcp.connectTimeout bounds the connect to an endpoint that never answers: 503 UF,URX long before the proxy\'s 10 s default', async (t) => {
  const silent = entry('silent.test', 8080, `[{address: ${SILENT}}]`);
  await apply(silent, rule('silent.test', '  trafficPolicy: {connectionPool: {tcp: {connectTimeout: 200ms}}}\n'));
  const mark = proxy.accessLog.length;
  // Three tries of 200 ms (Istio's default retries) fit in curl's 5 s; three of the proxy's
  // default 10 s would not, and curl would give up with no status (000).
  const r = await curl('silent.test', '/', ['-m', '5']);
  t.is(r.code, '503', r.body);
  const line = await proxy.nextAccessLog(/"GET \/ HTTP\/1\.1" 503/, mark);
  t.regex(line, / 503 UF,URX /);
  t.true(line.includes(`outbound|80||silent.test`), line);
});

kernelTest('connectionPool.http.idleTimeout closes a pooled upstream connection once idle that long; without it the connection is reused', async (t) => {
  const pooled = entry('idle.test', 8080, `[{address: ${A}}]`);
  const portsWith = async (pool: string) => {
    await apply(pooled, rule('idle.test', `  trafficPolicy: {connectionPool: {${pool}}}\n`));
    const first = (JSON.parse((await curl('idle.test')).body) as { clientPort: number }).clientPort;
    await new Promise((r) => setTimeout(r, 700));
    const second = (JSON.parse((await curl('idle.test')).body) as { clientPort: number }).clientPort;
    return [first, second];
  };
  const [kept1, kept2] = await portsWith('http: {maxRequestsPerConnection: 100}');
  t.is(kept2, kept1, 'without idleTimeout the second request reuses the connection');
  const [idle1, idle2] = await portsWith('http: {maxRequestsPerConnection: 100, idleTimeout: 200ms}');
  t.not(idle2, idle1, 'after 700 ms idle the 200 ms idleTimeout closed the connection');
});
