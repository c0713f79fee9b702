/**
 * One HTTP bench world, as bench:http and bench:http-per-core set it up: the lab's namespaces,
 * an origin, istio-iptables' rules in the pod, the proxies' configurations, and the load
 * generators run in the pod.
 *
 * The origin is HAProxy in the world namespace answering every GET with 1 KiB itself (so the
 * origin costs little and is the same for every target), on an HTTP/1.1 port and an h2c port.
 * In the pod, istio-iptables' rules redirect the world's range to 15001; the targets:
 *   direct     — the load generator runs as uid 1337, which the rules let out unredirected;
 *   haproxy    — HAProxy 1 thread, `mode http`, transparent (server 0.0.0.0 = SO_ORIGINAL_DST),
 *                as uid 1337, a Host check, the route's 15 s server timeout, httplog to a file;
 *   haproxy-nolog — the same without the access log (HAProxy writes each line with a writev and a
 *                getpid of its own: this shows what that costs it);
 *   interpose  — `interpose proxy` as uid 1337: REGISTRY_ONLY, a ServiceEntry HTTP port and
 *                an HTTP2 port, a VirtualService route with a 15 s timeout, the TEXT access log
 *                to a file;
 *   interpose-nolog — the same with --access-log off (against haproxy-nolog);
 *   interpose-js — the same with --no-native-http (every request through Node's HTTP server and client);
 *   baseline   — interpose from another built checkout (before/after in one run).
 * The proxied targets get the load from an app uid (1000), redirected by the rules.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { HTTPBIN } from '../src/lab/world/addresses.js';
import { ProxyProcess } from '../src/lab/world/proxy-process.js';
import { World } from '../src/lab/world/world.js';

export const root = fileURLToPath(new URL('../', import.meta.url));
export const PORT = 8080;
/** The ServiceEntry's HTTP2 port: HTTP/2 upstream, as GRPC ports are proxied. */
export const H2_PORT = 8081;
export const URL_ = `http://${HTTPBIN.host}:${PORT}/`;
export const H2_URL = `http://${HTTPBIN.host}:${H2_PORT}/`;
export const APP_UID = '1000';
export const PROXY_UID = '1337';
const BODY = 'x'.repeat(1024);

export type TargetName = 'direct' | 'haproxy' | 'haproxy-nolog' | 'interpose' | 'interpose-nolog' | 'interpose-js' | 'baseline';

/** A started target: its pid (none for direct) and how to stop it. */
export interface RunningTarget {
  pid?: number;
  stop(): Promise<void>;
}

export interface H2cRun {
  rps: number;
  failed: number;
  rpsPerCore?: number;
}

/** CPU seconds (user + system, all threads) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** wrk's latency figures ("412.00us", "1.20ms", "1.01s") in milliseconds. */
function wrkMs(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : v * 1000;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Throws unless this runs as root with haproxy, wrk and h2load installed. */
export async function checkBenchTools(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the HTTP benches need root (network namespaces, rules)');
  for (const tool of ['haproxy', 'wrk', 'h2load']) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) {
      throw new Error(`the HTTP benches need ${tool} (scripts/install-system-deps.sh)`);
    }
  }
}

export class HttpBenchWorld {
  private readonly children: ResultPromise[] = [];
  private readonly proxies = new Set<ProxyProcess>();

  private constructor(
    readonly world: World,
    /** Scratch files (configurations, logs); the load generator writes its latency logs here. */
    readonly scratch: string,
    private readonly options: { cpuProf?: string; baseline?: string },
  ) {}

  /**
   * Creates the namespaces, starts the origin and installs the rules. `cpuProf`: a directory
   * for interpose's CPU profiles (node --cpu-prof); `baseline`: a built checkout run as target "baseline".
   */
  static async create(prefix: string, options: { cpuProf?: string; baseline?: string } = {}): Promise<HttpBenchWorld> {
    const scratch = mkdtempSync(`${tmpdir()}/${prefix}-`);
    chmodSync(scratch, 0o777); // the load generator (an app uid) writes its latency logs here
    const world = await World.create({ prefix });
    const bench = new HttpBenchWorld(world, scratch, options);
    try {
      await bench.setUp();
    } catch (err) {
      await bench.destroy();
      throw err;
    }
    return bench;
  }

  private async setUp(): Promise<void> {
    const originCfg = `${this.scratch}/origin.cfg`;
    writeFileSync(originCfg, [
      'global', '  nbthread 1', '  maxconn 8000',
      'defaults', '  mode http', '  timeout client 1h', '  timeout server 1h', '  timeout connect 5s', '  timeout http-keep-alive 1h',
      'frontend origin', `  bind ${HTTPBIN.address}:${PORT}`, `  bind ${HTTPBIN.address}:${H2_PORT} proto h2`,
      `  http-request return status 200 content-type text/plain string "${BODY}"`, '',
    ].join('\n'));
    this.children.push(execa('ip', ['netns', 'exec', this.world.world.name, 'haproxy', '-db', '-f', originCfg],
      { reject: false, buffer: false, stdout: 'ignore', stderr: 'inherit' }));
    await this.world.inPod(['sysctl', '-qw', 'net.core.somaxconn=4096']);
    await this.world.inWorld(['sysctl', '-qw', 'net.core.somaxconn=4096']);
    await new Promise((r) => setTimeout(r, 500));

    await execa(process.execPath, ['--import', 'tsx', `${root}src/cli/main.ts`, 'istio-iptables', '--network-namespace', this.world.pod.name,
      '-p', '15001', '-z', '15006', '-u', PROXY_UID, '-g', PROXY_UID, '-i', '203.0.113.0/24'], { cwd: root });

    // HAProxy as the transparent target, in HTTP mode, with the same policy as interpose's config.
    const haproxyCfg = (log: boolean) => [
      'global', '  nbthread 1', '  maxconn 8000', `  uid ${PROXY_UID}`, `  gid ${PROXY_UID}`, ...(log ? ['  log stdout format raw local0'] : []),
      'defaults', '  mode http', ...(log ? ['  log global', '  option httplog'] : []), '  timeout connect 10s', '  timeout client 1h',
      '  timeout server 15s', '  timeout http-keep-alive 1h',
      'frontend redirected', '  bind 0.0.0.0:15001',
      // REGISTRY_ONLY with one registered host: anything else is refused as BlackHoleCluster would be.
      `  http-request deny deny_status 502 unless { hdr(host) -m dom ${HTTPBIN.host} }`,
      `  use_backend httpbin_h2 if { dst_port ${H2_PORT} }`,
      '  default_backend httpbin',
      'backend httpbin', '  http-request set-header x-forwarded-proto http', '  server original 0.0.0.0',
      // The HTTP2 port's upstream in HTTP/2, as Envoy (and interpose) speak to HTTP2/GRPC ports.
      'backend httpbin_h2', '  http-request set-header x-forwarded-proto http', '  server original 0.0.0.0 proto h2', '',
    ].join('\n');
    writeFileSync(this.haproxyCfg('haproxy'), haproxyCfg(true));
    writeFileSync(this.haproxyCfg('haproxy-nolog'), haproxyCfg(false));

    writeFileSync(this.meshCfg, `outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [${HTTPBIN.host}]
  location: MESH_EXTERNAL
  ports: [{number: ${PORT}, name: http, protocol: HTTP}, {number: ${H2_PORT}, name: http2, protocol: HTTP2}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [${HTTPBIN.host}]
  http:
  - timeout: 15s
    route:
    - destination: {host: ${HTTPBIN.host}}  # no port: each port routes to itself
`);
  }

  private haproxyCfg(target: 'haproxy' | 'haproxy-nolog'): string {
    return `${this.scratch}/${target}.cfg`;
  }

  private get meshCfg(): string {
    return `${this.world.dir}/mesh.yaml`;
  }

  /** Starts a target as the pod's redirect target (nothing for direct). */
  async start(target: TargetName): Promise<RunningTarget> {
    if (target === 'direct') return { stop: async () => {} };
    if (target === 'haproxy' || target === 'haproxy-nolog') {
      const child = execa('ip', ['netns', 'exec', this.world.pod.name, 'haproxy', '-db', '-f', this.haproxyCfg(target)],
        { reject: false, buffer: false, stdout: { file: `${this.scratch}/haproxy-access.log`, append: true } as never });
      this.children.push(child);
      await new Promise((r) => setTimeout(r, 500));
      return { pid: child.pid, stop: async () => void (child.kill('SIGTERM'), await new Promise((r) => child.once('exit', r))) };
    }
    const built = `${root}dist/cli/main.js`;
    const command = target === 'baseline'
      ? [process.execPath, `${this.options.baseline}/dist/cli/main.js`]
      : existsSync(built) ? [process.execPath, built] : [process.execPath, '--import', 'tsx', `${root}src/cli/main.ts`];
    const cpuProf = this.options.cpuProf;
    const proxy = await ProxyProcess.start(
      this.world.pod.name,
      ['--config', this.meshCfg, '--uid', PROXY_UID, '--gid', PROXY_UID,
        '--access-log', target === 'interpose-nolog' ? 'off' : `${this.scratch}/interpose-access.log`,
        '--metrics-port', '0', '--no-dns-capture', ...(target === 'interpose-js' ? ['--no-native-http'] : [])],
      20_000,
      command.flatMap((a, i) => (i === 0 && cpuProf ? [a, '--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : [a])),
    );
    this.proxies.add(proxy);
    return { pid: proxy.pid, stop: async () => void (await proxy.stop(), this.proxies.delete(proxy)) };
  }

  /** The argv that runs `cmd` in the pod as `uid`. */
  asUid(uid: string, cmd: string[]): string[] {
    return ['ip', 'netns', 'exec', this.world.pod.name, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...cmd];
  }

  /** Runs `cmd` in the pod as `uid`; its stdout, or an error naming it. */
  async run(uid: string, cmd: string[]): Promise<string> {
    const [bin, ...rest] = this.asUid(uid, cmd);
    const r = await execa(bin!, rest, { reject: false });
    if (r.exitCode !== 0) throw new Error(`${cmd[0]} failed (${r.exitCode}): ${r.stderr || r.stdout}`);
    return String(r.stdout);
  }

  /** HTTP/1.1 keep-alive saturation: wrk, 1 thread, 16 connections. */
  async wrk(uid: string, seconds: number): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
    const out = await this.run(uid, ['wrk', '-t1', '-c16', `-d${seconds}s`, '--latency', URL_]);
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const dist = (p: string) => wrkMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
    const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
    return { rps, p50: dist('50'), p99: dist('99'), errors };
  }

  /** h2c saturation: h2load, 16 connections × 10 streams; per core from `pid`'s CPU time over the run. */
  async h2c(uid: string, seconds: number, pid: number | undefined, url = URL_): Promise<H2cRun> {
    const cpu0 = pid ? cpuSeconds(pid) : 0;
    const out = await this.run(uid, ['h2load', '-c16', '-m10', `-D${seconds}`, url]);
    const cpu = pid ? cpuSeconds(pid) - cpu0 : 0;
    const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
    const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? 0) + Number(/(\d+) errored/.exec(out)?.[1] ?? 0);
    return { rps, failed, ...(cpu > 0 ? { rpsPerCore: (rps * seconds) / cpu } : {}) };
  }

  /** Stops every target and the origin, deletes the namespaces and the scratch files. */
  async destroy(): Promise<void> {
    for (const p of this.proxies) await p.stop();
    for (const c of this.children) c.kill('SIGKILL');
    await Promise.allSettled(this.children);
    await this.world.destroy();
    rmSync(this.scratch, { recursive: true, force: true });
  }
}
