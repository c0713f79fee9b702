/**
 * The HTTP layer and the proxy's lifecycle on loopback (original destination supplied by the
 * test): routing per request on a kept-alive connection, timeouts, upstream failures,
 * reload semantics, metrics, and draining.
 */
import test from 'ava';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { listenOnLoopback, loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { startTestProxy, eventually } from './helpers/in-process-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';

async function httpUpstream(t: import('ava').ExecutionContext): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/slow')) {
      const timer = setTimeout(() => res.end('slow'), 2000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    res.setHeader('x-seen-host', req.headers.host ?? '');
    res.setHeader('x-seen-decorator', String(req.headers['x-envoy-decorator-operation'] ?? ''));
    res.end(`hello ${req.url}`);
  });
  return { server, port: await listenOnLoopback(t, server) };
}

const staticEntry = (name: string, port: number) => loopbackServiceEntry(name, port);

function get(
  port: number,
  path: string,
  host: string,
  agent?: import('node:http').Agent,
): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: agent ?? false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('per request on one kept-alive connection: registered host proxied, unknown host 502 (REGISTRY_ONLY)', async (t) => {
  const up = await httpUpstream(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${staticEntry('api.example.com', up.port)}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port });
  const { Agent } = await import('node:http');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const ok = await get(proxy.port, '/one', 'api.example.com', agent);
  t.is(ok.status, 200);
  t.is(ok.body, 'hello /one');
  t.is(ok.headers['x-seen-host'], 'api.example.com');
  t.is(ok.headers['x-seen-decorator'], `api.example.com:${up.port}/*`);
  t.regex(String(ok.headers['x-envoy-upstream-service-time']), /^\d+$/);
  const blocked = await get(proxy.port, '/two', 'evil.example.com', agent);
  t.is(blocked.status, 502);
  await eventually(() => proxy.accessLog.length === 2);
  t.is(proxy.server.openConnections, 1, 'both requests used one downstream connection');
  const [a, b] = proxy.accessLog.map(parseLogLine);
  t.is(a!.cluster, `outbound|${up.port}||api.example.com`);
  t.is(a!.upstreamHost, `127.0.0.1:${up.port}`);
  t.is(b!.cluster, 'BlackHoleCluster');
  t.is(b!.authority, 'evil.example.com');
});

test('ALLOW_ANY on an HTTP port: unknown hosts pass through at HTTP level without Envoy headers', async (t) => {
  const up = await httpUpstream(t);
  const yaml = `${staticEntry('api.example.com', up.port)}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port });
  const r = await get(proxy.port, '/x', 'other.example.com');
  t.is(r.status, 200);
  t.is(r.headers['x-seen-decorator'], '');
  await eventually(() => proxy.accessLog.length === 1);
  t.is(parseLogLine(proxy.accessLog[0]!).cluster, 'PassthroughCluster');
});

test('route timeout answers 504 UT; a refused upstream answers 503 UF; no route answers 404 NR', async (t) => {
  const up = await httpUpstream(t);
  const yaml = `${staticEntry('api.example.com', up.port)}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  http:
  - match: [{uri: {prefix: /slow}}]
    timeout: 200ms
    route: [{destination: {host: api.example.com}}]
  - match: [{uri: {prefix: /fine}}]
    route: [{destination: {host: api.example.com}}]
  - match: [{uri: {prefix: /down}}]
    route: [{destination: {host: api.example.com, port: {number: 1}}}]
`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port });
  const slow = await get(proxy.port, '/slow', 'api.example.com');
  t.is(slow.status, 504);
  t.is(slow.body, 'upstream request timeout');
  t.is((await get(proxy.port, '/fine', 'api.example.com')).status, 200);
  const down = await get(proxy.port, '/down', 'api.example.com');
  t.is(down.status, 503);
  t.is((await get(proxy.port, '/elsewhere', 'api.example.com')).status, 404);
  await eventually(() => proxy.accessLog.length === 4);
  t.deepEqual(
    proxy.accessLog.map(parseLogLine).map((l) => `${l.code} ${l.flags}`),
    // Istio's default retry policy retries a connect failure twice, then logs UF,URX as Envoy does.
    ['504 UT', '200 -', '503 UF,URX', '404 NR'],
  );
});

test('reload: a valid file applies to new connections only; an invalid one is rejected and the old config stays', async (t) => {
  let upSockets = 0;
  const upstream = createTcpServer();
  upstream.on('connection', (s) => {
    upSockets++;
    s.pipe(s);
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.teardown(() => upstream.close());
  const port = (upstream.address() as { port: number }).port;
  const proxy = await startTestProxy(t, 'outboundTrafficPolicy: {mode: ALLOW_ANY}\n', { address: '127.0.0.1', port });
  const live = connect(proxy.port, '127.0.0.1');
  live.write('\x00first');
  await once(live, 'data');

  writeFileSync(proxy.configFile, 'outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n');
  t.true(await proxy.server.reload('test'));
  // The live connection keeps working; a new one is refused.
  live.write('\x00second');
  const [echo] = (await once(live, 'data')) as [Buffer];
  t.is(echo.toString(), '\x00second');
  const fresh = connect(proxy.port, '127.0.0.1');
  fresh.on('error', () => {});
  fresh.write('\x00hi');
  await once(fresh, 'close');
  t.is(upSockets, 1);

  writeFileSync(proxy.configFile, 'outboundTrafficPolicy: {mode: SOMETIMES}\n');
  t.false(await proxy.server.reload('test'));
  t.true(proxy.logs.some((l) => l.includes('config rejected, keeping the previous one') && l.includes('SOMETIMES')));
  const stillRefused = connect(proxy.port, '127.0.0.1');
  stillRefused.on('error', () => {});
  stillRefused.write('\x00hi');
  await once(stillRefused, 'close');
  t.is(upSockets, 1);
  live.destroy();
});

test('metrics: per-cluster connections, bytes and response codes on /stats/prometheus', async (t) => {
  const up = await httpUpstream(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${staticEntry('api.example.com', up.port)}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port }, { metricsPort: 0 });
  await get(proxy.port, '/a', 'api.example.com');
  await get(proxy.port, '/b', 'nope.example.com');
  await eventually(() => proxy.accessLog.length === 2);
  const res = await fetch(`http://127.0.0.1:${proxy.server.ports['metrics']}/stats/prometheus`);
  const text = await res.text();
  const cluster = `outbound|${up.port}||api.example.com`;
  t.regex(text, new RegExp(`envoy_cluster_upstream_cx_total\\{cluster_name="${cluster.replace(/\|/g, '\\|')}"\\} 1`));
  t.regex(text, /envoy_cluster_upstream_rq_total\{cluster_name="BlackHoleCluster",response_code="502",response_code_class="5xx"\} 1/);
  t.regex(text, /envoy_cluster_upstream_cx_rx_bytes_total\{cluster_name="outbound\|\d+\|\|api.example.com"\} [1-9]/);
  t.regex(text, /interpose_downstream_cx_total\{listener="outbound"\} 2/);
  t.is((await fetch(`http://127.0.0.1:${proxy.server.ports['metrics']}/other`)).status, 404);
});

test('stop drains: open connections may finish within the drain timeout, the rest are closed', async (t) => {
  const upstream = createTcpServer({ allowHalfOpen: true });
  let upstreamOpen = 0;
  upstream.on('connection', (s) => {
    upstreamOpen++;
    s.on('close', () => upstreamOpen--);
    s.pipe(s);
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.teardown(() => upstream.close());
  const port = (upstream.address() as { port: number }).port;
  const proxy = await startTestProxy(t, 'outboundTrafficPolicy: {mode: ALLOW_ANY}\n', { address: '127.0.0.1', port }, { drainTimeoutMs: 1000 });
  const finisher = connect(proxy.port, '127.0.0.1');
  const lingerer = connect(proxy.port, '127.0.0.1');
  lingerer.on('error', () => {});
  for (const c of [finisher, lingerer]) {
    c.write('\x00x');
    await once(c, 'data');
  }
  const stopped = proxy.server.stop();
  setTimeout(() => finisher.destroy(), 50);
  const lingererClosed = once(lingerer, 'close');
  const result = await stopped;
  t.is(result.remaining, 1);
  await lingererClosed;
  // The upstream halves are closed too, not left open behind the destroyed downstreams.
  t.true(await eventually(() => upstreamOpen === 0));
  // No new connections once stopping.
  const late = connect(proxy.port, '127.0.0.1');
  const [err] = (await once(late, 'error')) as [NodeJS.ErrnoException];
  t.is(err.code, 'ECONNREFUSED');
});

test('a change to the file is picked up without a signal (watch)', async (t) => {
  const proxy = await startTestProxy(t, 'outboundTrafficPolicy: {mode: ALLOW_ANY}\n', { address: '127.0.0.1', port: 9 }, { watch: true });
  writeFileSync(proxy.configFile, 'outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n');
  t.true(await eventually(() => proxy.logs.some((l) => l.includes('config reloaded') && l.includes('file change'))));
});
