/**
 * The native HTTP/1.1 fast path against the JS path it replaces: one corpus of raw client
 * exchanges (bodies by Content-Length and chunked, pipelining, keep-alive reuse, large heads,
 * a 503 retried into a 200, a route timeout, an upstream closing mid-answer, a client aborting
 * mid-request, an unknown Host, Upgrade / Expect / absolute form / HTTP/1.0 handed back) sent
 * through two in-process proxies on loopback, one with the fast path and one without
 * (nativeHttp false = `--no-native-http`). What the client receives, what the upstream
 * receives and the access-log lines must be the same, modulo request ids, trace ids, times,
 * dates and ephemeral ports (and chunk boundaries, which only say how the bytes were cut).
 */
import test, { type ExecutionContext } from 'ava';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { addonLoads } from '../../src/native.js';
import { listenOnLoopback } from './helpers/loopback-upstream.js';
import { eventually, startTestProxy, upstreamServer, type TestProxy } from './helpers/in-process-proxy.js';
import { clusterCounters, fastPathMesh, normalizeLog } from './helpers/fast-path-differential.js';

const skip = !addonLoads() || process.platform !== 'linux';
const maybe = skip ? test.skip : test;

/** What the origin saw of one request. */
interface Seen {
  method: string;
  url: string;
  version: string;
  rawHeaders: string[];
  body: string;
  complete: boolean;
}

/** The origin: answers by path, records every request it receives. */
async function origin(t: ExecutionContext): Promise<{ port: number; seen: Seen[]; reset(): void }> {
  const seen: Seen[] = [];
  let flaky = 0;
  const server = createServer((req: IncomingMessage, res) => {
    const entry: Seen = { method: req.method!, url: req.url!, version: req.httpVersion, rawHeaders: req.rawHeaders, body: '', complete: false };
    seen.push(entry);
    req.on('data', (d: Buffer) => (entry.body += d.toString('latin1')));
    req.on('end', () => {
      entry.complete = true;
      answer(req.url!, res, entry);
    });
  });
  const answer = (url: string, res: import('node:http').ServerResponse, entry: Seen) => {
    if (url === '/cl') {
      res.writeHead(200, 'OK', { 'Content-Length': '5', 'X-Up': 'one', 'Set-Cookie': ['a=1', 'b=2'] });
      res.end('hello');
    } else if (url === '/chunked') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first,');
      setTimeout(() => res.end('second'), 20);
    } else if (url === '/echo') {
      res.writeHead(201, 'Created', { 'Content-Length': String(Buffer.byteLength(entry.body, 'latin1')) });
      res.end(entry.body, 'latin1');
    } else if (url === '/flaky') {
      flaky++;
      if (flaky % 2 === 1) {
        res.writeHead(503, { 'Content-Length': '4' });
        res.end('busy');
      } else {
        res.writeHead(200, { 'Content-Length': '2' });
        res.end('ok');
      }
    } else if (url === '/always503') {
      res.writeHead(503, { 'Content-Length': '4' });
      res.end('busy');
    } else if (url === '/slow') {
      const timer = setTimeout(() => res.end('late'), 2000);
      res.on('close', () => clearTimeout(timer));
    } else if (url === '/midclose') {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('0123456789');
      setTimeout(() => res.socket?.destroy(), 50);
    } else if (url === '/nocontent') {
      res.writeHead(204, { 'X-Empty': 'yes' });
      res.end();
    } else {
      res.writeHead(404, { 'Content-Length': '0' });
      res.end();
    }
  };
  const port = await listenOnLoopback(t, server);
  return { port, seen, reset: () => ((seen.length = 0), (flaky = 0)) };
}


/** One step of a client exchange: bytes to write, a pause, or waiting for n complete answers. */
type Step = { write: string } | { pauseMs: number } | { answers: number } | { bytewise: string } | { abortAfterMs: number };

/** Runs `steps` on a raw connection to the proxy; returns every byte it answered. */
async function exchange(port: number, steps: Step[]): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  let got = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  for (const step of steps) {
    if ('write' in step) socket.write(step.write, 'latin1');
    else if ('bytewise' in step) {
      for (const ch of step.bytewise) {
        socket.write(ch, 'latin1');
        await new Promise((r) => setTimeout(r, 2));
      }
    } else if ('pauseMs' in step) await new Promise((r) => setTimeout(r, step.pauseMs));
    else if ('abortAfterMs' in step) {
      await new Promise((r) => setTimeout(r, step.abortAfterMs));
      socket.destroy();
      return got;
    } else {
      await eventually(() => closed || parseAnswers(got).complete >= step.answers, 4000);
    }
  }
  await eventually(() => closed, 300);
  socket.destroy();
  return got;
}

/** Parses answers out of a byte stream: heads normalized, bodies decoded, an incomplete tail marked. */
function parseAnswers(text: string, headRequests = 0): { complete: number; normalized: string[] } {
  const out: string[] = [];
  let rest = text;
  let complete = 0;
  let heads = headRequests;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) {
      out.push(`INCOMPLETE HEAD ${rest.length}`);
      break;
    }
    const lines = rest.slice(0, end).split('\r\n');
    const status = lines[0]!;
    const headers = lines.slice(1).map((l) => {
      const i = l.indexOf(':');
      const name = l.slice(0, i);
      let value = l.slice(i + 1).trim();
      if (/^(date|x-envoy-upstream-service-time|x-request-id)$/i.test(name)) value = '*';
      return `${name}: ${value}`;
    });
    rest = rest.slice(end + 4);
    const get = (n: string) => headers.find((h) => h.toLowerCase().startsWith(`${n}:`))?.split(': ')[1];
    const code = Number(status.split(' ')[1]);
    let body = '';
    let ok = true;
    if (heads > 0 || code === 204 || code === 304 || code < 200) {
      heads--;
    } else if (get('transfer-encoding') === 'chunked') {
      for (;;) {
        const e = rest.indexOf('\r\n');
        if (e < 0) {
          ok = false;
          break;
        }
        const size = parseInt(rest.slice(0, e), 16);
        if (size === 0) {
          const fin = rest.indexOf('\r\n\r\n');
          if (fin < 0) ok = false;
          else rest = rest.slice(fin + 4);
          break;
        }
        if (rest.length < e + 2 + size + 2) {
          ok = false;
          body += rest.slice(e + 2);
          rest = '';
          break;
        }
        body += rest.slice(e + 2, e + 2 + size);
        rest = rest.slice(e + 2 + size + 2);
      }
    } else if (get('content-length') !== undefined) {
      const n = Number(get('content-length'));
      body = rest.slice(0, n);
      ok = rest.length >= n;
      rest = rest.slice(n);
    } else {
      body = rest;
      rest = '';
    }
    out.push(`${status}\n${headers.join('\n')}\n\n${body}${ok ? '' : '\n[INCOMPLETE]'}`);
    if (ok) complete++;
    else break;
  }
  return { complete, normalized: out };
}


function normalizeSeen(seen: Seen[]): string[] {
  return seen
    .map((s) => {
      const headers: string[] = [];
      for (let i = 0; i < s.rawHeaders.length; i += 2) {
        const name = s.rawHeaders[i]!;
        const value = /^(x-request-id|x-b3-traceid|x-b3-spanid)$/i.test(name) ? '*' : s.rawHeaders[i + 1]!;
        headers.push(`${name}: ${value}`);
      }
      return `${s.method} ${s.url} HTTP/${s.version}\n${headers.join('\n')}\n\n${s.body}${s.complete ? '' : ' [INCOMPLETE]'}`;
    })
    .sort();
}


interface Case {
  name: string;
  steps: Step[];
  /** HEAD requests in it (their answers have no body). */
  heads?: number;
  /** The fast path must have served (true) or handed back (false) its requests. */
  native?: boolean;
}

const get = (path: string, host = 'api.example.com', extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: diff/1\r\n${extra}\r\n`;

const corpus: Case[] = [
  { name: 'GET with a Content-Length answer', steps: [{ write: get('/cl') }, { answers: 1 }], native: true },
  { name: 'GET with a chunked answer', steps: [{ write: get('/chunked') }, { answers: 1 }], native: true },
  { name: 'HEAD', steps: [{ write: `HEAD /cl HTTP/1.1\r\nHost: api.example.com\r\n\r\n` }, { answers: 1 }], heads: 1, native: true },
  { name: '204 answer', steps: [{ write: get('/nocontent') }, { answers: 1 }], native: true },
  {
    name: 'POST with a Content-Length body',
    steps: [{ write: `POST /echo HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 11\r\nX-Forwarded-For: 192.0.2.9\r\n\r\nhello world` }, { answers: 1 }],
    native: true,
  },
  {
    name: 'POST with the body in a later write',
    steps: [{ write: `POST /echo HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 6\r\n\r\nab` }, { pauseMs: 50 }, { write: 'cdef' }, { answers: 1 }],
    native: true,
  },
  { name: 'POST without a body', steps: [{ write: `POST /echo HTTP/1.1\r\nHost: api.example.com\r\n\r\n` }, { answers: 1 }], native: true },
  {
    name: 'POST with a chunked body (handed back)',
    steps: [{ write: `POST /echo HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n` }, { answers: 1 }],
    native: false,
  },
  { name: 'pipelined requests', steps: [{ write: get('/chunked') + get('/cl') + get('/echo') }, { answers: 3 }], native: true },
  { name: 'keep-alive reuse', steps: [{ write: get('/cl') }, { answers: 1 }, { write: get('/chunked') }, { answers: 2 }, { write: get('/cl') }, { answers: 3 }], native: true },
  { name: 'client request id and trace kept', steps: [{ write: get('/cl', 'api.example.com', 'X-Request-Id: abc-123\r\nX-B3-TraceId: 0123456789abcdef0123456789abcdef\r\n') }, { answers: 1 }], native: true },
  { name: 'a byte outside ASCII in User-Agent', steps: [{ write: `GET /cl HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: caf\xe9/1\r\n\r\n` }, { answers: 1 }], native: true },
  { name: 'hop-by-hop request headers dropped', steps: [{ write: get('/cl', 'api.example.com', 'Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n') }, { answers: 1 }], native: true },
  { name: 'a 20 KiB header', steps: [{ write: get('/cl', 'api.example.com', `X-Big: ${'a'.repeat(20_000)}\r\n`) }, { answers: 1 }], native: true },
  { name: 'a 50 KiB header (handed back)', steps: [{ write: get('/cl', 'api.example.com', `X-Big: ${'b'.repeat(50_000)}\r\n`) }, { answers: 1 }], native: false },
  { name: 'a 70 KiB header (431 on the JS path)', steps: [{ write: get('/cl', 'api.example.com', `X-Big: ${'c'.repeat(70_000)}\r\n`) }, { answers: 1 }], native: false },
  { name: 'upstream 503 then 200: retried', steps: [{ write: get('/flaky') }, { answers: 1 }], native: true },
  { name: 'upstream always 503: retries run out (URX)', steps: [{ write: get('/always503') }, { answers: 1 }], native: true },
  { name: 'slow upstream: route timeout 504 UT', steps: [{ write: get('/slow', 'slow.example.com') }, { answers: 1 }, { write: get('/cl', 'slow.example.com') }, { answers: 2 }], native: true },
  { name: 'upstream refused: 503 UF,URX', steps: [{ write: get('/cl', 'dead.example.com') }, { answers: 1 }], native: true },
  { name: 'upstream closes mid-answer (UC)', steps: [{ write: get('/midclose') }, { pauseMs: 400 }], native: true },
  {
    name: 'client aborts mid-request (DC)',
    steps: [{ write: `POST /echo HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 100\r\n\r\n0123456789` }, { abortAfterMs: 200 }],
    native: true,
  },
  { name: 'client aborts while waiting for a slow answer (DC)', steps: [{ write: get('/slow') }, { abortAfterMs: 200 }], native: true },
  { name: 'head sent one byte at a time', steps: [{ bytewise: get('/cl') }, { answers: 1 }], native: true },
  { name: 'unknown Host: 502 BlackHoleCluster (handed back)', steps: [{ write: get('/cl', 'unknown.example.org') }, { answers: 1 }], native: false },
  { name: 'known then unknown Host on one connection', steps: [{ write: get('/cl') }, { answers: 1 }, { write: get('/cl', 'unknown.example.org') }, { answers: 2 }, { write: get('/cl') }, { answers: 3 }] },
  { name: 'Upgrade (handed back)', steps: [{ write: get('/cl', 'api.example.com', 'Connection: Upgrade\r\nUpgrade: websocket\r\n') }, { pauseMs: 300 }], native: false },
  {
    name: 'Expect: 100-continue (handed back)',
    steps: [{ write: `POST /echo HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n` }, { pauseMs: 100 }, { write: 'hi' }, { answers: 2 }],
    native: false,
  },
  { name: 'absolute form (handed back)', steps: [{ write: `GET http://api.example.com/cl HTTP/1.1\r\nHost: api.example.com\r\n\r\n` }, { answers: 1 }], native: false },
  { name: 'HTTP/1.0 (handed back)', steps: [{ write: `GET /cl HTTP/1.0\r\nHost: api.example.com\r\n\r\n` }, { answers: 1 }], native: false },
  { name: 'Connection: close (handed back)', steps: [{ write: get('/cl', 'api.example.com', 'Connection: close\r\n') }, { answers: 1 }], native: false },
];

interface Outcome {
  answers: string[];
  upstream: string[];
  log: string[];
}

async function run(proxy: TestProxy, up: Awaited<ReturnType<typeof origin>>, c: Case): Promise<Outcome> {
  up.reset();
  proxy.accessLog.length = 0;
  const bytes = await exchange(proxy.port, c.steps);
  // Log lines come when each exchange ends; an aborted one may end a little after the client.
  await new Promise((r) => setTimeout(r, 150));
  return { answers: parseAnswers(bytes, c.heads ?? 0).normalized, upstream: normalizeSeen(up.seen), log: proxy.accessLog.map(normalizeLog) };
}

/** The corpus's origin, and the mesh the proxies under test load (with a port that refuses connections). */
async function corpusMesh(t: ExecutionContext): Promise<{ up: Awaited<ReturnType<typeof origin>>; yaml: string; dst: { address: string; port: number } }> {
  const up = await origin(t);
  // A port nothing listens on: connections to it are refused.
  const probe = await upstreamServer(t, (s) => s.destroy());
  const refusedPort = (probe.server.address() as AddressInfo).port;
  probe.server.close();
  return { up, yaml: fastPathMesh(up.port, refusedPort), dst: { address: '127.0.0.1', port: up.port } };
}

maybe('the fast path and the JS path answer, forward and log the corpus alike', async (t) => {
  t.timeout(120_000);
  const { up, yaml, dst } = await corpusMesh(t);
  const native = await startTestProxy(t, yaml, dst, { nativeHttp: true, metricsPort: 0 });
  const js = await startTestProxy(t, yaml, dst, { nativeHttp: false, metricsPort: 0 });
  t.is(js.server.nativeHttpStats, undefined, 'nativeHttp false turns the fast path off');
  for (const c of corpus) {
    const before = { ...native.server.nativeHttpStats! };
    const a = await run(native, up, c);
    const after = native.server.nativeHttpStats!;
    const b = await run(js, up, c);
    t.deepEqual(a.answers, b.answers, `${c.name}: client-visible answers`);
    t.deepEqual(a.upstream, b.upstream, `${c.name}: requests the upstream received`);
    t.deepEqual(a.log, b.log, `${c.name}: access-log lines`);
    t.true(a.log.length > 0 || a.answers.length === 0, `${c.name}: logged`);
    if (c.native === true) t.true(after.served > before.served, `${c.name}: served by the fast path`);
    if (c.native === false) t.is(after.served, before.served, `${c.name}: not served by the fast path`);
    if (c.native === false) t.true(after.handedBack > before.handedBack, `${c.name}: handed back to the JS path`);
  }
  // The whole corpus counted alike: responses by code, retries, retries run out, connect failures.
  const nativeCounters = await clusterCounters(native);
  t.true(nativeCounters.some((l) => l.startsWith('envoy_cluster_upstream_rq_retry_total')), nativeCounters.join('\n'));
  t.deepEqual(nativeCounters, await clusterCounters(js), 'the metrics');
});

// The fast path reports requests three ways by access-log setting (TEXT: rendered lines and
// summed counts; JSON: a record each; off: summed counts alone): each counts the corpus alike.
maybe('with a JSON access log or none, the fast path counts the corpus as the JS path does', async (t) => {
  t.timeout(120_000);
  const { up, yaml, dst } = await corpusMesh(t);
  const js = await startTestProxy(t, yaml, dst, { nativeHttp: false, metricsPort: 0, accessLog: 'off' });
  const off = await startTestProxy(t, yaml, dst, { nativeHttp: true, metricsPort: 0, accessLog: 'off' });
  const json = await startTestProxy(t, yaml, dst, { nativeHttp: true, metricsPort: 0, accessLogEncoding: 'JSON' });
  for (const c of corpus) {
    const expected = await run(js, up, c);
    for (const [name, proxy] of [['no access log', off], ['JSON', json]] as const) {
      const got = await run(proxy, up, c);
      t.deepEqual(got.answers, expected.answers, `${name}, ${c.name}: client-visible answers`);
    }
  }
  t.true(off.server.nativeHttpStats!.served > 0 && json.server.nativeHttpStats!.served > 0, 'served by the fast path');
  const expected = await clusterCounters(js);
  t.true(expected.some((l) => l.startsWith('envoy_cluster_upstream_rq_retry_limit_exceeded')), expected.join('\n'));
  t.deepEqual(await clusterCounters(off), expected, 'no access log: the metrics');
  t.deepEqual(await clusterCounters(json), expected, 'JSON: the metrics');
});
