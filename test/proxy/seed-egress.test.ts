/**
 * The seeds, step by step, in network namespaces: Istio's "Accessing External Services" task
 * and its egress gateway for external services, with interpose's rules and `interpose proxy`
 * (as uid 1337) between a pod namespace running curl and a world namespace serving the
 * httpbin.org and www.google.com stand-ins. One world, one proxy; each step rewrites the
 * config and reloads it, as the seed applies resources to a running mesh.
 */
import test from 'ava';
import { isRoot, kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import { GOOGLE, HTTPBIN, LINK } from '../../src/lab/world/addresses.js';
import type { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { installIstioRules, removeIstioRules } from './helpers/rules.js';
import { parseLogLine } from './helpers/access-log-line.js';
import { startPodProxy, type PodProxy } from './helpers/pod-proxy.js';
import * as seed from '../../src/lab/seed-resources.js';

let world: World;
let proxy: ProxyProcess;
let apply: PodProxy['apply'];

test.before(async () => {
  if (!isRoot) return;
  world = await World.create({ prefix: 'seed' });
  ({ proxy, apply } = await startPodProxy(world, seed.meshMode('ALLOW_ANY'), { metricsPort: 15090 }));
});

test.after.always(async () => {
  await proxy?.stop();
  await world?.destroy();
});

async function curl(args: string[]) {
  const started = performance.now();
  const r = await world.inPod(['curl', '-sS', '-m', '10', ...args], { reject: false, stripFinalNewline: false });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), seconds: (performance.now() - started) / 1000 };
}

const status = ['-o', '/dev/null', '-w', '%{http_code}'];

kernelTest('ALLOW_ANY: unknown HTTPS and HTTP destinations pass through (PassthroughCluster)', async (t) => {
  const mark = proxy.accessLog.length;
  const https = await curl(['-I', `https://${GOOGLE.host}`]);
  t.is(https.exitCode, 0, https.stderr);
  t.regex(https.stdout, /^HTTP\/1\.1 200/);
  const http = await curl([...status, `http://${HTTPBIN.host}/headers`]);
  t.is(http.stdout, '200');
  const tls = parseLogLine(await proxy.nextAccessLog(/PassthroughCluster .* www\.google\.com$/, mark));
  t.is(tls.request, '- - -');
  t.is(tls.upstreamHost, `${GOOGLE.address}:443`);
  t.is(tls.downstreamLocal, `${GOOGLE.address}:443`);
  t.true(tls.downstreamRemote.startsWith(`${LINK.pod.v4}:`));
  t.true(tls.bytesReceived > 0 && tls.bytesSent > 0);
  const plain = parseLogLine(await proxy.nextAccessLog(new RegExp(`"${HTTPBIN.address}:80" PassthroughCluster`), mark));
  t.is(plain.cluster, 'PassthroughCluster');
});

kernelTest('REGISTRY_ONLY: HTTPS refused (curl exit 35), HTTP answered 502, both BlackHoleCluster', async (t) => {
  await apply(seed.meshMode('REGISTRY_ONLY'));
  const mark = proxy.accessLog.length;
  const https = await curl(['-I', `https://${GOOGLE.host}`]);
  t.is(https.exitCode, 35, https.stderr);
  const http = await curl([...status, `http://${HTTPBIN.host}/headers`]);
  t.is(http.stdout, '502');
  const tls = parseLogLine(await proxy.nextAccessLog(/BlackHoleCluster .* www\.google\.com$/, mark));
  t.is(tls.request, '- - -');
  t.is(tls.code, 0);
  const plain = parseLogLine(await proxy.nextAccessLog(/"GET \/headers HTTP\/1\.1" 502/, mark));
  t.is(plain.cluster, 'BlackHoleCluster');
  t.is(plain.authority, HTTPBIN.host);
});

kernelTest('ServiceEntry for httpbin.org:80 — 200, Envoy headers upstream, and the log line', async (t) => {
  await apply(seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry));
  const mark = proxy.accessLog.length;
  const r = await curl([`http://${HTTPBIN.host}/headers`]);
  t.is(r.exitCode, 0, r.stderr);
  const headers = (JSON.parse(r.stdout) as { headers: Record<string, string> }).headers;
  t.is(headers['Host'], HTTPBIN.host);
  t.is(headers['X-Envoy-Decorator-Operation'], 'httpbin.org:80/*');
  t.truthy(headers['X-Request-Id']);
  const line = parseLogLine(await proxy.nextAccessLog(/"GET \/headers HTTP\/1\.1"/, mark));
  t.is(line.method, 'GET');
  t.is(line.path, '/headers');
  t.is(line.code, 200);
  t.is(line.flags, '-');
  t.is(line.authority, HTTPBIN.host);
  t.is(line.upstreamHost, `${HTTPBIN.address}:80`);
  t.is(line.cluster, 'outbound|80||httpbin.org');
  t.is(line.requestId, headers['X-Request-Id']);
  t.regex(line.userAgent, /^curl\//);
  t.is(line.bytesSent, Buffer.byteLength(r.stdout));
  t.regex(line.upstreamServiceTime, /^\d+$/);
  t.true(line.upstreamLocal.startsWith(`${LINK.pod.v4}:`));
});

kernelTest('ServiceEntry for www.google.com:443 — 200, SNI and byte counts in the log line', async (t) => {
  await apply(seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, seed.googleServiceEntry));
  const mark = proxy.accessLog.length;
  const r = await curl(['-I', `https://${GOOGLE.host}`]);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^HTTP\/1\.1 200/);
  const line = parseLogLine(await proxy.nextAccessLog(/outbound\|443\|\|www\.google\.com/, mark));
  t.is(line.request, '- - -');
  t.is(line.code, 0);
  t.is(line.serverName, GOOGLE.host);
  t.is(line.upstreamHost, `${GOOGLE.address}:443`);
  t.is(line.downstreamLocal, `${GOOGLE.address}:443`);
  // A TLS 1.3 handshake plus one HEAD each way: the ClientHello alone is > 200 bytes and the
  // server's flight carries a certificate.
  t.true(line.bytesReceived > 200, `received ${line.bytesReceived}`);
  t.true(line.bytesSent > 400, `sent ${line.bytesSent}`);
});

kernelTest('VirtualService timeout 3s on /delay/5 — 504 after about 3 s', async (t) => {
  await apply(seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, seed.httpbinTimeout));
  const mark = proxy.accessLog.length;
  const r = await curl([...status, `http://${HTTPBIN.host}/delay/5`]);
  t.is(r.stdout, '504');
  // Loose bounds: the upstream answers only after 5 s, so anything under that is the timeout.
  t.true(r.seconds >= 2.5 && r.seconds < 4.9, `took ${r.seconds.toFixed(2)} s`);
  const line = parseLogLine(await proxy.nextAccessLog(/"GET \/delay\/5 HTTP\/1\.1" 504/, mark));
  t.is(line.flags, 'UT');
  t.is(line.cluster, 'outbound|80||httpbin.org');
});

kernelTest('egress gateway: 418 teapot routed by Host, TLS passthrough by SNI, mesh routes blocked', async (t) => {
  await apply(seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, seed.googleServiceEntry, seed.egressGateway));
  const mark = proxy.accessLog.length;
  // The gateway listens on the pod's port 80/443; 127.0.0.1 is never redirected by the rules.
  const teapot = await curl(['-i', '-H', `Host: ${HTTPBIN.host}`, 'http://127.0.0.1/status/418']);
  t.regex(teapot.stdout, /^HTTP\/1\.1 418/);
  t.regex(teapot.stdout, /teapot/);
  const gw = parseLogLine(await proxy.nextAccessLog(/"GET \/status\/418 HTTP\/1\.1" 418/, mark));
  t.is(gw.cluster, 'outbound|80||httpbin.org');
  t.is(gw.upstreamHost, `${HTTPBIN.address}:80`);
  const tls = await curl(['-I', '--resolve', `${GOOGLE.host}:443:127.0.0.1`, `https://${GOOGLE.host}`]);
  t.is(tls.exitCode, 0, tls.stderr);
  t.regex(tls.stdout, /^HTTP\/1\.1 200/);
  const tlsLine = parseLogLine(await proxy.nextAccessLog(/outbound\|443\|\|www\.google\.com .* www\.google\.com$/, mark));
  t.is(tlsLine.upstreamHost, `${GOOGLE.address}:443`);
  // In-mesh traffic follows the mesh routes: to localhost.local, which is nowhere.
  const mesh = await curl([...status, `http://${HTTPBIN.host}/status/418`]);
  t.is(mesh.stdout, '503');
  const meshTls = await curl(['-I', `https://${GOOGLE.host}`]);
  t.is(meshTls.exitCode, 35, meshTls.stderr);
});

kernelTest('includeIPRanges bypass: traffic outside the captured ranges goes direct, no log line', async (t) => {
  await apply(seed.docs(seed.meshMode('REGISTRY_ONLY')));
  await removeIstioRules(world.pod.name);
  // Only 192.0.2.0/24 is captured, as global.proxy.includeIPRanges would say.
  await installIstioRules(world.pod.name, ['-i', '192.0.2.0/24']);
  try {
    const mark = proxy.accessLog.length;
    const r = await curl([`http://${HTTPBIN.host}/headers`]);
    t.is(r.exitCode, 0, r.stderr);
    const headers = (JSON.parse(r.stdout) as { headers: Record<string, string | undefined> }).headers;
    t.is(headers['X-Envoy-Decorator-Operation'], undefined);
    const https = await curl(['-I', `https://${GOOGLE.host}`]);
    t.is(https.exitCode, 0, https.stderr);
    // Give a (wrong) log line time to appear, then check there is none.
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.deepEqual(proxy.accessLog.slice(mark), []);
  } finally {
    await removeIstioRules(world.pod.name);
    await installIstioRules(world.pod.name, ['-i', '*']);
  }
});
