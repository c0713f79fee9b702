/**
 * Retries of HTTP/2 streams sent upstream in HTTP/2 (GRPC and HTTP2 ports), with real clients:
 * @grpc/grpc-js, node:http2 and curl --http2-prior-knowledge. As Envoy's router under Istio's
 * policy: a route without `retries` retries connect failures, REFUSED_STREAM, 503 and the gRPC
 * statuses UNAVAILABLE and CANCELLED twice; a route's `retryOn` names other gRPC statuses;
 * `perTryTimeout` bounds each try and the route `timeout` all of them; each try carries
 * x-envoy-attempt-count; URX when the retries run out; a body that outgrew the replay buffer
 * is not retried (counted as retry_or_shadow_abandoned) and logged without URX.
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { execa } from 'execa';
import * as grpc from '@grpc/grpc-js';
import { loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { startTestProxy, loggedRequests, type TestProxy } from './helpers/in-process-proxy.js';
import { matchedRoute } from './helpers/virtual-service.js';
import { echoClient, grpcServer, unaryCall } from './helpers/grpc-echo.js';
import { h2cOnlyUpstream } from './helpers/h2c-upstream.js';

const entry = loopbackServiceEntry;
const header = (l: string) => `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${l}`;

/** A gRPC error with `code`, as a handler hands it to grpc-js. */
const status = (code: grpc.status) => Object.assign(new Error(grpc.status[code]), { code }) as grpc.ServiceError;

/**
 * An Echo server whose Unary answers by request: `<STATUS>-once` fails with that gRPC status on
 * its first call (per request text), `<STATUS>-always` on every call, `<STATUS>-late` on every
 * call but in trailers after its headers (not trailers-only), `slow-once` answers its
 * first call after 3 s; anything else is answered at once. Slow answers after 2 s. Every
 * call's x-envoy-attempt-count is kept per request text (Slow's as `slow:<text>`).
 */
async function flakyGrpcServer(t: ExecutionContext): Promise<{ port: number; attempts: Map<string, string[]> }> {
  const attempts = new Map<string, string[]>();
  const port = await grpcServer(t, {
    unary: (call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => {
      const seen = attempts.get(call.request) ?? [];
      seen.push(String(call.metadata.get('x-envoy-attempt-count')[0]));
      attempts.set(call.request, seen);
      const [name, when] = call.request.split('-');
      const code = grpc.status[name as keyof typeof grpc.status] as grpc.status | undefined;
      if (code !== undefined && when === 'late') call.sendMetadata(new grpc.Metadata());
      if (code !== undefined && (when === 'always' || when === 'late' || seen.length === 1)) return cb(status(code));
      if (call.request === 'slow-once' && seen.length === 1) return void setTimeout(() => cb(null, 'late'), 3000).unref();
      cb(null, `hi ${call.request}`);
    },
    slow: (call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => {
      const key = `slow:${call.request}`;
      attempts.set(key, [...(attempts.get(key) ?? []), String(call.metadata.get('x-envoy-attempt-count')[0])]);
      setTimeout(() => cb(null, 'late'), 2000).unref();
    },
  });
  return { port, attempts };
}

test('gRPC through a GRPC port, Istio default policy: UNAVAILABLE and CANCELLED retried with x-envoy-attempt-count, URX when the retries run out; INTERNAL, and a status in trailers, not retried', async (t) => {
  const up = await flakyGrpcServer(t);
  const proxy = await startTestProxy(t, header(entry('grpc.example.com', up.port, 'GRPC')), { address: '127.0.0.1', port: up.port });
  const client = echoClient(t, proxy.port, 'grpc.example.com');

  t.deepEqual(await unaryCall(client, 'unary', 'UNAVAILABLE-once'), { value: 'hi UNAVAILABLE-once' });
  t.deepEqual(up.attempts.get('UNAVAILABLE-once'), ['1', '2']);
  t.deepEqual(await unaryCall(client, 'unary', 'CANCELLED-once'), { value: 'hi CANCELLED-once' });
  t.deepEqual(up.attempts.get('CANCELLED-once'), ['1', '2']);

  const exhausted = await unaryCall(client, 'unary', 'UNAVAILABLE-always');
  t.is(exhausted.error?.code, grpc.status.UNAVAILABLE);
  t.deepEqual(up.attempts.get('UNAVAILABLE-always'), ['1', '2', '3'], 'the first try and two retries');

  const internal = await unaryCall(client, 'unary', 'INTERNAL-once');
  t.is(internal.error?.code, grpc.status.INTERNAL, 'the default policy does not name internal');
  t.deepEqual(up.attempts.get('INTERNAL-once'), ['1']);

  // Envoy reads grpc-status from the response headers only: in trailers it comes after the answer began.
  const late = await unaryCall(client, 'unary', 'UNAVAILABLE-late');
  t.is(late.error?.code, grpc.status.UNAVAILABLE);
  t.deepEqual(up.attempts.get('UNAVAILABLE-late'), ['1']);

  // gRPC answers are HTTP 200 whatever their grpc-status; the log shows the retries ran out.
  t.deepEqual(await loggedRequests(proxy, 5), [
    'POST /test.Echo/Unary HTTP/2 200 -',
    'POST /test.Echo/Unary HTTP/2 200 -',
    'POST /test.Echo/Unary HTTP/2 200 URX',
    'POST /test.Echo/Unary HTTP/2 200 -',
    'POST /test.Echo/Unary HTTP/2 200 -',
  ]);
});

test('gRPC route retries: retryOn names the gRPC statuses retried (internal, resource-exhausted, deadline-exceeded), others are not', async (t) => {
  const up = await flakyGrpcServer(t);
  const route = matchedRoute('grpc.example.com', '{prefix: /}', 'retries: {attempts: 3, retryOn: "internal,resource-exhausted,deadline-exceeded"}');
  const proxy = await startTestProxy(t, header(entry('grpc.example.com', up.port, 'GRPC')) + route, { address: '127.0.0.1', port: up.port });
  const client = echoClient(t, proxy.port, 'grpc.example.com');

  for (const name of ['INTERNAL', 'RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']) {
    t.deepEqual(await unaryCall(client, 'unary', `${name}-once`), { value: `hi ${name}-once` });
    t.deepEqual(up.attempts.get(`${name}-once`), ['1', '2'], name);
  }
  const unavailable = await unaryCall(client, 'unary', 'UNAVAILABLE-once');
  t.is(unavailable.error?.code, grpc.status.UNAVAILABLE, 'retryOn replaces the default conditions');
  t.deepEqual(up.attempts.get('UNAVAILABLE-once'), ['1']);
  const exhausted = await unaryCall(client, 'unary', 'INTERNAL-always');
  t.is(exhausted.error?.code, grpc.status.INTERNAL);
  t.deepEqual(up.attempts.get('INTERNAL-always'), ['1', '2', '3', '4'], 'attempts: 3 is three retries');
  t.deepEqual((await loggedRequests(proxy, 5)).slice(3), ['POST /test.Echo/Unary HTTP/2 200 -', 'POST /test.Echo/Unary HTTP/2 200 URX']);
});

test('gRPC perTryTimeout: a stalled try is retried, the last one answers DEADLINE_EXCEEDED (UT,URX); the route timeout bounds all tries (UT)', async (t) => {
  const up = await flakyGrpcServer(t);
  const yaml =
    header(entry('grpc.example.com', up.port, 'GRPC')) +
    matchedRoute('grpc.example.com', '{prefix: /}', 'retries: {attempts: 1, perTryTimeout: 1s, retryOn: 5xx}') +
    `---\n${entry('deadline.example.com', up.port, 'GRPC')}` +
    matchedRoute('deadline.example.com', '{prefix: /}', 'timeout: 1500ms\n    retries: {attempts: 5, perTryTimeout: 900ms, retryOn: 5xx}');
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port });
  const client = echoClient(t, proxy.port, 'grpc.example.com');

  t.deepEqual(await unaryCall(client, 'unary', 'slow-once'), { value: 'hi slow-once' });
  t.deepEqual(up.attempts.get('slow-once'), ['1', '2']);
  const perTry = await unaryCall(client, 'slow', 'x');
  t.is(perTry.error?.code, grpc.status.DEADLINE_EXCEEDED);
  t.is(up.attempts.get('slow:x')?.length, 2, 'attempts: 1 is the first try and one retry, each cut at 1 s');

  // The route's 1.5 s fire before a third 900 ms try could start (timers run in order, whatever
  // the load): two tries, not the six attempts: 5 would allow. The margins are wide so that a
  // loaded machine still gets the second try to the server in time.
  const bounded = echoClient(t, proxy.port, 'deadline.example.com');
  const routeTimeout = await unaryCall(bounded, 'slow', 'bounded');
  t.is(routeTimeout.error?.code, grpc.status.DEADLINE_EXCEEDED);
  t.is(up.attempts.get('slow:bounded')?.length, 2, 'the route timeout, not five per-try timeouts');

  t.deepEqual(await loggedRequests(proxy, 3), [
    'POST /test.Echo/Unary HTTP/2 200 -',
    'POST /test.Echo/Slow HTTP/2 200 UT,URX',
    'POST /test.Echo/Slow HTTP/2 200 UT',
  ]);
});

test('gRPC client streaming: a stream within the replay buffer is sent again whole on a retry; one beyond it is not retried, logged without URX, counted as retry_or_shadow_abandoned (a long stream after the answer began is not)', async (t) => {
  const received = new Map<string, number[]>();
  const port = await grpcServer(t, {
    clientStream: (call: grpc.ServerReadableStream<string, string>, cb: grpc.sendUnaryData<string>) => {
      const got: string[] = [];
      call.on('data', (d: string) => got.push(d));
      call.on('end', () => {
        const sizes = received.get(got[0]!) ?? [];
        sizes.push(got.join('').length);
        received.set(got[0]!, sizes);
        // Every first call is UNAVAILABLE, after the whole request stream was read.
        if (sizes.length === 1) cb(status(grpc.status.UNAVAILABLE));
        else cb(null, `${got.length} messages`);
      });
    },
  });
  const proxy = await startTestProxy(t, header(entry('grpc.example.com', port, 'GRPC')), { address: '127.0.0.1', port }, { metricsPort: 0 });
  const client = echoClient(t, proxy.port, 'grpc.example.com');
  const stream = (messages: string[]) =>
    new Promise<{ value?: string; error?: grpc.ServiceError }>((resolve) => {
      const call = client['clientStream']!((error: grpc.ServiceError | null, value: string) => resolve(error ? { error } : { value })) as grpc.ClientWritableStream<string>;
      for (const m of messages) call.write(m);
      call.end();
    });

  const small = ['small', 'b', 'c'];
  t.deepEqual(await stream(small), { value: '3 messages' });
  t.deepEqual(received.get('small'), [7, 7], 'the retry got the whole stream again');

  // 2 MiB in 64 KiB messages: more than Envoy's 1 MiB buffer.
  const big = ['big', ...Array.from({ length: 32 }, () => 'x'.repeat(64 * 1024))];
  const answer = await stream(big);
  t.is(answer.error?.code, grpc.status.UNAVAILABLE);
  t.deepEqual(received.get('big'), [3 + 32 * 64 * 1024], 'one try only');

  // Once an answer is relayed no retry can follow: a long stream after that is not "abandoned".
  const bidi = client['bidi']!() as grpc.ClientDuplexStream<string, string>;
  const echoed: string[] = [];
  bidi.on('data', (d: string) => echoed.push(d.slice(0, 8)));
  bidi.write('first');
  await new Promise((r) => bidi.once('data', r));
  for (const m of big) bidi.write(m);
  bidi.end();
  await new Promise((r) => bidi.once('end', r));
  t.is(echoed.length, 1 + big.length);

  t.deepEqual(await loggedRequests(proxy, 3), ['POST /test.Echo/ClientStream HTTP/2 200 -', 'POST /test.Echo/ClientStream HTTP/2 200 -', 'POST /test.Echo/Bidi HTTP/2 200 -']);
  const metrics = await (await fetch(`http://127.0.0.1:${proxy.server.ports['metrics']}/stats/prometheus`)).text();
  const cluster = `cluster_name="outbound\\|${port}\\|\\|grpc\\.example\\.com"`;
  t.regex(metrics, new RegExp(`envoy_cluster_retry_or_shadow_abandoned_total\\{${cluster}\\} 1\\n`));
  t.regex(metrics, new RegExp(`envoy_cluster_upstream_rq_retry_total\\{${cluster}\\} 1\\n`));
});

/** One request on `session` for `authority`: status and body. */
function h2Request(session: ClientHttp2Session, authority: string, path: string, body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': body ? 'POST' : 'GET', ':path': path, ':authority': authority }, { endStream: !body });
    let code = 0;
    let text = '';
    req.on('response', (h: IncomingHttpHeaders) => (code = Number(h[':status'])));
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => resolve({ status: code, body: text }));
    req.on('error', reject);
    if (body) req.end(body);
  });
}

/** A node:http2 client session to the proxy, closed when the test ends. */
function h2Client(t: ExecutionContext, proxy: TestProxy): ClientHttp2Session {
  const session = connect(`http://127.0.0.1:${proxy.port}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  return session;
}

test('node:http2 and curl --http2-prior-knowledge on an HTTP2 port: REFUSED_STREAM and 503 retried on a new stream; no upstream is 503 UF,URX after three connects; a body beyond the buffer is not retried', async (t) => {
  const up = await h2cOnlyUpstream(t);
  const yaml = `${entry('h2.example.com', up.port, 'HTTP2')}---\n${entry('down.example.com', 1, 'HTTP2')}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port }, { metricsPort: 0 });
  const attempts = (path: string) => up.seen.filter((s) => s.path === path).map((s) => s.headers['x-envoy-attempt-count']);
  const session = h2Client(t, proxy);

  t.deepEqual(await h2Request(session, 'h2.example.com', '/refused-once?node'), { status: 201, body: 'h2 answer to GET /refused-once?node body=' });
  t.deepEqual(attempts('/refused-once?node'), ['1', '2']);
  t.deepEqual(await h2Request(session, 'h2.example.com', '/503-once?node', Buffer.from('kept')), { status: 201, body: 'h2 answer to POST /503-once?node body=kept' });
  t.deepEqual(attempts('/503-once?node'), ['1', '2']);
  t.deepEqual(up.seen.filter((s) => s.path === '/503-once?node').map((s) => s.body), ['kept', 'kept'], 'the body sent again');

  const curl = (path: string) =>
    execa('curl', ['-sS', '-m', '5', '--http2-prior-knowledge', '-H', 'Host: h2.example.com', '-w', ' %{http_version} %{http_code}', `http://127.0.0.1:${proxy.port}${path}`], { reject: false });
  const refused = await curl('/refused-once?curl');
  t.is(refused.stdout, 'h2 answer to GET /refused-once?curl body= 2 201', refused.stderr);
  const unavailable = await curl('/503-once?curl');
  t.is(unavailable.stdout, 'h2 answer to GET /503-once?curl body= 2 201', unavailable.stderr);

  // 2 MiB: more than the replay buffer, so the refused stream cannot be sent again.
  const big = await h2Request(session, 'h2.example.com', '/refused-once?big', Buffer.alloc(2 * 1024 * 1024, 'x'));
  t.is(big.status, 503);
  t.deepEqual(attempts('/refused-once?big'), ['1']);

  proxy.setDestination({ address: '127.0.0.1', port: 1 });
  const down = await h2Request(h2Client(t, proxy), 'down.example.com', '/x');
  t.is(down.status, 503);
  t.regex(down.body, /^upstream connect error or disconnect\/reset before headers\. reset reason: /);

  t.deepEqual(await loggedRequests(proxy, 6), [
    'GET /refused-once?node HTTP/2 201 -',
    'POST /503-once?node HTTP/2 201 -',
    'GET /refused-once?curl HTTP/2 201 -',
    'GET /503-once?curl HTTP/2 201 -',
    'POST /refused-once?big HTTP/2 503 UC',
    'GET /x HTTP/2 503 UF,URX',
  ]);
  const metrics = await (await fetch(`http://127.0.0.1:${proxy.server.ports['metrics']}/stats/prometheus`)).text();
  t.regex(metrics, /envoy_cluster_upstream_cx_connect_fail_total\{cluster_name="outbound\|1\|\|down\.example\.com"\} 3\n/);
});
