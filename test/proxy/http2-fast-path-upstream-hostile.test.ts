/**
 * The native fast path with an HTTP/2 upstream against peers that misbehave: an upstream that
 * resets streams or goes away mid-answer, an upstream that never reads a request body and a
 * client that never reads an answer (flow control must hold the other side, not buffers
 * here), a client that resets its stream (DC, the upstream stream cancelled), and 1000
 * streams on one connection.
 */
import test from 'ava';
import type { AddressInfo } from 'node:net';
import { constants } from 'node:http2';
import { addonLoads } from '../../src/native.js';
import { eventually, startTestProxy, upstreamServer, type TestProxy } from './helpers/in-process-proxy.js';
import { h2Request, h2Session } from './helpers/h2c-fast-path.js';
import { grpcOrigin, h2Origin, h2UpstreamMesh, type H2Origin } from './helpers/h2-upstream-fast-path.js';

const skip = !addonLoads() || process.platform !== 'linux';
const maybe = skip ? test.skip : test;

async function setup(t: import('ava').ExecutionContext, maxConcurrentStreams?: number): Promise<{ proxy: TestProxy; origin: H2Origin }> {
  const origin = await h2Origin(t, maxConcurrentStreams);
  const g = await grpcOrigin(t);
  const probe = await upstreamServer(t, (s) => s.destroy());
  const refusedPort = (probe.server.address() as AddressInfo).port;
  probe.server.close();
  const proxy = await startTestProxy(t, h2UpstreamMesh(origin.port, origin.port, g.port, refusedPort), { address: '127.0.0.1', port: origin.port }, { nativeHttp: true });
  return { proxy, origin };
}

const at = (path: string, method = 'GET') => ({ ':method': method, ':path': path, ':authority': 'h2.example.com' });

maybe('an upstream that resets streams: each reset one is 503 UC, the others on the same connections are answered', async (t) => {
  const { proxy } = await setup(t);
  const session = await h2Session(proxy.port);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => h2Request(session, at(i % 2 === 0 ? '/reset' : '/cl'))));
  session.close();
  t.deepEqual(answers.map((a) => a.status), Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 503 : 200)));
  t.true(await eventually(() => proxy.accessLog.length === 20));
  t.is(proxy.accessLog.filter((l) => / 503 UC /.test(l)).length, 10, proxy.accessLog.join('\n'));
  t.is(proxy.server.nativeHttpStats!.served, 20);
});

maybe('an upstream that goes away mid-answer: the stream is reset and logged UC; the next request opens a new connection', async (t) => {
  const { proxy } = await setup(t);
  const session = await h2Session(proxy.port);
  const cut = await h2Request(session, at('/goaway'));
  t.is(cut.status, 200);
  t.is(cut.body, 'part');
  t.truthy(cut.error, 'the client sees the answer cut short');
  const next = await h2Request(session, at('/cl'));
  session.close();
  t.is(next.status, 200);
  t.is(next.body, 'hello');
  t.true(await eventually(() => proxy.accessLog.length === 2));
  t.regex(proxy.accessLog.find((l) => l.includes('/goaway'))!, / 200 UC /);
});

maybe('an upstream that never reads a request body holds the client by flow control (bounded memory); others are served', async (t) => {
  t.timeout(30_000);
  const { proxy } = await setup(t);
  const session = await h2Session(proxy.port);
  const stream = session.request(at('/noread', 'POST'));
  stream.on('error', () => {});
  const chunk = Buffer.alloc(1 << 16, 'p');
  let written = 0;
  let stalled = false;
  const pump = () => {
    while (written < 64 << 20) {
      written += chunk.length;
      if (!stream.write(chunk)) return void stream.once('drain', pump);
    }
  };
  pump();
  await new Promise((r) => setTimeout(r, 1500));
  const a = written;
  await new Promise((r) => setTimeout(r, 500));
  stalled = written === a;
  t.true(stalled, 'the client is stalled');
  // What the client could write sits in socket buffers and the windows (the proxy's per stream, the origin's).
  t.true(written < 16 << 20, `${written} bytes written of 64 MiB`);
  const other = await h2Session(proxy.port);
  t.is((await h2Request(other, at('/cl'))).status, 200, 'another client is served meanwhile');
  other.close();
  stream.close(constants.NGHTTP2_CANCEL);
  session.close();
});

maybe('a client that never reads an answer holds the upstream by flow control (bounded memory)', async (t) => {
  t.timeout(30_000);
  const { proxy, origin } = await setup(t);
  const session = await h2Session(proxy.port);
  const stream = session.request(at('/huge'));
  stream.on('error', () => {});
  stream.pause();
  await new Promise((r) => setTimeout(r, 1500));
  const a = origin.hugeWritten();
  await new Promise((r) => setTimeout(r, 500));
  t.is(origin.hugeWritten(), a, 'the upstream is stalled');
  t.true(a < 16 << 20, `${a} bytes left the origin of 64 MiB`);
  const other = await h2Session(proxy.port);
  t.is((await h2Request(other, at('/cl'))).status, 200, 'another client is served meanwhile (its own stream window)');
  other.close();
  stream.close(constants.NGHTTP2_CANCEL);
  session.close();
});

maybe('a client that resets its stream: logged DC, the upstream stream is cancelled', async (t) => {
  const { proxy, origin } = await setup(t);
  const session = await h2Session(proxy.port);
  const out = await h2Request(session, at('/slow'), undefined, { cancelAfterMs: 200 });
  session.close();
  t.is(out.status, undefined);
  t.true(await eventually(() => proxy.accessLog.length === 1));
  t.regex(proxy.accessLog[0]!, /"GET \/slow HTTP\/2" 0 DC /);
  // Within 1 s: the origin would end /slow itself after 2 s.
  t.true(await eventually(() => origin.open() === 0, 1000), 'the origin saw its stream cancelled');
});

maybe('1000 streams on one connection, multiplexed upstream', async (t) => {
  t.timeout(60_000);
  const { proxy, origin } = await setup(t);
  const session = await h2Session(proxy.port);
  const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => h2Request(session, at(i % 10 === 0 ? '/echo' : '/cl', i % 10 === 0 ? 'POST' : 'GET'), i % 10 === 0 ? `body ${i}` : undefined)));
  session.close();
  t.is(answers.filter((a) => (a.status === 200 && a.body === 'hello') || (a.status === 201 && a.body.startsWith('body '))).length, 1000);
  t.is(origin.seen.length, 1000);
  t.true(await eventually(() => proxy.server.nativeHttpStats!.served === 1000), 'all served natively');
  t.true(await eventually(() => proxy.accessLog.length === 1000));
});

maybe('an upstream allowing one stream at a time: more connections, at most 8, every request answered', async (t) => {
  t.timeout(60_000);
  const { proxy, origin } = await setup(t, 1);
  const session = await h2Session(proxy.port);
  // The first request learns the upstream's SETTINGS; then no stream is sent beyond them.
  t.is((await h2Request(session, at('/later'))).status, 200);
  const answers = await Promise.all(Array.from({ length: 60 }, () => h2Request(session, at('/later'))));
  session.close();
  t.is(answers.filter((a) => a.status === 200 && a.body === 'later').length, 60, JSON.stringify(answers.filter((a) => a.status !== 200).slice(0, 3)));
  t.false(proxy.accessLog.some((l) => l.includes('URX')), 'no stream refused until its retries ran out');
  t.true(origin.sessions() > 1, `${origin.sessions()} upstream connections`);
  t.true(origin.sessions() <= 8, `${origin.sessions()} upstream connections`);
  t.true(await eventually(() => proxy.server.nativeHttpStats!.served === 61));
});
