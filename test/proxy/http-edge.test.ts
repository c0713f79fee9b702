/**
 * HTTP edge cases handled as Envoy handles them, with real clients (curl, raw sockets) against
 * the in-process proxy on loopback: absolute-form authority, the 60 KiB header limit, DC on a
 * client abort, slow first bytes, pipelining, CONNECT, and `Upgrade: h2c`.
 */
import test, { type ExecutionContext } from 'ava';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import { execa } from 'execa';
import { listenOnLoopback, loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { startTestProxy, eventually, type TestProxy } from './helpers/in-process-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';

async function httpUpstream(t: ExecutionContext): Promise<{ server: Server; port: number }> {
  const server = createServer({ maxHeaderSize: 128 * 1024 }, (req, res) => {
    if (req.url?.startsWith('/slow')) {
      const timer = setTimeout(() => res.end('slow'), 3000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    const delay = req.url?.startsWith('/late') ? 150 : 0;
    setTimeout(() => {
      res.setHeader('x-seen-host', req.headers.host ?? '');
      res.setHeader('x-seen-upgrade', String(req.headers.upgrade ?? ''));
      res.setHeader('x-seen-http2-settings', String(req.headers['http2-settings'] ?? ''));
      res.setHeader('x-seen-connection', String(req.headers.connection ?? ''));
      res.end(`hello ${req.url}`);
    }, delay);
  });
  return { server, port: await listenOnLoopback(t, server) };
}

const entry = (name: string, port: number) => loopbackServiceEntry(name, port);

/** The proxy in front of a fresh httpUpstream() registered as api.example.com (ALLOW_ANY). */
async function proxyToApi(t: ExecutionContext): Promise<TestProxy> {
  const up = await httpUpstream(t);
  return startTestProxy(t, entry('api.example.com', up.port), { address: '127.0.0.1', port: up.port });
}

/** curl (with `options`) asking the proxy for api.example.com's `path`; a failed curl is returned, not thrown. */
function curlApi(proxy: TestProxy, path: string, options: string[]) {
  return execa('curl', ['-sS', ...options, '-H', 'Host: api.example.com', `http://127.0.0.1:${proxy.port}${path}`], { reject: false });
}

/** The `n`th access-log line, once the proxy has written it. */
async function logLine(proxy: TestProxy, n: number): Promise<ReturnType<typeof parseLogLine>> {
  await eventually(() => proxy.accessLog.length === n);
  return parseLogLine(proxy.accessLog[n - 1]!);
}

/** Writes `request` on a raw connection to the proxy and returns everything it answers. */
async function raw(port: number, request: string | Buffer, opts: { delayMs?: number; closeAfterMs?: number } = {}): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => {});
  if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
  socket.write(request);
  if (opts.closeAfterMs !== undefined) {
    await new Promise((r) => setTimeout(r, opts.closeAfterMs));
    socket.destroy();
    return got;
  }
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 3000))]);
  socket.destroy();
  return got;
}

test('absolute form: the URI authority is routed and policy-checked (REGISTRY_ONLY 502), forwarded in origin form', async (t) => {
  const up = await httpUpstream(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('httpbin.example.com', up.port)}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port });
  // Foreign authority in the URI, registered host in Host: refused (was a REGISTRY_ONLY hole).
  const evil = await raw(proxy.port, `GET http://evil.example.net/x HTTP/1.1\r\nHost: httpbin.example.com\r\nConnection: close\r\n\r\n`);
  t.regex(evil, /^HTTP\/1\.1 502 /);
  // Registered authority in the URI: forwarded with origin-form path and Host from the URI.
  const ok = await raw(proxy.port, `GET http://httpbin.example.com/y?q=1 HTTP/1.1\r\nHost: evil.example.net\r\nConnection: close\r\n\r\n`);
  t.regex(ok, /^HTTP\/1\.1 200 /);
  t.regex(ok, /hello \/y\?q=1$/);
  t.regex(ok, /x-seen-host: httpbin\.example\.com\r\n/i);
  await eventually(() => proxy.accessLog.length === 2);
  const [a, b] = proxy.accessLog.map(parseLogLine);
  t.is(a!.cluster, 'BlackHoleCluster');
  t.is(a!.authority, 'evil.example.net');
  t.is(a!.path, '/x');
  t.is(b!.cluster, `outbound|${up.port}||httpbin.example.com`);
  t.is(b!.path, '/y?q=1');
});

test('request headers over 60 KiB are answered 431 and logged; 40 KiB pass', async (t) => {
  const proxy = await proxyToApi(t);
  const big = (n: number) => `GET /h HTTP/1.1\r\nHost: api.example.com\r\nx-big: ${'a'.repeat(n)}\r\nConnection: close\r\n\r\n`;
  const fine = await raw(proxy.port, big(40 * 1024));
  t.regex(fine, /^HTTP\/1\.1 200 /);
  const tooBig = await raw(proxy.port, big(70 * 1024));
  t.regex(tooBig, /^HTTP\/1\.1 431 /);
  const line = await logLine(proxy, 2);
  t.is(line.code, 431);
  t.is(line.flags, 'DPE');
});

test('a client aborting a slow request is logged DC with code 0', async (t) => {
  const proxy = await proxyToApi(t);
  const r = await curlApi(proxy, '/slow', ['-m', '0.5']);
  t.is(r.exitCode, 28, r.stderr);
  const line = await logLine(proxy, 1);
  t.is(line.code, 0);
  t.is(line.flags, 'DC');
});

test('a client whose first bytes come 300 ms after connecting is served (REGISTRY_ONLY, default sniff wait)', async (t) => {
  const up = await httpUpstream(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('api.example.com', up.port)}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port: up.port }, { sniffTimeoutMs: 0 });
  const answer = await raw(proxy.port, `GET /late-client HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n`, { delayMs: 300 });
  t.regex(answer, /^HTTP\/1\.1 200 /);
});

test('pipelined requests are answered in order, even when the first is slower', async (t) => {
  const proxy = await proxyToApi(t);
  const req = (path: string, last = false) => `GET ${path} HTTP/1.1\r\nHost: api.example.com\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
  const answer = await raw(proxy.port, req('/late-1') + req('/2') + req('/3', true));
  const bodies = [...answer.matchAll(/hello (\/\S+?)(?=HTTP|$)/g)].map((m) => m[1]);
  t.deepEqual(bodies, ['/late-1', '/2', '/3']);
});

test('CONNECT is answered 404 NR, as Envoy without a CONNECT upgrade config does', async (t) => {
  const proxy = await proxyToApi(t);
  const answer = await raw(proxy.port, `CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n`);
  t.regex(answer, /^HTTP\/1\.1 404 /);
  const line = await logLine(proxy, 1);
  t.is(line.method, 'CONNECT');
  t.is(line.code, 404);
  t.is(line.flags, 'NR');
});

test('Upgrade: h2c is dropped and the request answered in HTTP/1.1 (curl --http2), as Envoy\'s HTTP/1 codec does', async (t) => {
  const proxy = await proxyToApi(t);
  // curl --http2 on cleartext sends `Connection: Upgrade, HTTP2-Settings`, `Upgrade: h2c` and HTTP2-Settings.
  const r = await curlApi(proxy, '/up', ['-i', '--http2', '--data-binary', 'body', '-w', '\n%{http_version}']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^HTTP\/1\.1 200/);
  t.notRegex(r.stdout, /101 Switching/);
  // None of the upgrade reached the upstream; the body did (the request went on as HTTP/1.1).
  t.regex(r.stdout, /x-seen-upgrade: \r\n/i);
  t.regex(r.stdout, /x-seen-http2-settings: \r\n/i);
  t.notRegex(r.stdout, /x-seen-connection: [^\r]*(upgrade|http2-settings)/i);
  t.regex(r.stdout, /hello \/up\n1\.1$/);
  const line = await logLine(proxy, 1);
  t.is(line.request, 'POST /up HTTP/1.1');
  t.is(line.code, 200);
  t.is(line.bytesReceived, 4);
});
