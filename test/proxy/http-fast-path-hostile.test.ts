/**
 * Slow and hostile clients against the native HTTP/1.1 fast path, through the in-process
 * proxy on loopback: ten thousand connections opened and dropped (some mid-head, some
 * mid-body, some after a whole request) leave no descriptor and no tracked connection behind
 * and cost no crash; a client that never finishes its head is handed to the JS path and costs
 * nobody else anything; the proxy serves normally afterwards.
 */
import test from 'ava';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { addonLoads } from '../../src/native.js';
import { listenOnLoopback, loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { eventually, startTestProxy } from './helpers/in-process-proxy.js';

const maybe = !addonLoads() || process.platform !== 'linux' ? test.skip : test;

const openFds = () => readdirSync('/proc/self/fd').length;

async function get(port: number): Promise<string> {
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  s.write('GET /after HTTP/1.1\r\nHost: api.example.com\r\n\r\n');
  await eventually(() => got.includes('\r\n\r\nok'), 3000);
  s.destroy();
  return got;
}

maybe('10k connections opened and dropped leak nothing; a never-finished head costs nobody else', async (t) => {
  t.timeout(120_000);
  const origin = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const originPort = await listenOnLoopback(t, origin);
  const proxy = await startTestProxy(t, loopbackServiceEntry('api.example.com', originPort), { address: '127.0.0.1', port: originPort }, { nativeHttp: true });
  // Warm up: the route is learnt, the upstream pool has a connection.
  t.regex(await get(proxy.port), /^HTTP\/1\.1 200 OK/);
  await eventually(() => proxy.server.openConnections === 0);
  const fdsBefore = openFds();

  const kinds = [
    '',
    'GET /x HTTP/1.1\r\nHo',
    'POST /x HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 100\r\n\r\nabc',
    'GET /x HTTP/1.1\r\nHost: api.example.com\r\n\r\n',
  ];
  const total = 10_000;
  const batch = 250;
  for (let done = 0; done < total; done += batch) {
    await Promise.all(
      Array.from({ length: batch }, async (_, i) => {
        const s = connect(proxy.port, '127.0.0.1');
        s.on('error', () => {});
        await once(s, 'connect').catch(() => undefined);
        const kind = kinds[(done + i) % kinds.length]!;
        if (kind) s.write(kind);
        // Half are reset, half closed politely (and dropped if the proxy has not closed by then).
        if (Math.floor((done + i) / kinds.length) % 2 === 0) s.resetAndDestroy();
        else s.end();
        await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 300))]);
        s.destroy();
      }),
    );
  }
  t.true(await eventually(() => proxy.server.openConnections === 0, 20_000), `open connections left: ${proxy.server.openConnections}`);
  t.true(proxy.server.nativeHttpStats!.served > 0, 'the fast path served some of them');
  t.is(proxy.server.nativeHttpStats!.open, 0, 'the fast path holds no connection');

  // A client that never finishes its head: the proxy still serves everybody else.
  const slow = connect(proxy.port, '127.0.0.1');
  await once(slow, 'connect');
  slow.write('GET /never HTTP/1.1\r\nHost: api.exa');
  t.regex(await get(proxy.port), /^HTTP\/1\.1 200 OK/);
  await new Promise((r) => setTimeout(r, 5500));
  t.false(slow.destroyed, 'a slow head is not refused for being slow');
  t.regex(await get(proxy.port), /^HTTP\/1\.1 200 OK/);
  slow.destroy();
  t.true(await eventually(() => proxy.server.openConnections === 0, 5000));
  // Sockets close asynchronously: allow a little slack, not one descriptor per connection.
  t.true(await eventually(() => openFds() <= fdsBefore + 16, 5000), `descriptors: ${fdsBefore} before, ${openFds()} after`);
});

maybe('the drain deadline ends a fast-path request still in flight (DC) and its connection', async (t) => {
  const origin = createServer((req, res) => {
    const timer = setTimeout(() => res.end('late'), 10_000);
    res.on('close', () => clearTimeout(timer));
  });
  const originPort = await listenOnLoopback(t, origin);
  const proxy = await startTestProxy(t, loopbackServiceEntry('api.example.com', originPort), { address: '127.0.0.1', port: originPort }, { nativeHttp: true, drainTimeoutMs: 300 });
  const s = connect(proxy.port, '127.0.0.1');
  await once(s, 'connect');
  s.on('error', () => {});
  s.write('GET /slow HTTP/1.1\r\nHost: api.example.com\r\n\r\n');
  t.true(await eventually(() => proxy.server.nativeHttpStats!.open === 1 && proxy.server.openConnections === 1));
  const closed = once(s, 'close');
  const { remaining } = await proxy.server.stop();
  t.is(remaining, 1, 'the request was still in flight at the deadline');
  await closed;
  t.true(await eventually(() => proxy.accessLog.length === 1));
  t.regex(proxy.accessLog[0]!, /"GET \/slow HTTP\/1\.1" 0 DC /);
});
