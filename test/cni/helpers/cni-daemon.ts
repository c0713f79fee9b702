/**
 * The node daemon as the DaemonSet runs it, for tests and the bench: `interpose cni install
 * --watch --socket …` as its own process, on private bin/conf/service-account dirs, with the
 * state directories in its environment (the daemon's environment, not the runtime's, decides
 * them on the daemon path). It installs the shim into `binDir`; stop() ends it with SIGTERM.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { CLI } from './cni-network.js';

export interface DaemonOptions {
  /** Where the daemon's own files go (conf dir, service account, socket directory). */
  readonly dir: string;
  readonly binDir: string;
  readonly env: Record<string, string>;
}

export class CniDaemon {
  private constructor(
    private readonly child: ResultPromise,
    readonly socket: string,
    readonly output: () => string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(o: DaemonOptions): Promise<CniDaemon> {
    const conf = join(o.dir, 'daemon-net.d');
    const sa = join(o.dir, 'daemon-sa');
    mkdirSync(conf, { recursive: true });
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'token\n');
    writeFileSync(join(sa, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    writeFileSync(join(sa, 'namespace'), 'kube-system');
    const socket = join(o.dir, 'run', 'cni.sock');
    // An empty conf dir: --watch waits for a primary that never comes, and serves meanwhile.
    const child = execa('node', [CLI, 'cni', 'install', '--watch', '--cni-bin-dir', o.binDir, '--cni-conf-dir', conf, '--service-account-dir', sa, '--socket', socket], {
      env: { ...o.env, KUBERNETES_SERVICE_HOST: '127.0.0.1' },
      extendEnv: false,
      reject: false,
      all: true,
      buffer: false,
    });
    let output = '';
    child.all?.on('data', (d: Buffer) => (output += d.toString()));
    const daemon = new CniDaemon(child, socket, () => output);
    const end = Date.now() + 30_000;
    while (!(existsSync(socket) && /watching/.test(output))) {
      if (!daemon.running || Date.now() > end) {
        child.kill('SIGKILL');
        throw new Error(`the daemon did not start serving ${socket}:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return daemon;
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.child;
    clearTimeout(timer);
  }
}
