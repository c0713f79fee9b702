/**
 * The native fast path with an HTTP/2 upstream (ServiceEntry ports with protocol HTTP2 and
 * GRPC) against the JS path it stands in for (http2-proxy.ts with http2-upstream*.ts): one
 * corpus — @grpc/grpc-js unary, server, client and bidirectional streaming, deadlines, error
 * statuses (trailers-only answers), messages beyond the flow-control windows, node:http2
 * GET/POST, trailers, retries on REFUSED_STREAM, 503 and gRPC UNAVAILABLE — through two
 * in-process proxies, one with the fast path and one without (nativeHttp false =
 * `--no-native-http`). What the client gets, what the origins receive, the access-log lines
 * and the counters must be the same, modulo ids, times, dates and ephemeral ports.
 */
import test from 'ava';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { addonLoads } from '../../src/native.js';
import { startTestProxy, upstreamServer, type TestProxy } from './helpers/in-process-proxy.js';
import { clusterCounters, normalizeLog } from './helpers/fast-path-differential.js';
import { h2Request, h2Session, type StreamOutcome } from './helpers/h2c-fast-path.js';
import { echoClient } from './helpers/grpc-echo.js';
import { grpcOrigin, h2Origin, h2UpstreamMesh } from './helpers/h2-upstream-fast-path.js';

const skip = !addonLoads() || process.platform !== 'linux';
const maybe = skip ? test.skip : test;

type Answer = StreamOutcome | string;
type Client = ReturnType<typeof echoClient>;

interface Case {
  name: string;
  go(t: import('ava').ExecutionContext, port: number): Promise<Answer[]>;
}

/** A gRPC call's outcome: its value(s), or its status code and details. */
function grpcOutcome(err: grpc.ServiceError | null | undefined, values: string[]): string {
  if (err) return `error ${err.code} ${err.details}`;
  return values.map((v) => (v.length > 200 ? `${v.length} bytes` : v)).join(' | ');
}

/** One call on a fresh channel (a fresh proxy connection): `fn` gets the client. */
function grpcCase(authority: string, fn: (c: Client) => Promise<string>): Case['go'] {
  return async (t, port) => {
    const client = echoClient(t, port, authority);
    try {
      return [await fn(client)];
    } finally {
      client.close();
    }
  };
}

const unary = (c: Client, req: string, deadlineMs?: number) =>
  new Promise<string>((resolve) => {
    const options = deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
    c['unary']!(req, new grpc.Metadata(), options, (e: grpc.ServiceError | null, v: string) => resolve(grpcOutcome(e, e ? [] : [v])));
  });

function h2Streams(requests: { path: string; method?: string; headers?: Record<string, string>; body?: string | string[] }[]): Case['go'] {
  return async (_t, port) => {
    const session = await h2Session(port);
    try {
      return await Promise.all(
        requests.map((r) => h2Request(session, { ':method': r.method ?? 'GET', ':path': r.path, ':authority': 'h2.example.com', 'user-agent': 'diff/2', ...r.headers }, r.body)),
      );
    } finally {
      session.close();
    }
  };
}

const corpus: Case[] = [
  { name: 'gRPC unary', go: grpcCase('grpc.example.com', (c) => unary(c, 'there')) },
  {
    name: 'gRPC server streaming',
    go: grpcCase('grpc.example.com', (c) => {
      const got: string[] = [];
      const call = c['serverStream']!('n') as grpc.ClientReadableStream<string>;
      call.on('data', (d: string) => got.push(d));
      return new Promise((resolve) => {
        call.on('error', (e: grpc.ServiceError) => resolve(grpcOutcome(e, got)));
        call.on('end', () => resolve(grpcOutcome(null, got)));
      });
    }),
  },
  {
    name: 'gRPC client streaming',
    go: grpcCase(
      'grpc.example.com',
      (c) =>
        new Promise((resolve) => {
          const call = c['clientStream']!((e: grpc.ServiceError | null, v: string) => resolve(grpcOutcome(e, e ? [] : [v]))) as grpc.ClientWritableStream<string>;
          call.write('a');
          setTimeout(() => {
            call.write('b');
            call.end();
          }, 30);
        }),
    ),
  },
  {
    name: 'gRPC bidirectional streaming (each answer before the next message)',
    go: grpcCase('grpc.example.com', async (c) => {
      const call = c['bidi']!() as grpc.ClientDuplexStream<string, string>;
      const got: string[] = [];
      for (const m of ['one', 'two', 'three']) {
        call.write(m);
        got.push(await new Promise<string>((resolve) => call.once('data', resolve)));
      }
      call.end();
      await new Promise((resolve) => call.on('status', resolve));
      return got.join(' | ');
    }),
  },
  {
    name: 'gRPC client stream beyond the replay buffer (retry abandoned)',
    go: grpcCase(
      'grpc.example.com',
      (c) =>
        new Promise((resolve) => {
          const call = c['clientStream']!((e: grpc.ServiceError | null, v: string) => resolve(grpcOutcome(e, e ? [] : [v]))) as grpc.ClientWritableStream<string>;
          for (let i = 0; i < 24; i++) call.write(String(i % 10).repeat(64 * 1024));
          call.end();
        }),
    ),
  },
  { name: 'gRPC route timeout: DEADLINE_EXCEEDED (local reply, UT)', go: grpcCase('grpc-slow.example.com', (c) => new Promise((resolve) => c['slow']!('x', (e: grpc.ServiceError) => resolve(grpcOutcome(e, []))))) },
  { name: 'gRPC error status from the server (trailers-only)', go: grpcCase('grpc.example.com', (c) => unary(c, 'not-found')) },
  { name: 'gRPC UNAVAILABLE once: retried', go: grpcCase('grpc.example.com', (c) => unary(c, 'unavailable-once')) },
  { name: 'gRPC UNAVAILABLE always: retries run out (URX)', go: grpcCase('grpc.example.com', (c) => unary(c, 'unavailable')) },
  { name: 'gRPC messages beyond the flow-control windows', go: grpcCase('grpc.example.com', (c) => unary(c, `big${'q'.repeat(1 << 20)}`)) },
  { name: 'gRPC to a refused upstream: UNAVAILABLE (UF,URX)', go: grpcCase('dead.example.com', (c) => unary(c, 'x')) },
  { name: 'node:http2 GET', go: h2Streams([{ path: '/cl' }]) },
  { name: 'node:http2 POST', go: h2Streams([{ path: '/echo', method: 'POST', body: ['hello ', 'world'] }]) },
  { name: 'node:http2 multiplexed, an answer beyond the windows', go: h2Streams([{ path: '/cl' }, { path: '/big' }, { path: '/echo', method: 'POST', body: 'abc' }, { path: '/big' }]) },
  { name: 'node:http2 answer with trailers', go: h2Streams([{ path: '/trailers' }]) },
  { name: 'REFUSED_STREAM: retried', go: h2Streams([{ path: '/refuse-once' }]) },
  { name: '503 then 200: retried', go: h2Streams([{ path: '/flaky' }]) },
  { name: 'upstream resets before its answer (UC)', go: h2Streams([{ path: '/reset' }]) },
  { name: 'upstream resets mid-answer (UC)', go: h2Streams([{ path: '/midreset' }]) },
];

async function outcome(t: import('ava').ExecutionContext, proxy: TestProxy, origins: { reset(): void; seen: unknown[] }[], c: Case) {
  for (const o of origins) o.reset();
  proxy.accessLog.length = 0;
  // A stream cut mid-answer: INTERNAL_ERROR from the proxy, or the client's own check.
  const answers = (await c.go(t, proxy.port)).map((a) => (typeof a === 'object' && (a.error === 'rst 1' || a.error === 'rst 2') ? { ...a, error: 'reset' } : a));
  await new Promise((r) => setTimeout(r, 150));
  return { answers, upstream: origins.map((o) => JSON.stringify(o.seen)), log: proxy.accessLog.map(normalizeLog).sort() };
}

maybe('with an HTTP/2 upstream the fast path and the JS path answer, forward and log gRPC and h2c alike', async (t) => {
  t.timeout(180_000);
  const h2 = await h2Origin(t);
  const g = await grpcOrigin(t);
  const probe = await upstreamServer(t, (s) => s.destroy());
  const refusedPort = (probe.server.address() as AddressInfo).port;
  probe.server.close();
  const yaml = h2UpstreamMesh(h2.port, h2.port, g.port, refusedPort);
  const dst = { address: '127.0.0.1', port: h2.port };
  const native = await startTestProxy(t, yaml, dst, { nativeHttp: true, metricsPort: 0 });
  const js = await startTestProxy(t, yaml, dst, { nativeHttp: false, metricsPort: 0 });
  for (const c of corpus) {
    const before = { ...native.server.nativeHttpStats! };
    const a = await outcome(t, native, [h2, g], c);
    const after = native.server.nativeHttpStats!;
    const b = await outcome(t, js, [h2, g], c);
    t.deepEqual(a.answers, b.answers, `${c.name}: client-visible answers`);
    t.deepEqual(a.upstream, b.upstream, `${c.name}: what the origins received`);
    t.deepEqual(a.log, b.log, `${c.name}: access-log lines`);
    t.true(a.log.length > 0, `${c.name}: logged`);
    t.true(after.served > before.served, `${c.name}: served by the fast path`);
    t.is(after.handedBack, before.handedBack, `${c.name}: nothing handed back`);
  }
  const counters = (p: TestProxy) => clusterCounters(p, ['upstream_cx_total', 'retry_or_shadow_abandoned_total']);
  const nativeCounters = await counters(native);
  t.true(nativeCounters.some((l) => l.startsWith('envoy_cluster_upstream_rq_retry_total')), nativeCounters.join('\n'));
  t.true(nativeCounters.some((l) => l.startsWith('envoy_cluster_retry_or_shadow_abandoned_total')), nativeCounters.join('\n'));
  t.deepEqual(nativeCounters, await counters(js), 'the metrics');
});
