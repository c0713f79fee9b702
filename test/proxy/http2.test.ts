/**
 * Cleartext HTTP/2 through a ServiceEntry port with real clients: curl with
 * --http2-prior-knowledge and @grpc/grpc-js (unary, server, client and bidirectional
 * streaming), per stream routing and logging ("HTTP/2"), HTTP/2 upstream for GRPC/HTTP2 ports
 * and HTTP/1.1 for HTTP ports, route timeouts as 504 or gRPC DEADLINE_EXCEEDED.
 */
import test from 'ava';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { execa } from 'execa';
import * as grpc from '@grpc/grpc-js';
import { loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { startTestProxy, eventually, loggedRequests } from './helpers/in-process-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';
import { timeoutRoute } from './helpers/virtual-service.js';
import { echoClient, grpcServer } from './helpers/grpc-echo.js';
import { h2cOnlyUpstream } from './helpers/h2c-upstream.js';

const entry = loopbackServiceEntry;

test('gRPC through a GRPC port: unary, server, client and bidirectional streaming; timeouts DEADLINE_EXCEEDED; one HTTP/2 line per call', async (t) => {
  const port = await grpcServer(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('grpc.example.com', port, 'GRPC')}${timeoutRoute('grpc.example.com', '{prefix: /test.Echo/Slow}')}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port });
  const client = echoClient(t, proxy.port, 'grpc.example.com');

  const unary = await new Promise<string>((resolve, reject) => client['unary']!('there', (err: Error | null, r: string) => (err ? reject(err) : resolve(r))));
  t.is(unary, 'hi there');

  const streamed: string[] = [];
  const ss = client['serverStream']!('n') as grpc.ClientReadableStream<string>;
  ss.on('data', (d: string) => streamed.push(d));
  await once(ss, 'end');
  t.deepEqual(streamed, ['n 0', 'n 1', 'n 2']);

  const summed = await new Promise<string>((resolve, reject) => {
    const cs = client['clientStream']!((err: Error | null, r: string) => (err ? reject(err) : resolve(r))) as grpc.ClientWritableStream<string>;
    for (const s of ['a', 'b', 'c']) cs.write(s);
    cs.end();
  });
  t.is(summed, 'a+b+c');

  const bidi = client['bidi']!() as grpc.ClientDuplexStream<string, string>;
  const replies: string[] = [];
  bidi.on('data', (d: string) => {
    replies.push(d);
    if (replies.length < 3) bidi.write(`m${replies.length}`);
    else bidi.end();
  });
  bidi.write('m0');
  await once(bidi, 'end');
  t.deepEqual(replies, ['re m0', 're m1', 're m2']);

  const slow = await new Promise<grpc.ServiceError>((resolve) => client['slow']!('x', (err: grpc.ServiceError) => resolve(err)));
  t.is(slow.code, grpc.status.DEADLINE_EXCEEDED);

  t.true(await eventually(() => proxy.accessLog.length === 5), proxy.accessLog.join('\n'));
  const lines = proxy.accessLog.map(parseLogLine);
  t.deepEqual(
    lines.map((l) => `${l.method} ${l.path} ${l.protocol}`).sort(),
    ['ClientStream', 'Bidi', 'ServerStream', 'Slow', 'Unary'].map((m) => `POST /test.Echo/${m} HTTP/2`).sort(),
  );
  for (const l of lines) t.is(l.cluster, `outbound|${port}||grpc.example.com`);
  const slowLine = lines.find((l) => l.path.endsWith('Slow'))!;
  t.is(slowLine.flags, 'UT');
  // A VirtualService with a match is not native-eligible: the fast path (which sends its SETTINGS
  // at once, so grpc-js does not wait) hands the one connection back whole on its first call.
  const stats = proxy.server.nativeHttpStats;
  if (stats) t.deepEqual({ served: stats.served, handedBack: stats.handedBack }, { served: 0, handedBack: 1 });
});

test('gRPC to an unregistered authority under REGISTRY_ONLY gets UNAVAILABLE (BlackHoleCluster)', async (t) => {
  const port = await grpcServer(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('grpc.example.com', port, 'GRPC')}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port });
  const client = echoClient(t, proxy.port, 'evil.example.com');
  const err = await new Promise<grpc.ServiceError>((resolve) => client['unary']!('x', (e: grpc.ServiceError) => resolve(e)));
  t.is(err.code, grpc.status.UNAVAILABLE);
  t.true(await eventually(() => proxy.accessLog.length === 1));
  t.is(parseLogLine(proxy.accessLog[0]!).cluster, 'BlackHoleCluster');
});

test('curl --http2-prior-knowledge on an HTTP port: proxied per stream to an HTTP/1.1 upstream; timeout 504 UT', async (t) => {
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(`${req.httpVersion} ${req.headers.host}`);
    if (req.url === '/slow') {
      setTimeout(() => res.end('late'), 2000).unref();
      return;
    }
    res.end(`hello ${req.url}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('web.example.com', port, 'HTTP')}${timeoutRoute('web.example.com', '{exact: /slow}')}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port });
  const url = (path: string) => `http://127.0.0.1:${proxy.port}${path}`;
  // One curl per URL: curl 7.88 fails reusing a prior-knowledge connection even to Node's own
  // HTTP/2 server (exit 16); several streams on one connection are covered by the gRPC test.
  const out: string[] = [];
  for (const path of ['/a', '/b', '/slow']) {
    const r = await execa('curl', ['-sS', '--http2-prior-knowledge', '-H', 'Host: web.example.com', '-w', ' %{http_version} %{http_code}', url(path)], { reject: false });
    t.is(r.exitCode, 0, r.stderr);
    out.push(r.stdout);
  }
  t.deepEqual(out, ['hello /a 2 200', 'hello /b 2 200', 'upstream request timeout 2 504']);
  t.deepEqual(seen.slice(0, 2), ['1.1 web.example.com', '1.1 web.example.com']);
  const blocked = await execa('curl', ['-sS', '--http2-prior-knowledge', '-H', 'Host: evil.example.com', '-o', '/dev/null', '-w', '%{http_code}', url('/x')], { reject: false });
  t.is(blocked.stdout, '502');
  t.deepEqual(await loggedRequests(proxy, 4), [
    'GET /a HTTP/2 200 -',
    'GET /b HTTP/2 200 -',
    'GET /slow HTTP/2 504 UT',
    'GET /x HTTP/2 502 -',
  ]);
});

test('HTTP/1.1 client on an HTTP2 port: sent upstream as an HTTP/2 stream (h2c-only upstream), answer in HTTP/1.1; retries, timeouts, log', async (t) => {
  const up = await h2cOnlyUpstream(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('h2.example.com', up.port, 'HTTP2')}${timeoutRoute('h2.example.com', '{exact: /slow}')}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port });
  const curl = (path: string, args: string[] = []) =>
    execa('curl', ['-sS', '-m', '5', '-i', '--http1.1', '-H', 'Host: h2.example.com', ...args, '-w', '\n%{http_version}', `http://127.0.0.1:${proxy.port}${path}`], { reject: false });

  const post = await curl('/echo?q=1', ['-H', 'x-custom: yes', '-H', 'Connection: keep-alive', '--data-binary', 'hello body']);
  t.is(post.exitCode, 0, post.stderr);
  t.regex(post.stdout, /^HTTP\/1\.1 201 Created\r\n/);
  t.regex(post.stdout, /\r\nx-upstream: h2\r\n/);
  t.regex(post.stdout, /\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n/);
  t.regex(post.stdout, /h2 answer to POST \/echo\?q=1 body=hello body\n1\.1$/);
  const first = up.seen[0]!;
  t.is(first.authority, 'h2.example.com');
  t.is(first.headers['x-custom'], 'yes');
  t.is(first.headers['x-envoy-attempt-count'], '1');
  t.is(first.headers['connection'], undefined);
  t.is(first.headers['host'], undefined);

  // Trailers cannot be carried to an HTTP/1.1 client: dropped, as Envoy's HTTP/1 codec does by default.
  const withTrailers = await curl('/trailers');
  t.is(withTrailers.exitCode, 0, withTrailers.stderr);
  t.regex(withTrailers.stdout, /h2 answer to GET \/trailers body=\n1\.1$/);
  t.notRegex(withTrailers.stdout, /x-checksum/);

  // More than every buffer on the way holds: the answer arrives whole, however slowly it is read.
  const big = await execa('sh', ['-c', `curl -sS -m 10 --http1.1 -H 'Host: h2.example.com' http://127.0.0.1:${proxy.port}/big | (sleep 0.5; wc -c)`], { reject: false });
  t.is(big.stdout.trim(), String(8 * 1024 * 1024), big.stderr);

  // Istio's default retry policy retries the 503 on a new stream.
  const retried = await curl('/503-once');
  t.regex(retried.stdout, /^HTTP\/1\.1 201 /);
  t.deepEqual(up.seen.filter((s) => s.path === '/503-once').map((s) => s.headers['x-envoy-attempt-count']), ['1', '2']);

  const slow = await curl('/slow');
  t.regex(slow.stdout, /^HTTP\/1\.1 504 /);
  t.regex(slow.stdout, /upstream request timeout/);

  t.deepEqual(await loggedRequests(proxy, 5), [
    'POST /echo?q=1 HTTP/1.1 201 -',
    'GET /trailers HTTP/1.1 201 -',
    'GET /big HTTP/1.1 200 -',
    'GET /503-once HTTP/1.1 201 -',
    'GET /slow HTTP/1.1 504 UT',
  ]);
  const lines = proxy.accessLog.map(parseLogLine);
  for (const l of lines) t.is(l.cluster, `outbound|${up.port}||h2.example.com`);
  t.regex(lines[0]!.upstreamLocal, /^127\.0\.0\.1:\d+$/);
  t.is(lines[0]!.bytesReceived, 'hello body'.length);
});

test('curl --http2 (Upgrade: h2c) on an HTTP2 port: the upgrade is dropped as Envoy does, the answer is HTTP/1.1, the upstream is reached in HTTP/2', async (t) => {
  const up = await h2cOnlyUpstream(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('h2.example.com', up.port, 'HTTP2')}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port });
  const r = await execa('curl', ['-sS', '-m', '5', '--http2', '-H', 'Host: h2.example.com', '-w', '\n%{http_version} %{http_code}', `http://127.0.0.1:${proxy.port}/up`], { reject: false });
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, 'h2 answer to GET /up body=\n1.1 201');
  t.is(up.seen.length, 1);
  t.is(up.seen[0]!.headers['http2-settings'], undefined);
  t.is(up.seen[0]!.headers['upgrade'], undefined);
  t.true(await eventually(() => proxy.accessLog.length === 1));
  t.is(parseLogLine(proxy.accessLog[0]!).request, 'GET /up HTTP/1.1');
});

test('HTTP/1.1 client on an HTTP2 port, upstream failures: REFUSED_STREAM retried, a connection lost mid-answer is UC, no upstream is 503 UF,URX', async (t) => {
  const up = await h2cOnlyUpstream(t);
  const yaml = `${entry('h2.example.com', up.port, 'HTTP2')}---\n${entry('down.example.com', 1, 'HTTP2')}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port }, { metricsPort: 0 });
  const curl = (host: string, path: string) =>
    execa('curl', ['-sS', '-m', '5', '--http1.1', '-H', `Host: ${host}`, '-w', '\n%{http_code}', `http://127.0.0.1:${proxy.port}${path}`], { reject: false });

  const refused = await curl('h2.example.com', '/refused-once');
  t.is(refused.stdout, 'h2 answer to GET /refused-once body=\n201');
  t.is(up.seen.filter((s) => s.path === '/refused-once').length, 2);

  const cut = await curl('h2.example.com', '/cut');
  t.not(cut.exitCode, 0, JSON.stringify([cut.stdout, cut.stderr, proxy.accessLog]));
  t.regex(cut.stdout, /^partial/);

  proxy.setDestination({ address: '127.0.0.1', port: 1 });
  const down = await curl('down.example.com', '/x');
  t.regex(down.stdout, /^upstream connect error or disconnect\/reset before headers\. reset reason: .*\n503$/);

  t.deepEqual(await loggedRequests(proxy, 3), [
    'GET /refused-once HTTP/1.1 201 -',
    'GET /cut HTTP/1.1 200 UC',
    'GET /x HTTP/1.1 503 UF,URX',
  ]);
  // Three connections tried (the first attempt and Istio's two retries), each failure counted once.
  const metrics = await (await fetch(`http://127.0.0.1:${proxy.server.ports['metrics']}/stats/prometheus`)).text();
  t.regex(metrics, /envoy_cluster_upstream_cx_connect_fail_total\{cluster_name="outbound\|1\|\|down\.example\.com"\} 3\n/);
});
