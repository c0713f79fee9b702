/**
 * One lab run's world: the pod and world namespaces (src/lab/world), interpose's rules in the
 * pod, `interpose proxy` running there as uid 1337, and the helpers the steps use — each of
 * which records the command it ran so the lab can print it. `close()` removes everything.
 */
import { writeFileSync } from 'node:fs';
import { InterceptError } from '../errors/intercept-error.js';
import { SystemExecutor } from '../kernel/executor.js';
import { World } from './world/world.js';
import { ProxyProcess } from './world/proxy-process.js';
import { nodeScriptArgv } from './world/node-script.js';
import { meshMode } from './seed-resources.js';

export const PROXY_UID = 1337;

/** A command the lab ran, and what came back. */
export interface CommandRecord {
  readonly display: string;
  readonly exitCode: number;
  readonly output: string;
  readonly seconds: number;
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

export class LabSession {
  private logMark = 0;

  private constructor(
    readonly world: World,
    readonly proxy: ProxyProcess,
    readonly configFile: string,
  ) {}

  /** Builds the world, installs `-i '*' --redirect-dns` rules and starts the proxy (with its DNS proxy) in ALLOW_ANY mode. */
  static async open(onCommand: (c: CommandRecord) => void): Promise<LabSession> {
    const world = await World.create({ prefix: 'lab' });
    try {
      const configFile = `${world.dir}/mesh.yaml`;
      writeFileSync(configFile, meshMode('ALLOW_ANY'));
      // DNS capture on, as with ISTIO_META_DNS_CAPTURE: the seed must pass with it (dns-steps.ts shows it working).
      onCommand(await runInterpose(world.pod.name, ['-i', '*', '--redirect-dns']));
      const proxy = await ProxyProcess.start(world.pod.name, [
        '--config', configFile, '--uid', String(PROXY_UID), '--gid', String(PROXY_UID), '--access-log', '-', '--dns-capture', '--dns-auto-allocate',
      ]);
      return new LabSession(world, proxy, configFile);
    } catch (err) {
      await world.destroy();
      throw err;
    }
  }

  /** Writes the mesh config and reloads the proxy (as `kubectl apply` would change the mesh). */
  async apply(yaml: string): Promise<CommandRecord> {
    writeFileSync(this.configFile, yaml);
    const started = performance.now();
    const ok = await this.proxy.reload();
    if (!ok) throw new InterceptError(`the proxy rejected the lab's config: ${this.proxy.logs.at(-1)}`);
    return { display: `kill -HUP <interpose proxy>   # reload ${this.configFile}`, exitCode: 0, output: 'config reloaded', seconds: (performance.now() - started) / 1000 };
  }

  /** curl inside the pod, which resolves the seed's names and trusts only the test CA. */
  curl(args: string[]): Promise<CommandRecord> {
    return this.inPod(['curl', '-sS', '-m', '10', ...args]);
  }

  /** Runs argv in the pod and records it as the report shows it. */
  async inPod(argv: string[]): Promise<CommandRecord> {
    const started = performance.now();
    const r = await this.world.inPod(argv, { reject: false });
    return {
      display: `ip netns exec ${this.world.pod.name} ${argv.map(quote).join(' ')}`,
      exitCode: r.exitCode,
      output: `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`.trim(),
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** Replaces the pod's rules (cleanup, then a fresh install with `extra` flags). */
  async reinstallRules(extra: string[]): Promise<CommandRecord[]> {
    return [await runInterpose(this.world.pod.name, ['--cleanup-only']), await runInterpose(this.world.pod.name, extra)];
  }

  /** Access-log lines written since the previous call. */
  newAccessLog(): string[] {
    const lines = this.proxy.accessLog.slice(this.logMark);
    this.logMark = this.proxy.accessLog.length;
    return lines;
  }

  /** Waits briefly for access-log lines matching `re` (they are written when a connection ends). */
  async waitForLog(re: RegExp, timeoutMs = 3000): Promise<boolean> {
    try {
      await this.proxy.waitFor(() => this.proxy.accessLog.slice(this.logMark).some((l) => re.test(l)), timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.proxy.stop(3000).catch(() => undefined);
    // Take the rules (and their ownership record in /run/interpose) away before the namespace.
    await runInterpose(this.world.pod.name, ['--cleanup-only']).catch(() => undefined);
    await this.world.destroy();
  }
}

/** `interpose istio-iptables --network-namespace NS -p 15001 -z 15006 -u 1337 -g 1337 …` via our own CLI. */
async function runInterpose(ns: string, extra: string[]): Promise<CommandRecord> {
  const args = ['istio-iptables', '--network-namespace', ns, '-p', '15001', '-z', '15006', '-u', String(PROXY_UID), '-g', String(PROXY_UID), ...extra];
  const started = performance.now();
  const r = await new SystemExecutor().run([...nodeScriptArgv('cli/main'), ...args]);
  const record = {
    display: `interpose ${args.map(quote).join(' ')}`,
    exitCode: r.exitCode,
    output: r.stderr.trim(),
    seconds: (performance.now() - started) / 1000,
  };
  if (record.exitCode !== 0) throw new InterceptError(`${record.display} failed: ${record.output}`);
  return record;
}
