/**
 * Istio's default retry policy retries `unavailable` (grpc-status 14), and a gRPC server over
 * HTTP/1.1 says so in the response headers (a trailers-only answer). The HTTP/1 forward path
 * reads grpc-status from the raw headers; repeated headers are joined as Node's header object
 * joins them, so a repeated grpc-status is no status at all and is not retried.
 */
import test from 'ava';
import { createServer, request } from 'node:http';
import { listenOnLoopback, loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { startTestProxy, eventually } from './helpers/in-process-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: 'grpc.example' }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('grpc-status 14 in an HTTP/1.1 answer is retried (default policy); a repeated one is not', async (t) => {
  const asked = new Map<string, number>();
  const server = createServer((req, res) => {
    const n = (asked.get(req.url!) ?? 0) + 1;
    asked.set(req.url!, n);
    if (req.url === '/unavailable-once' && n === 1) res.setHeader('Grpc-Status', '14');
    if (req.url === '/repeated') res.setHeader('grpc-status', ['14', '14']);
    res.end(`answer ${n}`);
  });
  const port = await listenOnLoopback(t, server);
  const proxy = await startTestProxy(t, `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${loopbackServiceEntry('grpc.example', port)}`, { address: '127.0.0.1', port });

  const retried = await get(proxy.port, '/unavailable-once');
  t.is(retried.body, 'answer 2', 'the second attempt answered');
  t.is(asked.get('/unavailable-once'), 2);

  const repeated = await get(proxy.port, '/repeated');
  t.is(repeated.body, 'answer 1', '"14, 14" is not a status: no retry');
  t.is(asked.get('/repeated'), 1);

  await eventually(() => proxy.accessLog.length === 2);
  t.deepEqual(proxy.accessLog.map((l) => parseLogLine(l).code), [200, 200]);
});
