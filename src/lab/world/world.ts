/**
 * The seeds' world in two network namespaces: a `pod` namespace (the workload: curl, the
 * rules, `interpose proxy`) and a `world` namespace holding stand-ins for httpbin.org (HTTP)
 * and www.google.com (TLS, certificate from a test CA made at run time), linked by a veth
 * pair on documentation addresses. The pod resolves the names through /etc/netns/POD/hosts
 * and trusts only the test CA (/etc/netns/POD/ssl). `destroy()` removes everything created.
 * Used by `interpose lab` and by the kernel tests.
 */
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InterceptError } from '../../errors/index.js';
import { BackgroundProcess } from '../../kernel/background-process.js';
import { SystemExecutor, runChecked } from '../../kernel/executor.js';
import { GOOGLE, HTTPBIN, LINK, STAND_INS } from './addresses.js';
import { NamedNetns, type NetnsExecOptions } from './netns.js';
import { nodeScriptArgv, PACKAGE_ROOT } from './node-script.js';
import type { StandInConfig } from './stand-in-servers.js';
import { createTestCa } from './test-ca.js';

export interface WorldOptions {
  /** Namespace name prefix; a random suffix is added. */
  prefix?: string;
  /** Also give everything IPv6 documentation addresses. */
  ipv6?: boolean;
}

export class World {
  private server: BackgroundProcess | undefined;
  private destroyed = false;

  private constructor(
    readonly pod: NamedNetns,
    readonly world: NamedNetns,
    /** Scratch directory: CA, certificates, anything the caller wants to put there. */
    readonly dir: string,
    readonly caCert: string,
    readonly ipv6: boolean,
  ) {}

  /** Builds the namespaces, link, certificates and servers; on failure removes what it made. */
  static async create(options: WorldOptions = {}): Promise<World> {
    if (process.getuid?.() !== 0) {
      throw new InterceptError('the lab world needs root: it creates network namespaces (run with sudo)');
    }
    const suffix = randomBytes(3).toString('hex');
    const prefix = options.prefix ?? 'interpose';
    const dir = mkdtempSync(join(tmpdir(), `${prefix}-world-`));
    // The proxy drops to its own uid and must still read config files kept here.
    chmodSync(dir, 0o755);
    const made: NamedNetns[] = [];
    try {
      const pod = await NamedNetns.create(`${prefix}-pod-${suffix}`);
      made.push(pod);
      const worldNs = await NamedNetns.create(`${prefix}-world-${suffix}`);
      made.push(worldNs);
      const ca = await createTestCa(dir, [GOOGLE.host]);
      const world = new World(pod, worldNs, dir, ca.caCert, options.ipv6 ?? false);
      await world.link(suffix);
      world.writePodEtc();
      await world.startServers(ca.servers[GOOGLE.host]!);
      return world;
    } catch (err) {
      for (const ns of made) await ns.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async link(suffix: string): Promise<void> {
    const podIf = `ipp${suffix}`;
    const worldIf = `ipw${suffix}`;
    await runChecked(new SystemExecutor(), ['ip', 'link', 'add', podIf, 'netns', this.pod.name, 'type', 'veth', 'peer', 'name', worldIf, 'netns', this.world.name]);
    await this.pod.exec(['ip', 'addr', 'add', `${LINK.pod.v4}/${LINK.prefix.v4}`, 'dev', podIf]);
    await this.world.exec(['ip', 'addr', 'add', `${LINK.world.v4}/${LINK.prefix.v4}`, 'dev', worldIf]);
    if (this.ipv6) {
      await this.pod.exec(['ip', '-6', 'addr', 'add', `${LINK.pod.v6}/${LINK.prefix.v6}`, 'dev', podIf, 'nodad']);
      await this.world.exec(['ip', '-6', 'addr', 'add', `${LINK.world.v6}/${LINK.prefix.v6}`, 'dev', worldIf, 'nodad']);
    }
    await this.pod.exec(['ip', 'link', 'set', podIf, 'up']);
    await this.world.exec(['ip', 'link', 'set', worldIf, 'up']);
    // As in Istio's gateway pods: a proxy that dropped root may still bind gateway ports < 1024.
    await this.pod.exec(['sysctl', '-qw', 'net.ipv4.ip_unprivileged_port_start=0']);
    // The pod's only way out is the world, as a pod's is its node.
    await this.pod.exec(['ip', 'route', 'add', 'default', 'via', LINK.world.v4]);
    if (this.ipv6) await this.pod.exec(['ip', '-6', 'route', 'add', 'default', 'via', LINK.world.v6]);
    for (const s of STAND_INS) {
      await this.world.exec(['ip', 'addr', 'add', `${s.address}/32`, 'dev', 'lo']);
      if (this.ipv6) await this.world.exec(['ip', '-6', 'addr', 'add', `${s.address6}/128`, 'dev', 'lo']);
    }
  }

  private writePodEtc(): void {
    const lines = ['127.0.0.1 localhost', '::1 localhost ip6-localhost'];
    for (const s of STAND_INS) {
      lines.push(`${s.address} ${s.host}`);
      if (this.ipv6) lines.push(`${s.address6} ${s.host}`);
    }
    this.pod.writeEtc('hosts', lines.join('\n') + '\n');
    // DNS questions go to the world, which answers "port unreachable" at once: names outside
    // the hosts file fail fast, and nothing leaves the namespaces.
    const resolv = `nameserver ${LINK.world.v4}\noptions timeout:1 attempts:1\n`;
    this.pod.writeEtc('resolv.conf', resolv);
    this.world.writeEtc('resolv.conf', resolv);
    // /etc/ssl in the pod holds only the test CA (curl and OpenSSL read this bundle).
    this.pod.writeEtc('ssl/certs/ca-certificates.crt', readFileSync(this.caCert));
    if (existsSync('/etc/ssl/openssl.cnf')) {
      this.pod.writeEtc('ssl/openssl.cnf', '');
      copyFileSync('/etc/ssl/openssl.cnf', `/etc/netns/${this.pod.name}/ssl/openssl.cnf`);
    }
  }

  private async startServers(tls: { cert: string; key: string }): Promise<void> {
    const config: StandInConfig = {
      httpbin: { addresses: [HTTPBIN.address, ...(this.ipv6 ? [HTTPBIN.address6] : [])], port: HTTPBIN.port },
      tls: {
        addresses: [GOOGLE.address, ...(this.ipv6 ? [GOOGLE.address6] : [])],
        port: GOOGLE.port,
        host: GOOGLE.host,
        cert: tls.cert,
        key: tls.key,
      },
    };
    const [node, ...args] = nodeScriptArgv('lab/world/stand-in-servers');
    const server = BackgroundProcess.start(['ip', 'netns', 'exec', this.world.name, node!, ...args, JSON.stringify(config)], { cwd: PACKAGE_ROOT });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new InterceptError(`stand-in servers did not start within 20 s: ${err}`)), 20_000);
      server.stderr.on('data', (d: Buffer) => (err += d.toString()));
      server.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void server.exited.then((r) => {
        clearTimeout(timer);
        reject(new InterceptError(`stand-in servers exited (${r.exitCode ?? r.signal ?? r.error?.message}): ${err}`));
      });
    });
  }

  /** Runs argv in the pod namespace. */
  inPod(argv: string[], options: NetnsExecOptions = {}) {
    return this.pod.exec(argv, options);
  }

  /** Runs argv in the world namespace. */
  inWorld(argv: string[], options: NetnsExecOptions = {}) {
    return this.world.exec(argv, options);
  }

  /** Stops the servers, deletes both namespaces, /etc/netns files and the scratch directory. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.server && !this.server.hasExited) {
      this.server.kill('SIGTERM');
      const exited = await Promise.race([this.server.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))]);
      if (!exited) this.server.kill('SIGKILL');
    }
    await this.pod.destroy();
    await this.world.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
