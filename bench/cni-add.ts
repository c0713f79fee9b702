/**
 * bench/cni-add: what every pod creation waits for in CNI mode. interpose-cni's ADD (Node
 * start-up, reading the pod from a stand-in API server over TLS, installing Istio's default
 * rules in the pod's namespace) against the reference `bridge` plugin's ADD (creating the veth
 * pair and bridge, host-local IPAM), measured in the same run, alternating.
 *
 *   npm run bench:cni [-- --runs 10] [--native-nftables]
 *
 * Each round makes a fresh namespace; bridge's ADD is timed, then interpose-cni's ADD with
 * bridge's result as prevResult, then the chain is DELeted and the namespace removed (untimed).
 * Also timed: `node -e 0`, the start-up every Node.js plugin pays before its first line runs.
 * Target: interpose-cni's ADD within 2× of bridge's. Needs root and containernetworking-plugins.
 */
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CniRuntime } from '../test/cni/helpers/cni-runtime.js';
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
if (!existsSync('/usr/lib/cni/bridge') || !existsSync(PLUGIN)) {
  console.error('bench:cni needs /usr/lib/cni/bridge (containernetworking-plugins) and dist/interpose-cni.js (npm run build:ts)');
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'interpose-cni-bench-'));
const bin = join(dir, 'bin');
execFileSync('mkdir', ['-p', bin, join(dir, 'ipam'), join(dir, 'state'), join(dir, 'own')]);
for (const p of ['bridge', 'host-local']) symlinkSync(`/usr/lib/cni/${p}`, join(bin, p));
symlinkSync(PLUGIN, join(bin, 'interpose-cni'));
const api = await KubeStandIn.start();
api.addPod('bench', 'web', { annotations: INJECTED });
const bridge = `icnb${randomBytes(3).toString('hex')}`;
const runtime = new CniRuntime(
  {
    cniVersion: '1.0.0',
    name: 'interpose-bench',
    plugins: [
      { type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '100.64.250.0/24' }]], dataDir: join(dir, 'ipam') } },
      { type: 'interpose-cni', kubeconfig: writeKubeconfig(dir, api.url, api.certificate), exclude_namespaces: ['kube-system'], native_nftables: NATIVE, ...(process.env.BENCH_CNI_LOG ? { log_file: process.env.BENCH_CNI_LOG, plugin_log_level: 'debug' } : {}) },
    ],
  },
  bin,
  { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', INTERPOSE_CNI_STATE_DIR: join(dir, 'state'), INTERPOSE_STATE_DIR: join(dir, 'own') },
);
const [bridgePlugin, interposePlugin] = runtime.conflist.plugins as [never, never];

const times = { bridge: [] as number[], interpose: [] as number[], node: [] as number[] };
try {
  for (let i = 0; i < RUNS; i++) {
    const ns = `icnb-${randomBytes(4).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
    const a = { containerId: randomBytes(16).toString('hex'), netns: `/run/netns/${ns}`, ifname: 'eth0', args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=web' };
    try {
      let t0 = performance.now();
      const b = await runtime.execPlugin('ADD', bridgePlugin, a, undefined);
      times.bridge.push(performance.now() - t0);
      if (b.exitCode !== 0) throw new Error(`bridge ADD failed: ${b.stdout}`);
      t0 = performance.now();
      const r = await runtime.execPlugin('ADD', interposePlugin, a, b.output);
      times.interpose.push(performance.now() - t0);
      if (r.exitCode !== 0) throw new Error(`interpose-cni ADD failed: ${r.stdout}`);
      // The floor of any plugin written for Node.js: starting node and exiting.
      t0 = performance.now();
      await execa(process.execPath, ['-e', '0']);
      times.node.push(performance.now() - t0);
      await runtime.execPlugin('DEL', interposePlugin, a, b.output);
      await runtime.execPlugin('DEL', bridgePlugin, a, b.output);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  }
} finally {
  execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
  await api.close();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const mb = median(times.bridge);
const mi = median(times.interpose);
console.log(`runs: ${RUNS}, rules: ${NATIVE ? 'native nftables (netlink)' : 'iptables'}, load average: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`bridge ADD         median ${mb.toFixed(1)} ms  (min ${Math.min(...times.bridge).toFixed(1)})`);
console.log(`interpose-cni ADD  median ${mi.toFixed(1)} ms  (min ${Math.min(...times.interpose).toFixed(1)})`);
console.log(`node -e 0 (floor)    median ${median(times.node).toFixed(1)} ms  (min ${Math.min(...times.node).toFixed(1)})`);
console.log(`ratio interpose-cni / bridge: ${(mi / mb).toFixed(2)}× (target ≤ 2×)`);
