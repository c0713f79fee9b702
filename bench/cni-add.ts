/**
 * bench/cni-add: what every pod creation waits for in CNI mode. interpose-cni's ADD as a node
 * runs it — the native shim forwarding to the running daemon (`interpose cni install --watch`),
 * which reads the pod from a stand-in API server over TLS and installs Istio's default rules in
 * the pod's namespace — against the reference `bridge` plugin's ADD (veth pair, bridge,
 * host-local IPAM), measured in the same rounds, alternating. Also timed in each round:
 *
 *   - the shim with no daemon (its fallback: the Node plugin, a Node.js start-up per call),
 *   - through the daemon, a pod in an excluded namespace (no API call, no rules: the floor of
 *     shim + socket + daemon) and a pod without the injector's annotation (API read, no rules),
 *     so what the rules themselves cost is the difference,
 *   - `node -e 0`, the start-up every Node.js plugin pays before its first line runs.
 *
 *   npm run bench:cni [-- --runs 10] [--native-nftables]
 *
 * Target: interpose-cni's ADD through the daemon within 2× of bridge's. Needs root,
 * containernetworking-plugins, a built shim (npm run build:native) and dist/ (npm run build:ts).
 */
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { installPluginFiles } from '../src/cni/install/plugin-files.js';
import { nativeExecutablePath } from '../src/native-loader.js';
import { CniDaemon } from '../test/cni/helpers/cni-daemon.js';
import { CniRuntime, type Conflist } from '../test/cni/helpers/cni-runtime.js';
import { INJECTED, KubeStandIn, writeKubeconfig } from '../test/cni/helpers/kube-stand-in.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 10;
/** --native-nftables: the plugin entry's native_nftables (rules committed over netlink, no iptables-restore). */
const NATIVE = process.argv.includes('--native-nftables');
const ROOT = join(import.meta.dirname, '..');
const PLUGIN = join(ROOT, 'dist', 'interpose-cni.js');

if (process.getuid?.() !== 0) {
  console.error('bench:cni needs root (it creates network namespaces and a bridge)');
  process.exit(1);
}
if (!existsSync('/usr/lib/cni/bridge') || !existsSync(PLUGIN) || !nativeExecutablePath('interpose-cni-shim')) {
  console.error('bench:cni needs /usr/lib/cni/bridge (containernetworking-plugins), dist/interpose-cni.js (npm run build:ts) and the shim (npm run build:native)');
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'interpose-cni-bench-'));
const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', INTERPOSE_CNI_STATE_DIR: join(dir, 'state'), INTERPOSE_STATE_DIR: join(dir, 'own') };
// Two bin dirs: one whose shim the daemon serves, one whose shim finds no socket (the fallback).
const binDaemon = join(dir, 'bin-daemon');
const binFallback = join(dir, 'bin-fallback');
for (const d of [binDaemon, binFallback, join(dir, 'ipam'), join(dir, 'state'), join(dir, 'own')]) mkdirSync(d);
for (const b of [binDaemon, binFallback]) for (const p of ['bridge', 'host-local']) symlinkSync(`/usr/lib/cni/${p}`, join(b, p));
installPluginFiles({ binDir: binFallback, socket: join(dir, 'no-daemon', 'cni.sock') });
const daemon = await CniDaemon.start({ dir, binDir: binDaemon, env });
const api = await KubeStandIn.start();
api.addPod('bench', 'web', { annotations: INJECTED });
api.addPod('bench', 'plain', {});
const bridge = `icnb${randomBytes(3).toString('hex')}`;
const conflist: Conflist = {
  cniVersion: '1.0.0',
  name: 'interpose-bench',
  plugins: [
    { type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '100.64.250.0/24' }]], dataDir: join(dir, 'ipam') } },
    { type: 'interpose-cni', kubeconfig: writeKubeconfig(dir, api.url, api.certificate), exclude_namespaces: ['kube-system'], native_nftables: NATIVE, ...(process.env.BENCH_CNI_LOG ? { log_file: process.env.BENCH_CNI_LOG, plugin_log_level: 'debug' } : {}) },
  ],
};
const viaDaemon = new CniRuntime(conflist, binDaemon, env);
const viaFallback = new CniRuntime(conflist, binFallback, env);
const [bridgePlugin, interposePlugin] = conflist.plugins as [never, never];
const pod = (namespace: string, name: string) => `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`;

const times = { bridge: [] as number[], daemon: [] as number[], fallback: [] as number[], excluded: [] as number[], plain: [] as number[], node: [] as number[] };
const load: number[] = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const ns = `icnb-${randomBytes(4).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
    const a = { containerId: randomBytes(16).toString('hex'), netns: `/run/netns/${ns}`, ifname: 'eth0', args: pod('bench', 'web') };
    const timed = async (key: keyof typeof times, job: () => Promise<{ exitCode: number; stdout: string }>) => {
      const t0 = performance.now();
      const r = await job();
      times[key].push(performance.now() - t0);
      if (r.exitCode !== 0) throw new Error(`${key} ADD failed: ${r.stdout}`);
      return r;
    };
    try {
      load.push(loadavg()[0]!);
      const b = await timed('bridge', () => viaDaemon.execPlugin('ADD', bridgePlugin, a, undefined));
      const prev = (b as { output?: unknown }).output;
      await timed('daemon', () => viaDaemon.execPlugin('ADD', interposePlugin, a, prev));
      await viaDaemon.execPlugin('DEL', interposePlugin, a, prev);
      await timed('fallback', () => viaFallback.execPlugin('ADD', interposePlugin, a, prev));
      await viaFallback.execPlugin('DEL', interposePlugin, a, prev);
      await timed('excluded', () => viaDaemon.execPlugin('ADD', interposePlugin, { ...a, args: pod('kube-system', 'coredns') }, prev));
      await timed('plain', () => viaDaemon.execPlugin('ADD', interposePlugin, { ...a, args: pod('bench', 'plain') }, prev));
      await timed('node', async () => ({ exitCode: (await execa(process.execPath, ['-e', '0'])).exitCode ?? 1, stdout: '' }));
      await viaDaemon.execPlugin('DEL', bridgePlugin, a, prev);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  }
} finally {
  execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
  await api.close();
  await daemon.stop();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const line = (label: string, xs: number[]) => console.log(`${label.padEnd(58)} median ${median(xs).toFixed(1).padStart(6)} ms  (min ${Math.min(...xs).toFixed(1)})`);
const mb = median(times.bridge);
console.log(
  `runs: ${RUNS}, rules: ${NATIVE ? 'native nftables (netlink)' : 'iptables'}, 1-min load average during the rounds: ` +
    `${Math.min(...load).toFixed(2)}–${Math.max(...load).toFixed(2)} (now ${loadavg().map((l) => l.toFixed(2)).join(' ')}, ${availableParallelism()} CPUs)`,
);
line('bridge ADD', times.bridge);
line('interpose-cni ADD, shim → daemon (production)', times.daemon);
line('interpose-cni ADD, shim → Node plugin (no daemon)', times.fallback);
line('  shim → daemon, excluded namespace (no API, no rules)', times.excluded);
line('  shim → daemon, pod not injected (API read, no rules)', times.plain);
line('node -e 0 (the floor of a Node.js plugin)', times.node);
console.log(`ratio shim → daemon / bridge: ${(median(times.daemon) / mb).toFixed(2)}× (target ≤ 2×)`);
console.log(`ratio shim → Node plugin / bridge: ${(median(times.fallback) / mb).toFixed(2)}×`);
console.log(`the rules (ADD − not-injected ADD, medians): ${(median(times.daemon) - median(times.plain)).toFixed(1)} ms`);

