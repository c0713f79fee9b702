/**
 * One CNI network for one test: a private plugin directory (the Debian reference plugins and
 * interpose-cni), a bridge + host-local + interpose-cni conflist on a 100.64.N.0/24 subnet with
 * a private host-local dataDir, the stand-in API server, and a place for state and the log.
 * teardown() removes every namespace, bridge and directory it made.
 */
import type { ExecutionContext } from 'ava';
import { randomBytes, randomInt } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { installPluginFiles } from '../../../src/cni/install/plugin-files.js';
import { CniDaemon } from './cni-daemon.js';
import { CniRuntime, type Attachment, type Conflist } from './cni-runtime.js';
import { KubeStandIn, writeKubeconfig } from './kube-stand-in.js';

export const REFERENCE_PLUGINS = '/usr/lib/cni';
export const PLUGIN = join(import.meta.dirname, '..', '..', '..', 'dist', 'interpose-cni.js');
export const CLI = join(import.meta.dirname, '..', '..', '..', 'dist', 'interpose.js');

/** Why CNI runtime tests cannot run here, or undefined when they can. */
export function cniSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'CNI runtime tests need root';
  if (!existsSync(`${REFERENCE_PLUGINS}/bridge`)) return `no ${REFERENCE_PLUGINS}/bridge: install containernetworking-plugins (scripts/install-system-deps.sh)`;
  if (!existsSync(PLUGIN)) return `${PLUGIN} is missing: run npm run build:ts`;
  return undefined;
}

export interface NetworkOptions {
  /** Extra keys for interpose-cni's entry. */
  plugin?: Record<string, unknown>;
  /** The kubeconfig names this server instead of the stand-in (an unreachable one). */
  server?: string;
  /**
   * How the runtime's call reaches the plugin logic: 'node', the Node plugin's launcher as the
   * bin dir's interpose-cni (the package's bin); 'daemon', the native shim forwarding to a
   * running `interpose cni install --watch` (production); 'fallback', the shim with no daemon.
   */
  path?: CallPath;
}

export type CallPath = 'node' | 'daemon' | 'fallback';
export const CALL_PATHS: readonly CallPath[] = ['node', 'daemon'];

export class CniNetwork {
  readonly namespaces: string[] = [];
  private constructor(
    readonly dir: string,
    readonly bridge: string,
    readonly subnet: string,
    readonly gateway: string,
    readonly api: KubeStandIn,
    readonly runtime: CniRuntime,
    readonly logFile: string,
    readonly stateDir: string,
    readonly ownershipDir: string,
    /** The daemon serving the calls, on the 'daemon' path. */
    readonly daemon?: CniDaemon,
  ) {}

  static async create(t: ExecutionContext, options: NetworkOptions = {}): Promise<CniNetwork> {
    const dir = mkdtempSync(join(tmpdir(), 'interpose-cni-test-'));
    const bin = join(dir, 'bin');
    await execa('mkdir', ['-p', bin, join(dir, 'ipam'), join(dir, 'state'), join(dir, 'ownership')]);
    for (const p of ['bridge', 'host-local', 'loopback']) symlinkSync(`${REFERENCE_PLUGINS}/${p}`, join(bin, p));
    const path = options.path ?? 'node';
    const stateEnv = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      INTERPOSE_CNI_STATE_DIR: join(dir, 'state'),
      INTERPOSE_STATE_DIR: join(dir, 'ownership'),
    };
    // The plugin as `interpose cni install` puts it in a bin dir (the daemon installs it itself).
    // The shim's socket is private to the test; on 'fallback' nothing ever listens there.
    let daemon: CniDaemon | undefined;
    if (path === 'daemon') {
      daemon = await CniDaemon.start({ dir, binDir: bin, env: stateEnv });
      const started = daemon;
      t.teardown(() => started.stop());
    } else {
      const files = installPluginFiles({ binDir: bin, socket: join(dir, 'run', 'cni.sock'), nodeOnly: path === 'node' });
      if (path === 'fallback' && !files.shim) throw new Error('no native shim is built: npm run build:native');
    }
    const api = await KubeStandIn.start();
    const kubeconfig = writeKubeconfig(dir, options.server ?? api.url, api.certificate);
    const octet = randomInt(1, 250);
    const subnet = `100.64.${octet}.0/24`;
    const gateway = `100.64.${octet}.1`;
    const bridge = `icni${randomBytes(3).toString('hex')}`;
    const logFile = join(dir, 'interpose-cni.log');
    const conflist: Conflist = {
      cniVersion: '1.0.0',
      name: `interpose-test-${bridge}`,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet, gateway }]], dataDir: join(dir, 'ipam') },
        },
        { type: 'interpose-cni', kubeconfig, log_file: logFile, plugin_log_level: 'debug', exclude_namespaces: ['kube-system'], ...options.plugin },
      ],
    };
    const runtime = new CniRuntime(conflist, bin, stateEnv);
    const net = new CniNetwork(dir, bridge, subnet, gateway, api, runtime, logFile, join(dir, 'state'), join(dir, 'ownership'), daemon);
    t.teardown(() => net.teardown());
    return net;
  }

  /** A fresh network namespace (the pod sandbox), deleted at teardown, and its attachment. */
  async sandbox(pod: { namespace: string; name: string }): Promise<Attachment & { name: string }> {
    const name = `icni-${randomBytes(4).toString('hex')}`;
    await execa('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await execa('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
    return {
      name,
      containerId: randomBytes(16).toString('hex'),
      netns: `/run/netns/${name}`,
      ifname: 'eth0',
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=u`,
    };
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  records(): string[] {
    return existsSync(this.stateDir) ? readdirSync(this.stateDir) : [];
  }

  /** The pids that wrote the log's lines (interpose-cni[PID]): which process ran the calls. */
  logPids(): Set<number> {
    return new Set([...this.log().matchAll(/ interpose-cni\[(\d+)\]/g)].map((m) => Number(m[1])));
  }

  async teardown(): Promise<void> {
    await this.daemon?.stop();
    for (const ns of this.namespaces) await execa('ip', ['netns', 'del', ns], { reject: false });
    await execa('ip', ['link', 'del', this.bridge], { reject: false });
    await this.api.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The namespace's netfilter rules: iptables-save (both families) and the nft ruleset, counters and comments dropped. */
export async function rulesIn(netns: string): Promise<string> {
  const exec = (argv: string[]) => execa('ip', ['netns', 'exec', netns, ...argv], { reject: false });
  const v4 = await exec(['iptables-save']);
  const v6 = await exec(['ip6tables-save']);
  // By path: under npm/ava, node_modules/.bin/nft (@vercel/nft) comes first in PATH.
  const nft = await exec([existsSync('/usr/sbin/nft') ? '/usr/sbin/nft' : 'nft', 'list', 'ruleset']);
  const clean = (s: string) =>
    s
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/, ''))
      .join('\n');
  return `${clean(String(v4.stdout))}\n--\n${clean(String(v6.stdout))}\n--\n${String(nft.stdout).replace(/packets \d+ bytes \d+/g, '')}`;
}

export interface ProbeResult {
  tcp: Record<string, boolean>;
  udp: Record<string, boolean>;
  uid: number;
  /** Effective and bounding capability sets, hex as /proc/self/status shows them. */
  capEff: string;
  capBnd: string;
}

/**
 * Runs the traffic probe inside `netns`; which targets arrived at the proxy's listeners. With
 * `asUid`, as the pod's app runs in CNI mode: that uid, no groups, no capabilities at all
 * (none effective, inheritable or in the bounding set), no new privileges.
 */
export async function probe(netns: string, spec: { tcp?: string[]; udp?: string[] }, options: { asUid?: number } = {}): Promise<ProbeResult> {
  const script = join(import.meta.dirname, 'traffic-probe.ts');
  const unprivileged =
    options.asUid === undefined
      ? []
      : ['setpriv', `--reuid=${options.asUid}`, `--regid=${options.asUid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--'];
  // tsx keeps its cache under TMPDIR: the uid gets one of its own, removed afterwards.
  const tmp = mkdtempSync(join(tmpdir(), 'interpose-cni-probe-'));
  if (options.asUid !== undefined) chownSync(tmp, options.asUid, options.asUid);
  try {
    const r = await execa('ip', ['netns', 'exec', netns, ...unprivileged, process.execPath, '--import', 'tsx', script, JSON.stringify(spec)], {
      timeout: 60_000,
      env: { TMPDIR: tmp },
    });
    return JSON.parse(String(r.stdout)) as ProbeResult;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
