/**
 * `interpose cni install` / `uninstall` on private conf and bin dirs: the round trip leaves both
 * byte-identical (also when a .conf had to become a .conflist), install is idempotent, --watch
 * puts the entry back after another CNI rewrites the primary, and bad input changes nothing.
 */
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { install, uninstall, type InstallOptions } from '../../src/cni/install/installer.js';
import { CLI } from './helpers/cni-network.js';

const BRIDGE_CONFLIST = '{\n    "cniVersion": "1.0.0",\n    "name": "k8s-pod-network",\n    "plugins": [ {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "10.244.1.0/24"}},\n      {"type": "portmap", "capabilities": {"portMappings": true}} ]\n}\n';
const BRIDGE_CONF = '{"cniVersion":"0.4.0","name":"mynet","type":"bridge","bridge":"cni0","ipam":{"type":"host-local","subnet":"10.22.0.0/16"}}';

interface Node {
  dir: string;
  bin: string;
  conf: string;
  sa: string;
}

function node(t: ExecutionContext, conf: Record<string, string>): Node {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-cni-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const n = { dir, bin: join(dir, 'bin'), conf: join(dir, 'net.d'), sa: join(dir, 'sa') };
  for (const d of [n.bin, n.conf, n.sa]) mkdirSync(d);
  writeFileSync(join(n.bin, 'bridge'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  for (const [name, text] of Object.entries(conf)) writeFileSync(join(n.conf, name), text, { mode: 0o644 });
  writeFileSync(join(n.sa, 'token'), 'token-1\n');
  writeFileSync(join(n.sa, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  writeFileSync(join(n.sa, 'namespace'), 'interpose-system');
  return n;
}

function options(n: Node, log: string[] = []): InstallOptions {
  return {
    binDir: n.bin,
    confDir: n.conf,
    serviceAccountDir: n.sa,
    logFile: '/var/log/interpose-cni.log',
    logLevel: 'info',
    excludeNamespaces: ['kube-system'],
    nativeNftables: false,
    env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
    log: (m) => log.push(m),
  };
}

/** Every file under `dir`: relative path → mode and bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p, `${rel}${name}/`);
      else out[`${rel}${name}`] = `${(st.mode & 0o7777).toString(8)} ${readFileSync(p).toString('base64')}`;
    }
  };
  walk(dir, '');
  return out;
}

const plugins = (file: string) => (JSON.parse(readFileSync(file, 'utf8')) as { plugins: Array<{ type: string }> }).plugins;

test('install appends interpose-cni to the lexically first conflist; uninstall leaves both dirs byte-identical', async (t) => {
  const n = node(t, { '10-bridge.conflist': BRIDGE_CONFLIST, '99-loopback.conf': '{"cniVersion":"0.4.0","name":"lo","type":"loopback"}' });
  const conf0 = snapshot(n.conf);
  const bin0 = snapshot(n.bin);
  await install(options(n));

  const list = JSON.parse(readFileSync(join(n.conf, '10-bridge.conflist'), 'utf8')) as { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> };
  t.is(list.cniVersion, '1.0.0');
  t.is(list.name, 'k8s-pod-network');
  t.deepEqual(list.plugins.map((p) => p.type), ['bridge', 'portmap', 'interpose-cni']);
  t.is(list.plugins[2]!.kubeconfig, join(n.conf, 'interpose-cni.kubeconfig'));
  t.is(readFileSync(join(n.conf, '99-loopback.conf'), 'utf8'), '{"cniVersion":"0.4.0","name":"lo","type":"loopback"}', 'only the primary is touched');
  const kubeconfig = JSON.parse(readFileSync(join(n.conf, 'interpose-cni.kubeconfig'), 'utf8')) as { clusters: Array<{ cluster: Record<string, string> }>; users: Array<{ user: { token: string } }> };
  t.is(kubeconfig.clusters[0]!.cluster.server, 'https://10.96.0.1:443');
  t.is(kubeconfig.users[0]!.user.token, 'token-1');
  t.is(statSync(join(n.conf, 'interpose-cni.kubeconfig')).mode & 0o777, 0o600);

  // interpose-cni is the native shim (an ELF executable) forwarding to the default socket; with
  // nothing there it runs the installed Node plugin (not this checkout's) from the bin dir.
  t.true(existsSync(join(n.bin, 'interpose-cni.d', 'dist', 'interpose-cni.js')));
  t.is(readFileSync(join(n.bin, 'interpose-cni')).subarray(0, 4).toString('latin1'), '\x7fELF');
  t.is(readFileSync(join(n.bin, 'interpose-cni.d', 'daemon-socket'), 'utf8'), '/var/run/interpose/cni.sock\n');
  t.regex(readFileSync(join(n.bin, 'interpose-cni.d', 'interpose-cni-node'), 'utf8'), /^#!\/bin\/sh\n[^]*exec node '[^']*interpose-cni\.d\/dist\/interpose-cni\.js' "\$@"\n$/);
  const version = await execa(join(n.bin, 'interpose-cni'), [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', reject: false });
  t.is(version.exitCode, 0, String(version.stderr));
  t.deepEqual(JSON.parse(String(version.stdout)).supportedVersions, ['0.4.0', '1.0.0', '1.1.0']);

  uninstall({ binDir: n.bin, confDir: n.conf, log: () => undefined });
  t.deepEqual(snapshot(n.conf), conf0);
  t.deepEqual(snapshot(n.bin), bin0);
});

test('a .conf primary becomes a .conflist holding it first; uninstall brings back the .conf byte for byte', async (t) => {
  const n = node(t, { '05-mynet.conf': BRIDGE_CONF });
  chmodSync(join(n.conf, '05-mynet.conf'), 0o640);
  const conf0 = snapshot(n.conf);
  await install(options(n));
  t.false(existsSync(join(n.conf, '05-mynet.conf')));
  const list = JSON.parse(readFileSync(join(n.conf, '05-mynet.conflist'), 'utf8')) as { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> };
  t.is(list.cniVersion, '0.4.0');
  t.is(list.name, 'mynet');
  t.deepEqual(list.plugins[0], JSON.parse(BRIDGE_CONF));
  t.is(list.plugins[1]!.type, 'interpose-cni');
  uninstall({ binDir: n.bin, confDir: n.conf, log: () => undefined });
  t.deepEqual(snapshot(n.conf), conf0);
});

test('install is idempotent: a second run rewrites nothing', async (t) => {
  const n = node(t, { '10-bridge.conflist': BRIDGE_CONFLIST });
  const conf0 = snapshot(n.conf);
  await install(options(n));
  const once = snapshot(n.conf);
  const mtime = statSync(join(n.conf, '10-bridge.conflist')).mtimeMs;
  const log: string[] = [];
  await install(options(n, log));
  t.deepEqual(snapshot(n.conf), once);
  t.is(statSync(join(n.conf, '10-bridge.conflist')).mtimeMs, mtime, 'not even rewritten with the same bytes');
  t.true(log.some((l) => l.includes('already ends with interpose-cni')), log.join('\n'));
  t.is(plugins(join(n.conf, '10-bridge.conflist')).filter((p) => p.type === 'interpose-cni').length, 1);
  uninstall({ binDir: n.bin, confDir: n.conf, log: () => undefined });
  t.deepEqual(snapshot(n.conf), conf0);
});

test('--watch re-inserts interpose-cni after another CNI rewrites the primary; uninstall then restores that rewrite', async (t) => {
  const n = node(t, { '10-bridge.conflist': BRIDGE_CONFLIST });
  const { log, stop } = await watch(t, n, { debounceMs: 50, maxReinsertsPerMinute: 30 });
  const primary = join(n.conf, '10-bridge.conflist');
  t.deepEqual(plugins(primary).map((p) => p.type), ['bridge', 'portmap', 'interpose-cni']);

  // "Another CNI" (as calico or cilium agents do on restart) writes a new primary by rename.
  const rewritten = BRIDGE_CONFLIST.replace('10.244.1.0/24', '10.244.7.0/24');
  writeFileSync(join(n.conf, '.calico.tmp'), rewritten);
  renameSync(join(n.conf, '.calico.tmp'), primary);
  await until(() => plugins(primary).at(-1)?.type === 'interpose-cni');
  t.true(readFileSync(primary, 'utf8').includes('10.244.7.0/24'), 'the other CNI\'s change is kept');
  // And again with an in-place write.
  writeFileSync(primary, rewritten.replace('10.244.7.0/24', '10.244.8.0/24'));
  await until(() => plugins(primary).at(-1)?.type === 'interpose-cni' && readFileSync(primary, 'utf8').includes('10.244.8.0/24'));
  t.true(log.filter((l) => l.includes('was rewritten')).length >= 2, log.join('\n'));

  await stop();
  t.is(readFileSync(primary, 'utf8'), rewritten.replace('10.244.7.0/24', '10.244.8.0/24'), 'the latest original, byte for byte');
  t.deepEqual(readdirSync(n.conf), ['10-bridge.conflist']);
});

test('--watch on a node whose CNI has not written its configuration yet waits for it', async (t) => {
  const n = node(t, {});
  const { log, stop } = await watch(t, n, { debounceMs: 20, maxReinsertsPerMinute: 30 });
  t.true(log.some((l) => l.includes('no network configuration')), log.join('\n'));
  writeFileSync(join(n.conf, '10-bridge.conflist'), BRIDGE_CONFLIST);
  await until(() => plugins(join(n.conf, '10-bridge.conflist')).at(-1)?.type === 'interpose-cni');
  await stop();
  t.is(readFileSync(join(n.conf, '10-bridge.conflist'), 'utf8'), BRIDGE_CONFLIST);
});

test('--watch follows the primary to a new file that sorts first; the old one gets its original back', async (t) => {
  const n = node(t, { '10-bridge.conflist': BRIDGE_CONFLIST });
  const { stop } = await watch(t, n, { debounceMs: 20, maxReinsertsPerMinute: 30 });
  const cilium = '{"cniVersion":"0.3.1","name":"cilium","plugins":[{"type":"cilium-cni"}]}\n';
  writeFileSync(join(n.conf, '05-cilium.conflist'), cilium);
  await until(() => plugins(join(n.conf, '05-cilium.conflist')).at(-1)?.type === 'interpose-cni');
  t.is(readFileSync(join(n.conf, '10-bridge.conflist'), 'utf8'), BRIDGE_CONFLIST, 'the old primary is as it was');
  await stop();
  t.is(readFileSync(join(n.conf, '05-cilium.conflist'), 'utf8'), cilium);
  t.deepEqual(readdirSync(n.conf).sort(), ['05-cilium.conflist', '10-bridge.conflist']);
});

test('--watch is bounded: an agent that keeps removing the entry stops the watch with an error naming the file', async (t) => {
  const n = node(t, { '10-bridge.conflist': BRIDGE_CONFLIST });
  const { watching } = await watch(t, n, { debounceMs: 20, maxReinsertsPerMinute: 2 });
  const primary = join(n.conf, '10-bridge.conflist');
  let stopped: unknown;
  watching.catch((err) => (stopped = err));
  for (let i = 0; i < 10 && stopped === undefined; i++) {
    await until(() => stopped !== undefined || plugins(primary).at(-1)?.type === 'interpose-cni');
    writeFileSync(primary, BRIDGE_CONFLIST);
    await new Promise((r) => setTimeout(r, 100));
  }
  await until(() => stopped !== undefined);
  t.regex((stopped as Error).message, /10-bridge\.conflist in .* was rewritten without interpose-cni 3 times in a minute/);
});

test('bad input: missing conf dir, unparseable primary, no service account — a clear error and no change', async (t) => {
  const n = node(t, { '10-bridge.conflist': '{"cniVersion": "1.0.0", "plugins": [ {"type": "bridge"}, ' });
  const conf0 = snapshot(n.conf);
  const bin0 = snapshot(n.bin);
  const env = { ...process.env, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  const run = (...args: string[]) => execa('node', [CLI, 'cni', 'install', '--cni-bin-dir', n.bin, '--service-account-dir', n.sa, ...args], { reject: false, env });

  const broken = await run('--cni-conf-dir', n.conf);
  t.is(broken.exitCode, 1);
  t.regex(String(broken.stderr), /cannot parse the CNI network configuration .*10-bridge\.conflist/);
  t.notRegex(String(broken.stderr), /\n\s+at /, 'no stack trace');

  const missing = await run('--cni-conf-dir', join(n.dir, 'nope'));
  t.is(missing.exitCode, 1);
  t.regex(String(missing.stderr), /--cni-conf-dir .*nope is not a directory/);

  writeFileSync(join(n.conf, '10-bridge.conflist'), BRIDGE_CONFLIST);
  const conf1 = snapshot(n.conf);
  const noSa = await execa('node', [CLI, 'cni', 'install', '--cni-bin-dir', n.bin, '--cni-conf-dir', n.conf, '--service-account-dir', join(n.dir, 'nosa')], { reject: false, env });
  t.is(noSa.exitCode, 1);
  t.regex(String(noSa.stderr), /nosa\/token \(--service-account-dir\)/);
  const badLevel = await run('--cni-conf-dir', n.conf, '--log-level', 'loud');
  t.is(badLevel.exitCode, 1);
  t.regex(String(badLevel.stderr), /--log-level: "loud"/);
  const badSocket = await run('--cni-conf-dir', n.conf, '--socket', 'run/cni.sock');
  t.is(badSocket.exitCode, 1);
  t.regex(String(badSocket.stderr), /--socket: "run\/cni\.sock".*absolute path of at most 107 bytes/);
  t.notRegex(String(badSocket.stderr), /\n\s+at /, 'no stack trace');

  t.deepEqual(snapshot(n.bin), bin0, 'nothing copied');
  t.deepEqual(snapshot(n.conf), conf1);
  t.not(conf0['10-bridge.conflist'], conf1['10-bridge.conflist']);
});

test('an oversized primary (2 MiB of valid JSON) is refused naming the file and the limit; nothing is read whole or changed', async (t) => {
  // Valid JSON, so only the size limit can refuse it: padding inside the plugin list.
  const huge = BRIDGE_CONFLIST.replace('"plugins": [', `"plugins": [${' '.repeat(2 << 20)}`);
  const n = node(t, { '10-bridge.conflist': huge });
  const conf0 = snapshot(n.conf);
  const bin0 = snapshot(n.bin);
  const env = { ...process.env, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  const r = await execa('node', [CLI, 'cni', 'install', '--cni-bin-dir', n.bin, '--cni-conf-dir', n.conf, '--service-account-dir', n.sa], { reject: false, env });
  t.is(r.exitCode, 1);
  t.regex(String(r.stderr), /cannot read .*10-bridge\.conflist: larger than 1 MiB/);
  t.true(String(r.stderr).length < 1000, 'the message does not carry the file');
  t.notRegex(String(r.stderr), /\n\s+at /, 'no stack trace');
  t.deepEqual(snapshot(n.conf), conf0);
  t.deepEqual(snapshot(n.bin), bin0);
});

test('the CLI round trip: install, install again (also with --copy-node), uninstall leaves the conf dir byte-identical', async (t) => {
  const n = node(t, { '05-mynet.conf': BRIDGE_CONF, '10-bridge.conflist': BRIDGE_CONFLIST });
  const conf0 = snapshot(n.conf);
  const bin0 = snapshot(n.bin);
  const env = { ...process.env, KUBERNETES_SERVICE_HOST: '10.96.0.1' };
  const dirs = ['--cni-bin-dir', n.bin, '--cni-conf-dir', n.conf];
  for (let i = 0; i < 2; i++) {
    const r = await execa('node', [CLI, 'cni', 'install', ...dirs, '--service-account-dir', n.sa], { reject: false, env });
    t.is(r.exitCode, 0, String(r.stderr));
  }
  t.deepEqual(plugins(join(n.conf, '05-mynet.conflist')).map((p) => p.type), ['bridge', 'interpose-cni']);
  // --copy-node: the launcher runs its own node, so a host without Node.js (no node in PATH) runs the plugin.
  const copied = await execa('node', [CLI, 'cni', 'install', ...dirs, '--service-account-dir', n.sa, '--copy-node'], { reject: false, env });
  t.is(copied.exitCode, 0, String(copied.stderr));
  t.regex(readFileSync(join(n.bin, 'interpose-cni.d', 'interpose-cni-node'), 'utf8'), /exec '[^']*interpose-cni\.d\/node' /);
  const version = await execa(join(n.bin, 'interpose-cni'), [], { env: { CNI_COMMAND: 'VERSION', PATH: '/nonexistent' }, extendEnv: false, input: '{}', reject: false });
  t.is(version.exitCode, 0, String(version.stderr));
  t.regex(String(version.stdout), /supportedVersions/);
  const u = await execa('node', [CLI, 'cni', 'uninstall', ...dirs], { reject: false });
  t.is(u.exitCode, 0, String(u.stderr));
  t.deepEqual(snapshot(n.conf), conf0);
  t.deepEqual(snapshot(n.bin), bin0);
});

/**
 * Starts `install --watch` on `n` and waits until it watches. `stop()` ends the watch and
 * uninstalls, as the DaemonSet's pod does when it is deleted.
 */
async function watch(t: ExecutionContext, n: Node, limits: { debounceMs: number; maxReinsertsPerMinute: number }) {
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const log: string[] = [];
  const watching = install(options(n, log), { ...limits, recheckMs: 60_000, signal: controller.signal });
  await until(() => log.some((l) => l.startsWith('watching')));
  const stop = async () => {
    controller.abort();
    await watching;
    uninstall({ binDir: n.bin, confDir: n.conf, log: () => undefined });
  };
  return { log, watching, stop };
}

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
