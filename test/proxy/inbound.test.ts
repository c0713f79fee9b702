/**
 * Inbound capture (istio-iptables -b): connections from the world to the pod's workload port
 * are redirected to 15006 and passed through to the workload from 127.0.0.6, as Envoy's
 * inbound passthrough does — with REDIRECT (original destination from conntrack) and with
 * TPROXY (an IP_TRANSPARENT listener; the local address is the original destination).
 * Also: the proxy process drains and exits 0 on SIGTERM, and writes JSON access logs.
 */
import { writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import { LINK } from '../../src/lab/world/addresses.js';
import { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { installIstioRules } from './helpers/rules.js';
import { parseLogLine } from './helpers/access-log-line.js';
import type { ExecutionContext } from 'ava';

const WORKLOAD_PORT = 8080;

async function setUp(t: ExecutionContext, mode: 'REDIRECT' | 'TPROXY', extraProxyArgs: string[] = []) {
  const world = await World.create({ prefix: 'inb' });
  t.teardown(() => world.destroy());
  // The workload: answers with the address it sees the connection coming from.
  const workload = execa(
    'ip',
    ['netns', 'exec', world.pod.name, process.execPath, '-e',
      `require('http').createServer((q, s) => s.end('from ' + q.socket.remoteAddress.replace(/^::ffff:/, ''))).listen(${WORKLOAD_PORT}, () => console.log('ready'))`],
    { reject: false, buffer: false },
  );
  t.teardown(() => {
    workload.kill('SIGKILL');
  });
  await new Promise<void>((resolve) => workload.stdout?.once('data', () => resolve()));
  await installIstioRules(world.pod.name, ['-i', '*', '-b', '*', '-m', mode]);
  const config = `${world.dir}/mesh.yaml`;
  writeFileSync(config, 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n');
  const proxy = await ProxyProcess.start(world.pod.name, [
    '--config', config, '--uid', '1337', '--gid', '1337', '-m', mode, '--metrics-port', '0', ...extraProxyArgs,
  ]);
  t.teardown(() => proxy.stop());
  return { world, proxy };
}

async function callWorkload(world: World) {
  const r = await world.inWorld(['curl', '-sS', '-m', '5', `http://${LINK.pod.v4}:${WORKLOAD_PORT}/`], { reject: false });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

kernelTest('inbound REDIRECT: passed through to the workload from 127.0.0.6; SIGTERM drains and exits 0', async (t) => {
  const { world, proxy } = await setUp(t, 'REDIRECT');
  const r = await callWorkload(world);
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, 'from 127.0.0.6');
  const line = parseLogLine(await proxy.nextAccessLog(/InboundPassthroughClusterIpv4/, 0));
  t.is(line.downstreamLocal, `${LINK.pod.v4}:${WORKLOAD_PORT}`);
  t.true(line.downstreamRemote.startsWith(`${LINK.world.v4}:`));
  t.is(line.upstreamHost, `${LINK.pod.v4}:${WORKLOAD_PORT}`);
  t.true(line.upstreamLocal.startsWith('127.0.0.6:'));
  t.true(line.bytesReceived > 0 && line.bytesSent > 0);
  t.is(await proxy.stop(), 0);
  t.true(proxy.logs.some((l) => l.includes('SIGTERM: draining')));
});

kernelTest('inbound TPROXY: the transparent listener passes through from 127.0.0.6; JSON access log', async (t) => {
  const { world, proxy } = await setUp(t, 'TPROXY', ['--access-log-encoding', 'JSON']);
  const r = await callWorkload(world);
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, 'from 127.0.0.6');
  await proxy.waitFor(() => proxy.accessLog.length > 0, 5000);
  const entry = JSON.parse(proxy.accessLog[0]!) as Record<string, unknown>;
  t.like(entry, {
    upstream_cluster: 'InboundPassthroughClusterIpv4',
    response_code: 0,
    method: null,
    downstream_local_address: `${LINK.pod.v4}:${WORKLOAD_PORT}`,
    upstream_host: `${LINK.pod.v4}:${WORKLOAD_PORT}`,
  });
  t.regex(String(entry['upstream_local_address']), /^127\.0\.0\.6:/);
});
