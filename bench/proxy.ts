/**
 * bench:proxy — the redirect target against a direct connection and HAProxy (1 thread), in the
 * lab's namespaces, one run, ratios against the direct baseline measured in the same run.
 * "direct" runs before any rule exists; HAProxy and interpose then each serve as the
 * transparent target of istio-iptables' REDIRECT (original destination via SO_ORIGINAL_DST),
 * as uid 1337, under the same rules:
 *   bulk throughput (1 GiB upload), new-connection rate (32 concurrent short exchanges),
 *   latency at 1k connections/s (p50/p99 added over direct), and 100k sequential short
 *   connections through interpose (rate per 10k window, TIME_WAIT, proxy fds and RSS).
 * Then the HTTP rows, unless --no-http: keep-alive HTTP/1.1 requests/s and p99 through a
 * ServiceEntry HTTP port, h2c requests/s to it and to an HTTP2 port (HTTP/2 upstream, as gRPC
 * goes), and requests per core, against HAProxy in `mode http` on the same rules, both running
 * at once with the load alternated in slices (bench/http-slices.ts; bench:http and
 * bench:http-per-core measure more of it).
 *   npm run bench:proxy -- [--quick] [--no-http]
 * Needs root, haproxy, wrk and h2load (scripts/install-system-deps.sh). Not part of `npm test`.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';
import { World } from '../src/lab/world/world.js';
import { HTTPBIN } from '../src/lab/world/addresses.js';
import { ProxyProcess } from '../src/lab/world/proxy-process.js';
import { measureInSlices, reportSlices } from './http-slices.js';
import { checkBenchTools } from './http-world.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const peer = [process.execPath, '--import', 'tsx', `${root}bench/proxy-peer.ts`];
const GiB = 1024 ** 3;
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const SINK = 9001;
const ECHO = 9002;

interface Target {
  name: string;
  host: string;
  sink: number;
  echo: number;
}

async function waitReady(child: ResultPromise, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:proxy needs root (network namespaces, rules)');
  const world = await World.create({ prefix: 'bench' });
  const children: ResultPromise[] = [];
  let proxy: ProxyProcess | undefined;
  try {
    const server = execa('ip', ['netns', 'exec', world.world.name, ...peer, 'server', JSON.stringify({ host: HTTPBIN.address, sinkPort: SINK, echoPort: ECHO })], {
      cwd: root,
      reject: false,
      buffer: false,
    });
    children.push(server);
    await waitReady(server, 'bench server');
    await world.inPod(['sysctl', '-qw', 'net.core.somaxconn=4096']);

    const client = async <T>(job: Record<string, unknown>): Promise<T> => {
      const r = await world.inPod([...peer, 'client', JSON.stringify(job)]);
      return JSON.parse(String(r.stdout)) as T;
    };
    /** CPU seconds (user + system, all threads) a process has used so far. */
    const cpuSeconds = (pid: number | undefined): number => {
      if (pid === undefined) return 0;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
    };
    /** CPU seconds of the main thread and of the splice relay thread (named interpose-relay). */
    const threadCpuSeconds = (pid: number): { main: number; relay: number } => {
      const out = { main: 0, relay: 0 };
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
        const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
        if (Number(tid) === pid) out.main += seconds;
        else if (comm === 'interpose-relay') out.relay += seconds;
      }
      return out;
    };
    const measure = async (target: Target, pid?: number) => {
      process.stderr.write(`  ${target.name}: bulk…`);
      const bulk = await client<{ gbitPerSecond: number; bytes: number }>({ mode: 'bulk', host: target.host, port: target.sink, bytes: quick ? GiB / 8 : GiB });
      process.stderr.write(' rate…');
      // A short unmeasured run first, so every target is measured warm (JIT, pools).
      await client({ mode: 'rate', host: target.host, port: target.echo, durationMs: 500, concurrency: 32 });
      const cpu0 = cpuSeconds(pid);
      const threads0 = pid === undefined ? undefined : threadCpuSeconds(pid);
      const rate = await client<{ perSecond: number; failed: number; connections: number }>({ mode: 'rate', host: target.host, port: target.echo, durationMs: quick ? 1000 : 3000, concurrency: 32 });
      // The relay's own CPU per connection: what decides the rate once the machine is saturated.
      const cpuPerConnUs = pid === undefined ? undefined : ((cpuSeconds(pid) - cpu0) * 1e6) / rate.connections;
      let threadsPerConnUs: { main: number; relay: number } | undefined;
      if (pid !== undefined && threads0) {
        const t1 = threadCpuSeconds(pid);
        threadsPerConnUs = {
          main: ((t1.main - threads0.main) * 1e6) / rate.connections,
          relay: ((t1.relay - threads0.relay) * 1e6) / rate.connections,
        };
      }
      process.stderr.write(' latency…\n');
      const latency = await client<{ p50: number; p99: number; failed: number }>({ mode: 'latency', host: target.host, port: target.echo, perSecond: 1000, count: quick ? 1000 : 5000 });
      return { target: target.name, bulk, rate, latency, cpuPerConnUs, threadsPerConnUs };
    };

    process.stderr.write('measuring (one run each):\n');
    const direct = await measure({ name: 'direct', host: HTTPBIN.address, sink: SINK, echo: ECHO });

    // From here on the pod has istio-iptables' rules: the world's range is redirected to 15001
    // and uid 1337's own connections go out. Both proxies are measured as that redirect target,
    // running as uid 1337, so both pay the same NAT and conntrack work on every packet.
    await execa(process.execPath, ['--import', 'tsx', `${root}src/cli/main.ts`, 'istio-iptables', '--network-namespace', world.pod.name,
      '-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-i', '203.0.113.0/24'], { cwd: root });

    // HAProxy as a transparent target: "server 0.0.0.0" connects to the address the client
    // asked for, which HAProxy reads with SO_ORIGINAL_DST as interpose does (Debian builds it
    // with LINUX_TPROXY). Plain TCP, no splicing option: its defaults, one thread.
    const haproxyCfg = `${world.dir}/haproxy.cfg`;
    writeFileSync(
      haproxyCfg,
      [
        'global', '  nbthread 1', '  maxconn 8000', '  uid 1337', '  gid 1337',
        'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s',
        'listen redirected', '  bind 0.0.0.0:15001', '  server original 0.0.0.0', '',
      ].join('\n'),
    );
    const startHaproxy = async () => {
      const child = execa('ip', ['netns', 'exec', world.pod.name, 'haproxy', '-db', '-f', haproxyCfg], { reject: false, buffer: false });
      children.push(child);
      await new Promise((r) => setTimeout(r, 500));
      return {
        pid: child.pid,
        stop: async () => {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        },
      };
    };
    const haproxy = await startHaproxy();
    const viaHaproxy = await measure({ name: 'haproxy (1 thread)', host: HTTPBIN.address, sink: SINK, echo: ECHO }, haproxy.pid);
    await haproxy.stop();

    // interpose, the same way.
    const config = `${world.dir}/mesh.yaml`;
    writeFileSync(config, 'outboundTrafficPolicy:\n  mode: ALLOW_ANY\n');
    // Run the built proxy when there is one: what users run, without the tsx loader.
    const built = `${root}dist/cli/main.js`;
    const startInterpose = () =>
      ProxyProcess.start(
        world.pod.name,
        ['--config', config, '--uid', '1337', '--gid', '1337', '--access-log', 'off', '--metrics-port', '0'],
        20_000,
        existsSync(built) ? [process.execPath, built] : undefined,
      );
    proxy = await startInterpose();
    process.stderr.write(`  (interpose from ${existsSync(built) ? 'dist/' : 'sources via tsx'})\n`);
    const viaInterpose = await measure({ name: 'interpose (transparent)', host: HTTPBIN.address, sink: SINK, echo: ECHO }, proxy.pid);

    // 100k sequential short connections through interpose.
    const pid = proxy.pid!;
    const fds = () => readdirSync(`/proc/${pid}/fd`).length;
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
    const churnCount = quick ? 20_000 : 100_000;
    process.stderr.write(`  interpose: ${churnCount} sequential connections…\n`);
    const before = { fds: fds(), rss: rss() };
    const churn = await client<{ failed: number; windowRates: number[] }>({ mode: 'churn', host: HTTPBIN.address, port: ECHO, count: churnCount, window: 10_000 });
    await new Promise((r) => setTimeout(r, 500));
    const after = { fds: fds(), rss: rss() };
    // TIME_WAIT toward the service holds an ephemeral port (client or proxy upstream side);
    // TIME_WAIT on the proxy's accepting side does not.
    const tw = String((await world.inPod(['ss', '-Htan', 'state', 'time-wait'])).stdout).split('\n').filter(Boolean);
    const twUpstream = tw.filter((l) => l.trim().split(/\s+/)[3]?.endsWith(`:${ECHO}`)).length;
    const timeWait = `${tw.length} (${twUpstream} holding an ephemeral port toward the service)`;
    // Every redirected connection is a NAT entry; a full table would drop new connections.
    const conntrack = async (what: string) =>
      String((await world.inPod(['cat', `/proc/sys/net/netfilter/${what}`], { reject: false })).stdout).trim() || '?';
    const conntrackLine = `conntrack entries in the pod: ${await conntrack('nf_conntrack_count')} of ${await conntrack('nf_conntrack_max')}`;
    await proxy.stop();
    proxy = undefined;

    // The connection rate again, in alternating rounds: load from elsewhere on the machine
    // drifts over seconds, and the single runs above are minutes apart. Each HAProxy round is
    // paired with the interpose round right after it; the median of the pairs' ratios is the
    // figure that load moves least.
    const rounds = quick ? 3 : 5;
    process.stderr.write(`  connection rate, ${rounds} alternating rounds…\n`);
    const roundRate = async () => {
      await client({ mode: 'rate', host: HTTPBIN.address, port: ECHO, durationMs: 300, concurrency: 32 });
      return (await client<{ perSecond: number }>({ mode: 'rate', host: HTTPBIN.address, port: ECHO, durationMs: 1000, concurrency: 32 })).perSecond;
    };
    const pairs: { haproxy: number; interpose: number }[] = [];
    for (let i = 0; i < rounds; i++) {
      const h = await startHaproxy();
      const viaH = await roundRate();
      await h.stop();
      proxy = await startInterpose();
      const viaI = await roundRate();
      await proxy.stop();
      proxy = undefined;
      pairs.push({ haproxy: viaH, interpose: viaI });
    }
    const ratios = pairs.map((p) => p.interpose / p.haproxy).sort((a, b) => a - b);
    const medianRatio = ratios[Math.floor(ratios.length / 2)]!;

    const rows = [direct, viaHaproxy, viaInterpose];
    const f = (n: number, d = 2) => n.toFixed(d);
    console.log('\nbench:proxy — one run; ratios are against "direct" from this same run\n');
    console.log('target                    | bulk Gbit/s (×direct) | conn/s (×direct)  | p50 ms (+added) | p99 ms (+added)');
    console.log('--------------------------|-----------------------|-------------------|-----------------|----------------');
    for (const r of rows) {
      console.log(
        `${r.target.padEnd(26)}| ${f(r.bulk.gbitPerSecond).padStart(6)} (${f(r.bulk.gbitPerSecond / direct.bulk.gbitPerSecond)}×)`.padEnd(50) +
          `| ${f(r.rate.perSecond, 0).padStart(6)} (${f(r.rate.perSecond / direct.rate.perSecond)}×)`.padEnd(20) +
          `| ${f(r.latency.p50, 3)} (+${f(r.latency.p50 - direct.latency.p50, 3)})`.padEnd(18) +
          `| ${f(r.latency.p99, 3)} (+${f(r.latency.p99 - direct.latency.p99, 3)})`,
      );
    }
    console.log(
      `\ninterpose vs haproxy: throughput ${f(viaInterpose.bulk.gbitPerSecond / viaHaproxy.bulk.gbitPerSecond)}×, ` +
        `connection rate ${f(viaInterpose.rate.perSecond / viaHaproxy.rate.perSecond)}×`,
    );
    console.log(
      `connection rate in ${rounds} alternating rounds (haproxy → interpose conn/s): ` +
        pairs.map((p) => `${f(p.haproxy, 0)} → ${f(p.interpose, 0)}`).join(', ') +
        `\n  interpose vs haproxy, median of the rounds' ratios: ${f(medianRatio)}× (all: ${ratios.map((r) => f(r)).join(' ')})`,
    );
    console.log(
      `relay CPU per connection in the rate run (user+system, all threads): haproxy ${f(viaHaproxy.cpuPerConnUs ?? 0, 0)} µs, ` +
        `interpose ${f(viaInterpose.cpuPerConnUs ?? 0, 0)} µs (main thread ${f(viaInterpose.threadsPerConnUs?.main ?? 0, 0)}, ` +
        `relay thread ${f(viaInterpose.threadsPerConnUs?.relay ?? 0, 0)})`,
    );
    const failures = rows.map((r) => r.rate.failed + r.latency.failed).reduce((a, b) => a + b, 0);
    console.log(`failed exchanges in rate/latency runs: ${failures}`);
    console.log(
      `\n${churnCount} sequential connections through interpose: ${churn.failed} failed; conn/s per 10k window: ` +
        churn.windowRates.map((r) => f(r, 0)).join(' ') +
        `\n  last/first window: ${f(churn.windowRates.at(-1)! / churn.windowRates[0]!)}×; TIME_WAIT sockets in the pod afterwards: ${timeWait}` +
        `\n  proxy fds ${before.fds} → ${after.fds}; RSS ${f(before.rss, 1)} → ${f(after.rss, 1)} MiB; ${conntrackLine}`,
    );
  } finally {
    await proxy?.stop();
    for (const c of children) c.kill('SIGKILL');
    await world.destroy();
  }
}

await main();
if (!args.has('--no-http')) {
  await checkBenchTools();
  const options = { targets: ['haproxy', 'interpose'] as const, slices: quick ? 2 : 4, seconds: 3 };
  reportSlices(await measureInSlices(options), options, 'bench:proxy, HTTP rows');
}
