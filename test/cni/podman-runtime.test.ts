/**
 * interpose-cni run by a real container runtime: podman 4.3 with its CNI network backend
 * executes a bridge + host-local + interpose-cni conflist from a private network config dir,
 * finding the plugins in /usr/lib/cni and a private bin dir holding the interpose-cni shim,
 * which forwards to a running node daemon (`cni_plugin_dirs` in a containers.conf named by
 * CONTAINERS_CONF). The container runs as uid
 * 1000 with every capability dropped; its connection to a documentation address must land on
 * 15001 in its own namespace. `podman rm -f` runs DEL, which must leave nothing of ours.
 *
 * podman 4.3 passes CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=<container name> and no namespace;
 * it appends the KEY=VALUE pairs of its own environment's CNI_ARGS, so the test gives it
 * K8S_POD_NAMESPACE there and the stand-in API serves that Pod.
 *
 * Needs root, podman, the Debian reference plugins and the image localhost/interpose:dev
 * (scripts/build-image.sh; .ci/run builds it). Outside CI a missing image skips the test; under
 * CI it fails it.
 */
import test, { type Implementation } from 'ava';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CniDaemon } from './helpers/cni-daemon.js';
import { cniSkipReason, REFERENCE_PLUGINS, rulesIn } from './helpers/cni-network.js';
import { INJECTED, KubeStandIn, writeKubeconfig } from './helpers/kube-stand-in.js';
import { IMAGE, PODMAN_LIMITS, podmanImageSkipReason } from '../helpers/podman-image.js';

async function skipReason(): Promise<string | undefined> {
  return cniSkipReason() ?? podmanImageSkipReason();
}

const skip = await skipReason();
if (skip) console.log(`SKIP: ${skip}`);
const podmanTest: (title: string, fn: Implementation<[]>) => void = skip ? (title: string, fn: Implementation<[]>) => test.skip(`${title} (skipped: ${skip})`, fn) : test.serial;

/** The host's netfilter lines of ours: istio-iptables' chains or interpose's names. */
const hostRulesOfOurs = async () =>
  String((await execa('iptables-save')).stdout)
    .split('\n')
    .filter((l) => /ISTIO_|istio-proxy|interpose/i.test(l));

// A listener on 15001 (the redirect target) answering "intercepted", and a client connecting
// to a documentation address. Without the rules the SYN goes to a neighbour nobody answers on
// the test's own bridge and nothing leaves it.
const LISTENER = `require("net").createServer((s) => s.end("intercepted")).listen(15001, "0.0.0.0", () => console.log("listening"))`;
const CLIENT = `const s = require("net").connect({ host: "203.0.113.9", port: 80, timeout: 5000 });
let got = ""; s.on("data", (d) => (got += d)); s.on("end", () => { console.log("reply=" + got); process.exit(0); });
s.on("timeout", () => { console.log("reply=timeout"); process.exit(0); }); s.on("error", (e) => { console.log("reply=" + e.code); process.exit(0); });`;

podmanTest('podman runs bridge + host-local + interpose-cni: an unprivileged container is intercepted; podman rm -f leaves nothing', async (t) => {
  const id = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'interpose-podman-cni-'));
  const bin = join(dir, 'bin');
  const netDir = join(dir, 'net.d');
  const stateDir = join(dir, 'state');
  for (const d of [bin, netDir, stateDir, join(dir, 'ownership'), join(dir, 'ipam')]) mkdirSync(d);
  const bridge = `icnp${id}`;
  const network = `interpose-podman-${id}`;
  const container = `interpose-pod-${id}`;
  const namespace = 'shop';
  const api = await KubeStandIn.start();
  const env = {
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    // podman hands its environment to the plugins it executes.
    INTERPOSE_CNI_STATE_DIR: stateDir,
    INTERPOSE_STATE_DIR: join(dir, 'ownership'),
    // podman 4.3 passes CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=<container name> and appends the
    // pairs of its own CNI_ARGS: the pod's namespace comes from there.
    CNI_ARGS: `K8S_POD_NAMESPACE=${namespace}`,
  };
  const podman = (args: string[], timeout = 120_000) =>
    execa('podman', ['--runtime', 'runc', '--network-config-dir', netDir, ...args], { reject: false, timeout, env });
  t.teardown(async () => {
    await podman(['rm', '-f', '--time', '0', container]);
    await execa('ip', ['link', 'del', bridge], { reject: false });
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // The production shape: the node daemon (`interpose cni install --watch`) installs the native
  // shim into the bin dir and serves the calls podman's CNI library makes through it.
  const daemon = await CniDaemon.start({ dir, binDir: bin, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', INTERPOSE_CNI_STATE_DIR: stateDir, INTERPOSE_STATE_DIR: join(dir, 'ownership') } });
  t.teardown(() => daemon.stop());
  writeFileSync(env.CONTAINERS_CONF, `[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = [${JSON.stringify(bin)}, ${JSON.stringify(REFERENCE_PLUGINS)}]\nnetwork_config_dir = ${JSON.stringify(netDir)}\n`);
  const octet = randomInt(1, 250);
  const logFile = join(dir, 'interpose-cni.log');
  const conflist = {
    cniVersion: '1.0.0',
    name: network,
    plugins: [
      {
        type: 'bridge',
        bridge,
        // No host address on the bridge and a route to the documentation range via a neighbour
        // nobody answers: without the redirect no packet can leave the bridge.
        isGateway: false,
        ipMasq: false,
        ipam: { type: 'host-local', ranges: [[{ subnet: `100.64.${octet}.0/24` }]], routes: [{ dst: '203.0.113.0/24', gw: `100.64.${octet}.254` }], dataDir: join(dir, 'ipam') },
      },
      { type: 'interpose-cni', kubeconfig: writeKubeconfig(dir, api.url, api.certificate), log_file: logFile, plugin_log_level: 'debug', exclude_namespaces: [] },
    ],
  };
  writeFileSync(join(netDir, `${network}.conflist`), `${JSON.stringify(conflist, null, 2)}\n`);
  api.addPod(namespace, container, { annotations: INJECTED });
  const hostBefore = await hostRulesOfOurs();

  // The app as CNI mode runs it: uid 1000, no capabilities; the rules come from the plugin.
  const run = await podman([
    'run', '-d', '--name', container, '--network', network, ...PODMAN_LIMITS,
    '--user', '1000:1000', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
    '--entrypoint', 'node', IMAGE, '-e', LISTENER,
  ]);
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  t.is(run.exitCode, 0, `${String(run.stderr)}\n${log()}`);
  t.regex(log(), new RegExp(`ADD started \\(CNI_CONTAINERID=\\w+ CNI_IFNAME=eth0 CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=${container};K8S_POD_NAMESPACE=${namespace}\\)`), log());
  t.regex(log(), /rules installed/);
  t.is(api.requests, 1, 'ADD read the pod once');
  t.is(readdirSync(stateDir).length, 1, 'ADD recorded the attachment');

  const netns = String((await podman(['inspect', '--format', '{{.NetworkSettings.SandboxKey}}', container])).stdout).trim();
  t.regex(netns, /^\/run\/netns\//);
  t.regex(await rulesIn(netns.replace('/run/netns/', '')), /ISTIO_OUTPUT/);
  // Wait for the listener, then connect from the container as its own uid, capabilities none.
  for (let i = 0; i < 100 && !/listening/.test(String((await podman(['logs', container])).stdout)); i++) await new Promise((r) => setTimeout(r, 100));
  const client = await podman(['exec', container, 'sh', '-c', `grep -E "^(Uid|CapEff|CapBnd)" /proc/self/status; exec node -e '${CLIENT}'`]);
  t.is(client.exitCode, 0, String(client.stderr));
  const out = String(client.stdout);
  t.regex(out, /^Uid:\s+1000\s/m);
  t.regex(out, /^CapEff:\s+0{16}$/m);
  t.regex(out, /^CapBnd:\s+0{16}$/m);
  t.regex(out, /^reply=intercepted$/m, out);

  // podman rm -f runs DEL: no rules, no record, the host's netfilter as before.
  const rm = await podman(['rm', '-f', '--time', '0', container]);
  t.is(rm.exitCode, 0, String(rm.stderr));
  t.regex(log(), /DEL started/);
  t.notRegex(log(), /failed \(code/, log());
  t.deepEqual(readdirSync(stateDir), [], 'no record of the attachment is left');
  t.deepEqual(await hostRulesOfOurs(), hostBefore, 'the host has no rules of ours');
  t.false(existsSync(netns), 'podman removed the namespace');
  const pids = new Set([...log().matchAll(/ interpose-cni\[(\d+)\]/g)].map((m) => Number(m[1])));
  t.deepEqual([...pids], [daemon.pid], 'ADD and DEL went through the shim to the daemon');
});
