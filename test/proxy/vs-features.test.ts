/**
 * VirtualService retries, fault, rewrite, headers, redirect and directResponse with curl in a
 * pod namespace (HTTP/1.1 and HTTP/2 prior knowledge) and the proxy between it and a stand-in
 * upstream in the world namespace that fails on demand and echoes what it was sent, in
 * HTTP/1.1 on an HTTP port and in HTTP/2 (h2c) on an HTTP2 port.
 */
import test from 'ava';
import { isRoot, kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import type { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { BackgroundProcess } from '../../src/kernel/background-process.js';
import { startPodProxy } from './helpers/pod-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';
import * as seed from '../../src/lab/seed-resources.js';

const UPSTREAM = '203.0.113.30';
const HOST = 'shop.example';
const H2_HOST = 'h2shop.example';

// The stand-in: /flaky/KEY answers 503 twice then 200; /exhaust/KEY always 503; anything else
// 200. Every answer echoes what arrived (path, headers) and how often that path was asked for.
// The same in HTTP/2 only (h2c) on port 81, where /refused/KEY resets its first stream with
// REFUSED_STREAM.
const upstreamScript = `
const http = require('node:http');
const http2 = require('node:http2');
const seen = new Map();
const answer = (url, headers) => {
  const n = (seen.get(url) ?? 0) + 1;
  seen.set(url, n);
  const status = url.startsWith('/exhaust') || (url.startsWith('/flaky') && n <= 2) ? 503 : 200;
  return { n, status, body: JSON.stringify({ url, n, headers }) };
};
let listening = 0;
const ready = () => ++listening === 2 && console.log('ready');
http.createServer((req, res) => {
  req.resume();
  const a = answer(req.url, req.headers);
  res.writeHead(a.status, { 'content-type': 'application/json', 'x-upstream': 'yes' });
  res.end(a.body);
}).listen(80, '${UPSTREAM}', ready);
http2.createServer().on('stream', (stream, headers) => {
  stream.on('error', () => {});
  stream.resume();
  stream.on('end', () => {
    const url = headers[':path'];
    const a = answer(url, headers);
    if (url.startsWith('/refused') && a.n === 1) return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    stream.respond({ ':status': a.status, 'content-type': 'application/json' });
    stream.end(a.body);
  });
}).listen(81, '${UPSTREAM}', ready);
`;

/** A ServiceEntry for `host` on `port` whose endpoint is the stand-in. */
const standInEntry = (host: string, port: number, protocol: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.split('.')[0]}}
spec:
  hosts: [${host}]
  ports: [{number: ${port}, name: ${protocol.toLowerCase()}, protocol: ${protocol}}]
  resolution: STATIC
  endpoints: [{address: ${UPSTREAM}}]
`;

const config = `${standInEntry(HOST, 80, 'HTTP')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [${HOST}]
  http:
  - match: [{uri: {prefix: /flaky}}, {uri: {prefix: /exhaust}}]
    retries: {attempts: 2, retryOn: 5xx}
    route: [{destination: {host: ${HOST}}}]
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: ${HOST}}}]
  - match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 700ms, percentage: {value: 100}}}
    route: [{destination: {host: ${HOST}}}]
  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /new, authority: rewritten.example}
    headers:
      request: {set: {x-set: route}, add: {x-add: added}, remove: [x-drop]}
      response: {set: {x-resp: set}, remove: [x-upstream]}
    route:
    - destination: {host: ${HOST}}
      headers: {request: {set: {x-dest: dest}}}
  - match: [{uri: {prefix: /moved}}]
    redirect: {uri: /new-home, authority: elsewhere.example, redirectCode: 302}
  - match: [{uri: {prefix: /direct}}]
    directResponse: {status: 200, body: {string: "direct hello"}}
  - route: [{destination: {host: ${HOST}}}]
---
${standInEntry(H2_HOST, 81, 'HTTP2')}`;

let world: World;
let proxy: ProxyProcess;
let upstream: BackgroundProcess | undefined;

test.before(async () => {
  if (!isRoot) return;
  world = await World.create({ prefix: 'vsf' });
  await world.inWorld(['ip', 'addr', 'add', `${UPSTREAM}/32`, 'dev', 'lo']);
  upstream = BackgroundProcess.start(['ip', 'netns', 'exec', world.world.name, process.execPath, '-e', upstreamScript]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('stand-in upstream did not start')), 10_000);
    upstream!.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  ({ proxy } = await startPodProxy(world, seed.docs(seed.meshMode('REGISTRY_ONLY'), config)));
});

test.after.always(async () => {
  await proxy?.stop();
  if (upstream && !upstream.hasExited) upstream.kill('SIGKILL');
  await world?.destroy();
});

interface CurlResult {
  status: number;
  /** By lower-case name; absent headers are undefined. */
  headers: Record<string, string | undefined>;
  body: string;
  ms: number;
}

/** curl in the pod; `http2` uses prior knowledge (h2c), as a gRPC client would. `to`: another ServiceEntry host and port. */
async function curl(path: string, http2: boolean, extra: string[] = [], to = { host: HOST, port: 80 }): Promise<CurlResult> {
  const t0 = performance.now();
  const r = await world.inPod(
    ['curl', '-sS', '-m', '10', '-i', ...(http2 ? ['--http2-prior-knowledge'] : []), '--resolve', `${to.host}:${to.port}:${UPSTREAM}`, ...extra, `http://${to.host}:${to.port}${path}`],
    { reject: false },
  );
  const ms = performance.now() - t0;
  const text = String(r.stdout);
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split).split('\r\n');
  const headers: Record<string, string | undefined> = {};
  for (const line of head.slice(1)) {
    const c = line.indexOf(':');
    headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
  }
  return { status: Number(head[0]!.split(' ')[1]), headers, body: text.slice(split + 4), ms };
}

for (const http2 of [false, true]) {
  const v = http2 ? 'HTTP/2' : 'HTTP/1.1';
  const key = http2 ? 'h2' : 'h1';
  const logLine = (path: string, after: number) =>
    proxy.nextAccessLog(new RegExp(`"\\w+ ${path.replace(/[/?]/g, '\\$&')} ${v.replace('.', '\\.')}"`), after).then(parseLogLine);

  kernelTest(`${v} retries: 503 twice then 200 is retried to 200 (attempt 3); exhausted retries answer 503 URX`, async (t) => {
    const mark = proxy.accessLog.length;
    const ok = await curl(`/flaky/${key}`, http2);
    t.is(ok.status, 200);
    const echoed = JSON.parse(ok.body) as { n: number; headers: Record<string, string> };
    t.is(echoed.n, 3, 'the upstream saw three tries');
    t.is(echoed.headers['x-envoy-attempt-count'], '3');
    t.is((await logLine(`/flaky/${key}`, mark)).flags, '-');
    const gone = await curl(`/exhaust/${key}`, http2);
    t.is(gone.status, 503);
    t.is((JSON.parse(gone.body) as { n: number }).n, 3, '1 try + attempts: 2');
    const line = await logLine(`/exhaust/${key}`, mark);
    t.is(line.code, 503);
    t.is(line.flags, 'URX');
  });

  kernelTest(`${v} to an HTTP2 port (h2c upstream): 503 twice and REFUSED_STREAM retried by Istio's default policy with x-envoy-attempt-count`, async (t) => {
    const mark = proxy.accessLog.length;
    const h2 = { host: H2_HOST, port: 81 };
    const flaky = await curl(`/flaky/${key}-to-h2`, http2, [], h2);
    t.is(flaky.status, 200);
    const echoed = JSON.parse(flaky.body) as { n: number; headers: Record<string, string> };
    t.is(echoed.n, 3, 'the upstream saw three tries');
    t.is(echoed.headers['x-envoy-attempt-count'], '3');
    const refused = await curl(`/refused/${key}-to-h2`, http2, [], h2);
    t.is(refused.status, 200);
    t.is((JSON.parse(refused.body) as { n: number }).n, 2);
    t.is((await logLine(`/flaky/${key}-to-h2`, mark)).code, 200);
    t.is((await logLine(`/refused/${key}-to-h2`, mark)).flags, '-');
  });

  kernelTest(`${v} fault: abort 100% answers 418 "fault filter abort" (FI); a delay holds the request (DI)`, async (t) => {
    const mark = proxy.accessLog.length;
    const aborted = await curl(`/abort/${key}`, http2);
    t.is(aborted.status, 418);
    t.is(aborted.body, 'fault filter abort');
    t.is((await logLine(`/abort/${key}`, mark)).flags, 'FI');
    const delayed = await curl(`/delay/${key}`, http2);
    t.is(delayed.status, 200);
    t.true(delayed.ms >= 700, `took ${Math.round(delayed.ms)} ms`);
    const line = await logLine(`/delay/${key}`, mark);
    t.is(line.flags, 'DI');
    t.true(line.duration >= 700);
  });

  kernelTest(`${v} rewrite and headers: the upstream sees the new path, authority and request headers; the client the response headers`, async (t) => {
    const r = await curl(`/old/${key}?q=1`, http2, ['-H', 'x-drop: me', '-H', 'x-add: mine', '-H', 'x-set: client']);
    t.is(r.status, 200);
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string | undefined> };
    t.is(seen.url, `/new/${key}?q=1`, 'prefix /old replaced by /new, query kept');
    t.is(seen.headers['host'], 'rewritten.example');
    t.is(seen.headers['x-set'], 'route', 'set overwrites');
    t.is(seen.headers['x-add'], 'mine, added', 'add appends');
    t.is(seen.headers['x-dest'], 'dest', 'destination-level headers');
    t.is(seen.headers['x-drop'], undefined, 'removed');
    t.is(r.headers['x-resp'], 'set');
    t.is(r.headers['x-upstream'], undefined, 'response header removed');
  });

  kernelTest(`${v} redirect answers with Location; directResponse with its body`, async (t) => {
    const moved = await curl(`/moved/${key}?a=b`, http2);
    t.is(moved.status, 302);
    t.is(moved.headers['location'], 'http://elsewhere.example/new-home?a=b');
    const direct = await curl(`/direct/${key}`, http2);
    t.is(direct.status, 200);
    t.is(direct.body, 'direct hello');
  });
}
