/**
 * The splice relay's own outbound listener, as `interpose proxy` runs it for real: redirected
 * connections accepted on the relay thread, passed through without becoming Node sockets.
 * The promises the in-process relay tests check with a test-supplied destination, here with
 * the kernel's: the log line's addresses, a refused upstream (UF, client reset), the idle
 * timeout (SI), the connection limit (RST and one log line), and SIGTERM draining.
 */
import { writeFileSync } from 'node:fs';
import type { ExecutionContext } from 'ava';
import { kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import { HTTPBIN, LINK, NOWHERE } from '../../src/lab/world/addresses.js';
import { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { installIstioRules } from './helpers/rules.js';
import { parseLogLine } from './helpers/access-log-line.js';
import * as seed from '../../src/lab/seed-resources.js';

async function setUp(t: ExecutionContext, prefix: string, flags: string[]) {
  const world = await World.create({ prefix });
  t.teardown(() => world.destroy());
  await installIstioRules(world.pod.name, ['-i', '*']);
  const config = `${world.dir}/mesh.yaml`;
  writeFileSync(config, seed.meshMode('ALLOW_ANY'));
  const proxy = await ProxyProcess.start(world.pod.name, ['--config', config, '--uid', '1337', '--gid', '1337', '--metrics-port', '0', ...flags]);
  t.teardown(() => proxy.stop());
  return { world, proxy };
}

/** A raw TCP client in the pod: connects, writes `send`, reports how the connection ended. */
function tcpClient(target: string, port: number, send: string, holdMs = 0): string {
  return `
const s = require('node:net').connect({ host: ${JSON.stringify(target)}, port: ${port}, allowHalfOpen: true });
const t0 = Date.now(); let got = '';
s.on('connect', () => { if (${JSON.stringify(send)}) s.write(${JSON.stringify(send)}); if (${holdMs} > 0) setTimeout(() => s.end(), ${holdMs}); });
s.on('data', (d) => (got += d));
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code, ms: Date.now() - t0 })); process.exit(0); });
s.on('end', () => { console.log(JSON.stringify({ end: true, got, ms: Date.now() - t0 })); s.end(); process.exit(0); });`;
}

kernelTest('relay listener: passthrough log line, refused upstream (UF, reset) and idle timeout (SI)', async (t) => {
  const { world, proxy } = await setUp(t, 'rl', ['--idle-timeout', '400ms']);

  const ok = await world.inPod(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', `http://${HTTPBIN.address}/status/418`], { reject: false });
  t.is(String(ok.stdout), '418');
  const pass = parseLogLine(await proxy.nextAccessLog(/PassthroughCluster/, 0));
  t.is(pass.flags, '-');
  t.is(pass.upstreamHost, `${HTTPBIN.address}:80`);
  t.is(pass.downstreamLocal, `${HTTPBIN.address}:80`);
  t.true(pass.downstreamRemote.startsWith(`${LINK.pod.v4}:`));
  t.regex(pass.upstreamLocal, new RegExp(`^${LINK.pod.v4.replace(/\./g, '\\.')}:\\d+$`));
  t.true(pass.bytesReceived > 0 && pass.bytesSent > 0);

  // Nothing listens at NOWHERE: the relay's upstream connect is refused, the client is reset.
  let mark = proxy.accessLog.length;
  const refused = JSON.parse(String((await world.inPod(['node', '-e', tcpClient(NOWHERE.address, 9, 'hello')])).stdout));
  t.is(refused.error, 'ECONNRESET');
  const uf = parseLogLine(await proxy.nextAccessLog(/PassthroughCluster/, mark));
  t.is(uf.flags, 'UF');
  t.is(uf.upstreamHost, `${NOWHERE.address}:9`);

  // A connection that says nothing is closed after --idle-timeout.
  mark = proxy.accessLog.length;
  const idle = JSON.parse(String((await world.inPod(['node', '-e', tcpClient(HTTPBIN.address, 80, '')])).stdout));
  t.true(idle.end, JSON.stringify(idle));
  t.true(idle.ms >= 350, `closed after ${idle.ms} ms`);
  t.is(parseLogLine(await proxy.nextAccessLog(/PassthroughCluster/, mark)).flags, 'SI');
});

kernelTest('relay listener: --max-connections resets the excess with one log line; SIGTERM drains open connections', async (t) => {
  const { world, proxy } = await setUp(t, 'rm', ['--max-connections', '2', '--drain-timeout', '10s']);
  // Two slow requests hold both slots (httpbin's /delay/2 answers after 2 s).
  const slow = [1, 2].map(() =>
    world.inPod(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-m', '10', `http://${HTTPBIN.address}/delay/2`], { reject: false }),
  );
  // Give both curls time to connect and take the two slots.
  await new Promise((r) => setTimeout(r, 500));
  const third = JSON.parse(String((await world.inPod(['node', '-e', tcpClient(HTTPBIN.address, 80, 'GET / HTTP/1.0\r\n\r\n')])).stdout));
  t.is(third.error, 'ECONNRESET', JSON.stringify(third));
  const logged = await proxy
    .waitFor(() => proxy.logs.some((l) => l.includes('connection limit reached (--max-connections 2)')), 2000)
    .then(() => true, () => false);
  t.true(logged, 'the limit is logged');

  // SIGTERM while both are still open: they finish, then the proxy exits 0.
  proxy.signal('SIGTERM');
  const codes = await Promise.all(slow.map(async (p) => String((await p).stdout)));
  t.deepEqual(codes, ['200', '200']);
  // Let it exit by itself (stop() would signal again).
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => proxy.exited && (clearInterval(poll), resolve()), 50);
    setTimeout(() => (clearInterval(poll), resolve()), 10_000);
  });
  t.true(proxy.exited, 'the proxy exits once the open connections have finished');
  t.is(await proxy.stop(), 0);
  t.true(proxy.logs.some((l) => l.includes('"remaining":0')), proxy.logs.slice(-3).join('\n'));
});
