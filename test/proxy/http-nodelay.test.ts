/**
 * Downstream HTTP connections get TCP_NODELAY, as Envoy's, HAProxy's and Node's own HTTP server
 * sockets do. The accepted socket comes from interpose's listener (or the splice relay), which
 * set nothing: with Nagle on, a response the upstream sends in two parts (a streamed body, the
 * chunked terminator) held its second part for the client's delayed ACK, ~40 ms per request.
 * Checked on the socket itself (setNoDelay seen for the connection the client opened), since
 * tests do not assert on time.
 */
import test from 'ava';
import { createServer, request, Agent } from 'node:http';
import { Socket } from 'node:net';
import { listenOnLoopback, loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { startTestProxy } from './helpers/in-process-proxy.js';

test('the accepted downstream socket of an HTTP connection has Nagle turned off', async (t) => {
  // Which sockets were told setNoDelay(true), by their remote port.
  const noDelayFor = new Set<number>();
  const original = Socket.prototype.setNoDelay;
  Socket.prototype.setNoDelay = function (this: Socket, enable?: boolean) {
    if (enable !== false && this.remotePort !== undefined) noDelayFor.add(this.remotePort);
    return original.call(this, enable);
  };
  t.teardown(() => {
    Socket.prototype.setNoDelay = original;
  });

  const server = createServer((_req, res) => {
    // Two parts: the second one is what Nagle held back.
    res.write('first part ');
    setTimeout(() => res.end('second part'), 5);
  });
  const port = await listenOnLoopback(t, server);
  const proxy = await startTestProxy(t, `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${loopbackServiceEntry('chunks.example', port)}`, { address: '127.0.0.1', port });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());

  const { body, clientPort } = await new Promise<{ body: string; clientPort: number }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxy.port, path: '/', headers: { host: 'chunks.example' }, agent }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ body: text, clientPort: req.socket!.localPort! }));
    });
    req.on('error', reject);
    req.end();
  });
  t.is(body, 'first part second part');
  t.true(noDelayFor.has(clientPort), 'the proxy set TCP_NODELAY on the connection from the client');
});
