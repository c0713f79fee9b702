/**
 * The native h2c fast path against the JS path (node:http2) it stands in for: one corpus of
 * HTTP/2 exchanges — real clients, node:http2 for multiplexed streams and bodies and curl
 * --http2-prior-knowledge — through two in-process proxies, one with the fast path and one
 * without (nativeHttp false = `--no-native-http`), upstream speaking HTTP/1.1. What the
 * client gets, what the origin receives, the access-log lines and the counters must be the
 * same, modulo request ids, trace ids, times, dates and ephemeral ports.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import type { ClientHttp2Session } from 'node:http2';
import { addonLoads } from '../../src/native.js';
import { startTestProxy, upstreamServer, type TestProxy } from './helpers/in-process-proxy.js';
import { clusterCounters, fastPathMesh, normalizeLog } from './helpers/fast-path-differential.js';
import { h2cOrigin, h2Request, h2Session, normalizeSeen, type Origin, type StreamOutcome } from './helpers/h2c-fast-path.js';

const skip = !addonLoads() || process.platform !== 'linux';
const maybe = skip ? test.skip : test;
const run = promisify(execFile);

interface Case {
  name: string;
  /** Runs the exchange on a fresh connection; returns what the client saw. */
  go(port: number, originPort: number): Promise<(StreamOutcome | string)[]>;
  /** The fast path must have served (true) or handed back (false) it. */
  native?: boolean;
}

const api = (port: number) => `api.example.com:${port}`;

/** `requests` on one node:http2 session, all at once (multiplexed). */
function streams(requests: { path: string; method?: string; host?: string; headers?: Record<string, string | string[]>; body?: string | string[]; cancelAfterMs?: number }[]): Case['go'] {
  return async (port, originPort) => {
    const session: ClientHttp2Session = await h2Session(port);
    try {
      return await Promise.all(
        requests.map((r) =>
          h2Request(
            session,
            { ':method': r.method ?? 'GET', ':path': r.path, ':authority': r.host ?? api(originPort), 'user-agent': 'diff/2', ...r.headers },
            r.body,
            { cancelAfterMs: r.cancelAfterMs },
          ),
        ),
      );
    } finally {
      session.close();
    }
  };
}

/** curl --http2-prior-knowledge: status line, headers (volatile ones masked) and body. */
function curl(path: string, host: string, extra: string[] = []): Case['go'] {
  return async (port) => {
    const { stdout } = await run('curl', ['-s', '-i', '--http2-prior-knowledge', '-H', `Host: ${host}`, ...extra, `http://127.0.0.1:${port}${path}`]);
    return [stdout.replace(/^(date|x-envoy-upstream-service-time|x-request-id): .*$/gim, '$1: *')];
  };
}

const corpus: Case[] = [
  { name: 'GET with a Content-Length answer (repeated set-cookie)', go: streams([{ path: '/cl' }]), native: true },
  { name: 'GET with a chunked answer', go: streams([{ path: '/chunked' }]), native: true },
  { name: 'HEAD', go: streams([{ path: '/cl', method: 'HEAD' }]), native: true },
  { name: '204 answer', go: streams([{ path: '/nocontent' }]), native: true },
  { name: '304 answer', go: streams([{ path: '/notmodified', headers: { 'if-none-match': '"v1"' } }]), native: true },
  { name: 'POST with Content-Length', go: streams([{ path: '/echo', method: 'POST', headers: { 'content-length': '11', 'x-forwarded-for': '192.0.2.9' }, body: 'hello world' }]), native: true },
  { name: 'POST with the body in two DATA frames', go: streams([{ path: '/echo', method: 'POST', headers: { 'content-length': '6' }, body: ['ab', 'cdef'] }]), native: true },
  { name: 'POST without Content-Length (chunked upstream), after a GET', go: async (port, op) => [...(await streams([{ path: '/cl' }, { path: '/echo', method: 'POST', body: 'no length' }])(port, op))], native: true },
  { name: 'POST without a body', go: streams([{ path: '/echo', method: 'POST' }]), native: true },
  {
    name: 'multiplexed streams',
    go: streams([{ path: '/cl' }, { path: '/chunked' }, { path: '/echo', method: 'POST', headers: { 'content-length': '3' }, body: 'abc' }, { path: '/nocontent' }, { path: '/cl' }, { path: '/big' }]),
    native: true,
  },
  { name: 'answer larger than the flow-control window', go: streams([{ path: '/big' }, { path: '/big' }]), native: true },
  {
    name: 'client request id, trace, cookie crumbs and repeated fields',
    go: streams([{ path: '/cl', headers: { 'x-request-id': 'abc-123', 'x-b3-traceid': '0123456789abcdef0123456789abcdef', cookie: ['a=1', 'b=2'], 'x-multi': ['1', '2'], 'content-type': 'text/x' } }]),
    native: true,
  },
  { name: 'upstream 503 then 200: retried', go: streams([{ path: '/flaky' }]), native: true },
  { name: 'upstream always 503: retries run out (URX)', go: streams([{ path: '/always503' }]), native: true },
  {
    name: 'slow upstream: route timeout 504 UT, then the connection still serves',
    go: async (port, op) => {
      const session = await h2Session(port);
      const first = await h2Request(session, { ':path': '/slow', ':authority': `slow.example.com:${op}` });
      const second = await h2Request(session, { ':path': '/cl', ':authority': `slow.example.com:${op}` });
      session.close();
      return [first, second];
    },
    native: true,
  },
  { name: 'upstream refused: 503 UF,URX', go: streams([{ path: '/cl', host: 'dead.example.com' }]), native: true },
  { name: 'upstream closes mid-answer (UC)', go: streams([{ path: '/midclose' }]), native: true },
  {
    name: 'client resets while waiting for a slow answer (DC)',
    go: streams([{ path: '/cl' }, { path: '/slow', cancelAfterMs: 200 }]),
    native: true,
  },
  { name: 'curl GET', go: (port, op) => curl('/cl', api(op))(port, op), native: true },
  { name: 'curl POST', go: (port, op) => curl('/echo', api(op), ['--data-binary', 'from curl'])(port, op), native: true },
  { name: 'unknown authority first: 502 BlackHoleCluster (handed back)', go: streams([{ path: '/cl', host: 'unknown.example.org' }]), native: false },
  { name: 'gRPC first: handed back', go: streams([{ path: '/svc/Method', method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: '\0\0\0\0\0' }]), native: false },
  { name: 'a 40 KiB header first: handed back', go: streams([{ path: '/cl', headers: { 'x-big': 'b'.repeat(40_000) } }]), native: false },
];

async function outcome(proxy: TestProxy, origin: Origin, c: Case) {
  origin.reset();
  proxy.accessLog.length = 0;
  // A stream cut mid-answer (UC): the JS path resets it with INTERNAL_ERROR, or, when its
  // 'end' wins the race with 'aborted', the client's own Content-Length check does
  // (PROTOCOL_ERROR). Either way the client sees a reset.
  const answers = (await c.go(proxy.port, origin.port)).map((a) => (typeof a === 'object' && (a.error === 'rst 1' || a.error === 'rst 2') ? { ...a, error: 'reset' } : a));
  await new Promise((r) => setTimeout(r, 150));
  return { answers, upstream: normalizeSeen(origin.seen), log: proxy.accessLog.map(normalizeLog).sort() };
}

maybe('the h2c fast path and the JS path answer, forward and log the corpus alike', async (t) => {
  t.timeout(120_000);
  const origin = await h2cOrigin(t);
  const probe = await upstreamServer(t, (s) => s.destroy());
  const refusedPort = (probe.server.address() as AddressInfo).port;
  probe.server.close();
  const yaml = fastPathMesh(origin.port, refusedPort);
  const dst = { address: '127.0.0.1', port: origin.port };
  const native = await startTestProxy(t, yaml, dst, { nativeHttp: true, metricsPort: 0 });
  const js = await startTestProxy(t, yaml, dst, { nativeHttp: false, metricsPort: 0 });
  for (const c of corpus) {
    const before = { ...native.server.nativeHttpStats! };
    const a = await outcome(native, origin, c);
    const after = native.server.nativeHttpStats!;
    const b = await outcome(js, origin, c);
    t.deepEqual(a.answers, b.answers, `${c.name}: client-visible answers`);
    t.deepEqual(a.upstream, b.upstream, `${c.name}: requests the origin received`);
    t.deepEqual(a.log, b.log, `${c.name}: access-log lines`);
    t.true(a.log.length > 0, `${c.name}: logged`);
    if (c.native === true) t.true(after.served > before.served, `${c.name}: served by the fast path`);
    if (c.native === false) t.is(after.served, before.served, `${c.name}: not served by the fast path`);
    if (c.native === false) t.true(after.handedBack > before.handedBack, `${c.name}: handed back to the JS path`);
  }
  const nativeCounters = await clusterCounters(native);
  t.true(nativeCounters.some((l) => l.startsWith('envoy_cluster_upstream_rq_retry_total')), nativeCounters.join('\n'));
  t.deepEqual(nativeCounters, await clusterCounters(js), 'the metrics');
});
