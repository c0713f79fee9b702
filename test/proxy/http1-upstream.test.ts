/**
 * The plain HTTP/1.1 upstream path (undici, http1-upstream-request.ts) on loopback: request
 * bodies streamed whole (content-length and chunked, beyond the retry buffer), a body replayed
 * on a retry, the upstream's answer cut short (UC), a connection closed before the answer
 * (503 UC, reset reason ECONNRESET), the per-try timeout (504 UT,URX), and the upstream local
 * address in the log.
 */
import test from 'ava';
import { createServer, request, type Server } from 'node:http';
import { listenOnLoopback, loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { matchedRoute } from './helpers/virtual-service.js';
import { startTestProxy, eventually } from './helpers/in-process-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';

let tries = 0;
function upstream(): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/flaky' && tries++ === 0) {
        res.writeHead(503).end('again');
        return;
      }
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (req.url === '/close') {
        req.socket.destroy();
        return;
      }
      if (req.url === '/hang') return;
      res.setHeader('x-te', String(req.headers['transfer-encoding'] ?? ''));
      res.setHeader('x-cl', String(req.headers['content-length'] ?? ''));
      res.setHeader('x-connection', String(req.headers['connection'] ?? ''));
      res.end(`${body.length}:${body.subarray(0, 4).toString()}`);
    });
  });
}

function send(port: number, method: string, path: string, body?: Buffer, chunked = false): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: 'api.example.com', 'x-hop': 'v', connection: 'x-hop' };
    if (body && !chunked) headers['content-length'] = String(body.length);
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
      res.on('error', () => resolve({ status: res.statusCode!, body: `${text}<cut>`, headers: res.headers }));
    });
    req.on('error', reject);
    if (body && chunked) {
      for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536));
    } else if (body) req.write(body);
    req.end();
  });
}

test('HTTP/1.1 upstream: bodies, retries with a body, UC, per-try timeout, upstream local address', async (t) => {
  const server = upstream();
  const port = await listenOnLoopback(t, server);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
${loopbackServiceEntry('api.example.com', port)}
${matchedRoute('api.example.com', '{prefix: /hang}', 'retries: {attempts: 1, perTryTimeout: 150ms, retryOn: 5xx}', 'api')}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port });
  const small = await send(proxy.port, 'POST', '/echo', Buffer.from('abcdefgh'));
  t.is(small.body, '8:abcd');
  t.is(small.headers['x-cl'], '8');
  t.is(small.headers['x-connection'], 'keep-alive', 'hop-by-hop headers named by Connection are not sent');
  const big = Buffer.alloc(3 * 1024 * 1024, 'z');
  const chunked = await send(proxy.port, 'POST', '/echo', big, true);
  t.is(chunked.body, `${big.length}:zzzz`);
  t.is(chunked.headers['x-te'], 'chunked');
  const retried = await send(proxy.port, 'PUT', '/flaky', Buffer.from('replayed body'));
  t.is(retried.status, 200);
  t.is(retried.body, '13:repl');
  const cut = await send(proxy.port, 'GET', '/cut');
  t.is(cut.body, 'partial<cut>');
  const closed = await send(proxy.port, 'GET', '/close');
  t.is(closed.status, 503);
  t.regex(closed.body, /reset reason: ECONNRESET$/);
  const hang = await send(proxy.port, 'GET', '/hang');
  t.is(hang.status, 504);
  await eventually(() => proxy.accessLog.length === 6);
  const lines = proxy.accessLog.map(parseLogLine);
  t.deepEqual(lines.map((l) => [l.path, l.code, l.flags]), [
    ['/echo', 200, '-'],
    ['/echo', 200, '-'],
    ['/flaky', 200, '-'],
    ['/cut', 200, 'UC'],
    ['/close', 503, 'UC'],
    ['/hang', 504, 'UT,URX'],
  ]);
  t.is(lines[1]!.bytesReceived, big.length);
  for (const l of lines.slice(0, 5)) t.regex(l.upstreamLocal, /^127\.0\.0\.1:\d+$/);
});
