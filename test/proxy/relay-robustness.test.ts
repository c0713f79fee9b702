/**
 * The relay's promises, against real sockets on loopback (the original destination is given by
 * the test, so no root is needed): half-close both ways, RST forwarded, backpressure, limits,
 * timeouts, no fd growth, and one connection's trouble never reaching another.
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { eventually, startTestProxy, upstreamServer } from './helpers/in-process-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';

const ALLOW_ANY = 'outboundTrafficPolicy:\n  mode: ALLOW_ANY\n';

/** Every promise holds for both byte relays: the addon's splice thread and Node streams. */
const RELAYS = ['splice', 'streams'] as const;
type Relay = (typeof RELAYS)[number];

function relayTest(
  title: string,
  fn: (t: ExecutionContext, relay: Relay) => Promise<void>,
  options: { serial?: boolean } = {},
): void {
  for (const relay of RELAYS) (options.serial ? test.serial : test)(`[${relay}] ${title}`, (t) => fn(t, relay));
}

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return once(s, 'connect').then(() => s);
}

function readAll(s: Socket): Promise<string> {
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  return Promise.race([once(s, 'end'), once(s, 'close')]).then(() => text);
}

relayTest('half-close: the client\'s FIN reaches the server, which can still answer', async (t, relay) => {
  const up = await upstreamServer(t, (s) => {
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('end', () => s.end(`got ${got}; bye`));
  });
  const proxy = await startTestProxy(t, ALLOW_ANY, { address: '127.0.0.1', port: up.port }, { relay });
  const c = await dial(proxy.port);
  const reply = readAll(c);
  c.end('hello');
  t.is(await reply, 'got hello; bye');
  await eventually(() => proxy.accessLog.length === 1);
  const line = parseLogLine(proxy.accessLog[0]!);
  t.is(line.cluster, 'PassthroughCluster');
  t.is(line.bytesReceived, 5);
  t.is(line.bytesSent, 'got hello; bye'.length);
});

relayTest('half-close: the server\'s FIN reaches the client, which can still send', async (t, relay) => {
  const received: string[] = [];
  const up = await upstreamServer(t, (s) => {
    s.write('banner\n');
    s.end();
    s.on('data', (d: Buffer) => received.push(d.toString()));
  });
  // A server-first protocol: the proxy waits only the sniff timeout.
  const proxy = await startTestProxy(t, ALLOW_ANY, { address: '127.0.0.1', port: up.port }, { relay });
  const c = await dial(proxy.port);
  const banner = readAll(c);
  t.is(await banner, 'banner\n');
  c.end('late words');
  t.true(await eventually(() => received.join('') === 'late words'));
});

relayTest('RST is forwarded as RST in both directions, and does not disturb other connections', async (t, relay) => {
  let mode: 'reset' | 'echo' = 'echo';
  const upstreamSockets: Socket[] = [];
  const up = await upstreamServer(t, (s) => {
    upstreamSockets.push(s);
    if (mode === 'reset') setTimeout(() => s.resetAndDestroy(), 20);
    else s.pipe(s);
  });
  const proxy = await startTestProxy(t, ALLOW_ANY, { address: '127.0.0.1', port: up.port }, { relay });
  const survivor = await dial(proxy.port);
  survivor.write('x');
  await once(survivor, 'data');

  mode = 'reset';
  const victim = await dial(proxy.port);
  victim.write('ping');
  const [err] = (await once(victim, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
  t.is(err.code, 'ECONNRESET');

  mode = 'echo';
  const resetter = await dial(proxy.port);
  resetter.write('hi');
  await once(resetter, 'data');
  const upSide = upstreamSockets.at(-1)!;
  const upErr = once(upSide, 'error');
  resetter.resetAndDestroy();
  const [e2] = (await upErr) as [NodeJS.ErrnoException];
  t.is(e2.code, 'ECONNRESET');

  survivor.write('still here');
  let echoed = '';
  survivor.on('data', (d: Buffer) => (echoed += d.toString()));
  t.true(await eventually(() => echoed === 'still here'));
  t.true(await eventually(() => proxy.accessLog.some((l) => / UC /.test(l)) && proxy.accessLog.some((l) => / DC /.test(l))));
  survivor.destroy();
});

relayTest('backpressure: a reader that stops reading stops the writer; nothing is lost when it resumes', async (t, relay) => {
  let upSocket: Socket | undefined;
  let receivedBytes = 0;
  const up = await upstreamServer(t, (s) => {
    upSocket = s;
    s.pause();
    s.on('data', (d: Buffer) => (receivedBytes += d.length));
  });
  const proxy = await startTestProxy(t, ALLOW_ANY, { address: '127.0.0.1', port: up.port }, { relay });
  const c = await dial(proxy.port);
  const chunk = Buffer.alloc(1 << 20, 7);
  let written = 0;
  // Write while the socket accepts; stop once it has not drained for 300 ms.
  for (;;) {
    while (c.write(chunk)) written += chunk.length;
    written += chunk.length;
    const drained = await Promise.race([once(c, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
    if (!drained || written > 1024 * chunk.length) break;
  }
  // Kernel socket buffers and stream high-water marks hold some MiB; unbounded buffering
  // would have taken the whole GiB.
  t.true(written < 96 * chunk.length, `writer got ${written / chunk.length} MiB in before stalling`);
  upSocket!.resume();
  c.end();
  t.true(await eventually(() => receivedBytes === written, 10_000), `${receivedBytes} of ${written}`);
});

relayTest('connection limit: beyond --max-connections new connections are reset, with one clear log line', async (t, relay) => {
  const up = await upstreamServer(t, (s) => s.pipe(s));
  const proxy = await startTestProxy(t, ALLOW_ANY, { address: '127.0.0.1', port: up.port }, { relay, maxConnections: 3 });
  const held = await Promise.all([dial(proxy.port), dial(proxy.port), dial(proxy.port)]);
  t.true(await eventually(() => proxy.server.openConnections === 3));
  // The reset may arrive before or after the handshake completes on our side.
  const refused = connect({ port: proxy.port, host: '127.0.0.1' });
  const [err] = (await once(refused, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
  t.is(err.code, 'ECONNRESET');
  t.true(proxy.logs.some((l) => l.includes('connection limit reached (--max-connections 3)')));
  held[0]!.destroy();
  t.true(await eventually(() => proxy.server.openConnections === 2));
  const again = await dial(proxy.port);
  again.write('ok');
  const [echo] = (await once(again, 'data')) as [Buffer];
  t.is(echo.toString(), 'ok');
  for (const s of [...held, again]) s.destroy();
});

relayTest('idle timeout closes a silent connection (flag SI); a refused upstream is reset (flag UF)', async (t, relay) => {
  const up = await upstreamServer(t, () => {});
  const proxy = await startTestProxy(t, ALLOW_ANY, { address: '127.0.0.1', port: up.port }, { relay, idleTimeoutMs: 150 });
  const c = await dial(proxy.port);
  c.write('x');
  await once(c, 'end');
  t.true(await eventually(() => proxy.accessLog.length === 1));
  t.is(parseLogLine(proxy.accessLog[0]!).flags, 'SI');

  // Nothing listens on the closed port: the upstream refuses, the client sees a reset.
  up.server.close();
  await new Promise((r) => setTimeout(r, 20));
  const c2 = await dial(proxy.port);
  c2.write('x');
  const [err] = (await once(c2, 'error')) as [NodeJS.ErrnoException];
  t.is(err.code, 'ECONNRESET');
  t.true(await eventually(() => proxy.accessLog.length === 2));
  const line = parseLogLine(proxy.accessLog[1]!);
  t.is(line.flags, 'UF');
  t.is(line.upstreamHost, `127.0.0.1:${up.port}`);
});

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

relayTest('no fd growth over thousands of connections (the 100k run is in bench/proxy.ts)', async (t, relay) => {
  const up = await upstreamServer(
    t,
    (s) => {
      s.resume();
      s.end('pong');
    },
    { allowHalfOpen: false },
  );
  const proxy = await startTestProxy(t, ALLOW_ANY, { address: '127.0.0.1', port: up.port }, { relay, accessLog: 'off' });
  const once1 = async () => {
    const c = await dial(proxy.port);
    c.end('ping');
    await readAll(c);
    c.destroy();
  };
  // Warm up (lazy allocations, and the splice relay's bounded pool of reusable pipes, which
  // fills to its cap under concurrency and then stays there).
  for (let i = 0; i < 50; i++) await once1();
  for (let i = 0; i < 4; i++) await Promise.all(Array.from({ length: 50 }, once1));
  await eventually(() => proxy.server.openConnections === 0);
  const before = openFds();
  const total = 3000;
  for (let i = 0; i < total; i += 50) await Promise.all(Array.from({ length: 50 }, once1));
  t.true(await eventually(() => proxy.server.openConnections === 0, 5000));
  const after = openFds();
  t.true(after - before <= 5, `fds before ${before}, after ${after} connections: ${after}`);
  // Serial: it counts this process's descriptors, which concurrent tests would change.
}, { serial: true });
