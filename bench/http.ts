/**
 * bench:http — HTTP/1.1 keep-alive (and h2c) through a ServiceEntry HTTP port, in the lab's
 * namespaces, one run, alternating rounds, ratios against HAProxy and direct from that run.
 *
 * The origin is HAProxy in the world namespace answering every GET with 1 KiB itself (so the
 * origin costs little and is the same for every target). In the pod, istio-iptables' rules
 * redirect the world's range to 15001; the targets, measured in turn in every round:
 *   direct     — the load generator runs as uid 1337, which the rules let out unredirected;
 *   haproxy    — HAProxy 1 thread, `mode http`, transparent (server 0.0.0.0 = SO_ORIGINAL_DST),
 *                as uid 1337, a Host check, the route's 15 s server timeout, httplog to a file;
 *   interpose  — `interpose proxy` as uid 1337: REGISTRY_ONLY, a ServiceEntry HTTP port, a
 *                VirtualService route with a 15 s timeout, the TEXT access log to a file;
 *   interpose-js — the same with --no-native-http: every request through Node's HTTP server
 *                and client (the native fast path off), for the before/after in one run.
 * The proxied targets get the load from an app uid (1000), redirected by the rules.
 * Per target and round: saturation (wrk, 16 connections, 1 thread: requests/s, p50/p99, the
 * proxy's CPU per request and requests per CPU-second), fixed rates of 1k and 5k requests/s
 * (h2load --rps, per-request latencies from its log: p50/p99; one h2load's clients fire
 * together, so these arrive in bursts of 10 and 20), 1k requests/s evenly (one connection, a
 * request every ms, for --latency-seconds: the latency a proxy adds to a request that does not
 * queue behind others), 1k requests/s spread out (10 one-client h2loads started 1 ms apart),
 * h2c saturation (h2load, 16 connections × 10 streams) to the HTTP port (HTTP/1.1 upstream) and
 * to an HTTP2 port (HTTP/2 upstream, as gRPC goes: the origin's second listener speaks h2c), and
 * the proxy's RSS per idle keep-alive connection (1000 held open).
 *
 *   npm run bench:http -- [--rounds N] [--seconds S] [--idle N] [--latency-seconds S] [--only direct,haproxy,interpose,interpose-js] [--cpu-prof DIR]
 *
 * Needs root, haproxy, wrk, h2load (scripts/install-system-deps.sh). Not part of `npm test`.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';
import { World } from '../src/lab/world/world.js';
import { HTTPBIN } from '../src/lab/world/addresses.js';
import { ProxyProcess } from '../src/lab/world/proxy-process.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const ROUNDS = Number(flag('--rounds', '3'));
const SECONDS = Number(flag('--seconds', '4'));
const IDLE = Number(flag('--idle', '1000'));
/** How long the evenly paced 1k/s run lasts: 10 s gives 10,000 latencies, 100 above the p99. */
const LATENCY_SECONDS = Number(flag('--latency-seconds', '10'));
const ONLY = new Set(flag('--only', 'direct,haproxy,interpose').split(','));
/** A directory for interpose's CPU profiles (node --cpu-prof), one per interpose run. */
const CPU_PROF = flag('--cpu-prof', '');
/** Another checkout's built interpose (DIR/dist/cli/main.js), measured as target "baseline": before/after in one run. */
const BASELINE = flag('--baseline', '');
const PORT = 8080;
/** The ServiceEntry's HTTP2 port: HTTP/2 upstream, as GRPC ports are proxied. */
const H2_PORT = 8081;
const URL_ = `http://${HTTPBIN.host}:${PORT}/`;
const APP_UID = '1000';
const PROXY_UID = '1337';
const BODY = 'x'.repeat(1024);

type TargetName = 'direct' | 'haproxy' | 'interpose' | 'interpose-js' | 'baseline';

interface Round {
  target: TargetName;
  sat: { rps: number; p50: number; p99: number; errors: number };
  cpuUsPerRequest?: number;
  rpsPerCore?: number;
  fixed: Record<number, { achieved: number; p50: number; p99: number; failed: number }>;
  /** 1k/s from one connection, a request every ms (see evenRate). */
  even: { achieved: number; p50: number; p99: number; failed: number };
  /** 1k/s from clients whose requests do not coincide (see spreadRate). */
  spread: { achieved: number; p50: number; p99: number; failed: number };
  /** h2c saturation; per core from the proxy's CPU time over the h2load run (/proc, as the saturation run). */
  h2c: H2cRun;
  /** h2c to the HTTP2 port: HTTP/2 on both sides of the proxy. */
  h2cToH2: H2cRun;
  idleKiBPerConn?: number;
}

interface H2cRun {
  rps: number;
  failed: number;
  rpsPerCore?: number;
}

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** wrk's latency figures ("412.00us", "1.20ms", "1.01s") in milliseconds. */
function wrkMs(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : v * 1000;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:http needs root (network namespaces, rules)');
  for (const tool of ['haproxy', 'wrk', 'h2load']) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) {
      throw new Error(`bench:http needs ${tool} (scripts/install-system-deps.sh)`);
    }
  }
  const scratch = mkdtempSync(`${tmpdir()}/bench-http-`);
  chmodSync(scratch, 0o777); // the load generator (an app uid) writes its latency logs here
  const world = await World.create({ prefix: 'bhttp' });
  const children: ResultPromise[] = [];
  let proxy: ProxyProcess | undefined;
  try {
    // The origin: HAProxy answering 1 KiB itself, in the world.
    const originCfg = `${scratch}/origin.cfg`;
    writeFileSync(originCfg, [
      'global', '  nbthread 1', '  maxconn 8000',
      'defaults', '  mode http', '  timeout client 1h', '  timeout server 1h', '  timeout connect 5s', '  timeout http-keep-alive 1h',
      'frontend origin', `  bind ${HTTPBIN.address}:${PORT}`, `  bind ${HTTPBIN.address}:${H2_PORT} proto h2`,
      `  http-request return status 200 content-type text/plain string "${BODY}"`, '',
    ].join('\n'));
    const origin = execa('ip', ['netns', 'exec', world.world.name, 'haproxy', '-db', '-f', originCfg], { reject: false, buffer: false, stdout: 'ignore', stderr: 'inherit' });
    children.push(origin);
    await world.inPod(['sysctl', '-qw', 'net.core.somaxconn=4096']);
    await world.inWorld(['sysctl', '-qw', 'net.core.somaxconn=4096']);
    await new Promise((r) => setTimeout(r, 500));

    await execa(process.execPath, ['--import', 'tsx', `${root}src/cli/main.ts`, 'istio-iptables', '--network-namespace', world.pod.name,
      '-p', '15001', '-z', '15006', '-u', PROXY_UID, '-g', PROXY_UID, '-i', '203.0.113.0/24'], { cwd: root });

    // HAProxy as the transparent target, in HTTP mode, with the same policy as interpose's config.
    const haproxyCfg = `${scratch}/haproxy.cfg`;
    writeFileSync(haproxyCfg, [
      'global', '  nbthread 1', '  maxconn 8000', `  uid ${PROXY_UID}`, `  gid ${PROXY_UID}`, '  log stdout format raw local0',
      'defaults', '  mode http', '  log global', '  option httplog', '  timeout connect 10s', '  timeout client 1h',
      '  timeout server 15s', '  timeout http-keep-alive 1h',
      'frontend redirected', '  bind 0.0.0.0:15001',
      // REGISTRY_ONLY with one registered host: anything else is refused as BlackHoleCluster would be.
      `  http-request deny deny_status 502 unless { hdr(host) -m dom ${HTTPBIN.host} }`,
      `  use_backend httpbin_h2 if { dst_port ${H2_PORT} }`,
      '  default_backend httpbin',
      'backend httpbin', '  http-request set-header x-forwarded-proto http', '  server original 0.0.0.0',
      // The HTTP2 port's upstream in HTTP/2, as Envoy (and interpose) speak to HTTP2/GRPC ports.
      'backend httpbin_h2', '  http-request set-header x-forwarded-proto http', '  server original 0.0.0.0 proto h2', '',
    ].join('\n'));
    const haproxyLog = `${scratch}/haproxy-access.log`;

    const meshCfg = `${world.dir}/mesh.yaml`;
    writeFileSync(meshCfg, `outboundTrafficPolicy: {mode: REGISTRY_ONLY}
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
    const interposeLog = `${scratch}/interpose-access.log`;
    const built = `${root}dist/cli/main.js`;

    /** Starts a target; returns its pid (undefined for direct) and how to stop it. */
    const start = async (target: TargetName): Promise<{ pid?: number; stop: () => Promise<void> }> => {
      if (target === 'direct') return { stop: async () => {} };
      if (target === 'haproxy') {
        const child = execa('ip', ['netns', 'exec', world.pod.name, 'haproxy', '-db', '-f', haproxyCfg],
          { reject: false, buffer: false, stdout: { file: haproxyLog, append: true } as never });
        children.push(child);
        await new Promise((r) => setTimeout(r, 500));
        return { pid: child.pid, stop: async () => void (child.kill('SIGTERM'), await new Promise((r) => child.once('exit', r))) };
      }
      const command = target === 'baseline'
        ? [process.execPath, `${BASELINE}/dist/cli/main.js`]
        : existsSync(built) ? [process.execPath, built] : [process.execPath, '--import', 'tsx', `${root}src/cli/main.ts`];
      proxy = await ProxyProcess.start(
        world.pod.name,
        ['--config', meshCfg, '--uid', PROXY_UID, '--gid', PROXY_UID, '--access-log', interposeLog, '--metrics-port', '0', '--no-dns-capture',
          ...(target === 'interpose-js' ? ['--no-native-http'] : [])],
        20_000,
        command.flatMap((a, i) =>
          i === 0 && CPU_PROF ? [a, '--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [a]),
      );
      const p = proxy;
      return { pid: p.pid, stop: async () => void (await p.stop(), (proxy = undefined)) };
    };

    const asUid = (uid: string, cmd: string[]) => ['ip', 'netns', 'exec', world.pod.name, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...cmd];
    const run = async (uid: string, cmd: string[]) => {
      const [bin, ...rest] = asUid(uid, cmd);
      const r = await execa(bin!, rest, { reject: false });
      if (r.exitCode !== 0) throw new Error(`${cmd[0]} failed (${r.exitCode}): ${r.stderr || r.stdout}`);
      return String(r.stdout);
    };

    const wrk = async (uid: string, seconds: number) => {
      const out = await run(uid, ['wrk', '-t1', '-c16', `-d${seconds}s`, '--latency', URL_]);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const dist = (p: string) => wrkMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
      return { rps, p50: dist('50'), p99: dist('99'), errors };
    };

    /** Per-request latencies (ms, sorted) and failures from h2load log files. */
    const latencies = (logFiles: string[], out: string) => {
      const lines = logFiles.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t')));
      const ok = lines.filter((c) => c[1] === '200');
      const ms = ok.map((c) => Number(c[2]) / 1000).sort((a, b) => a - b);
      const failed = [...out.matchAll(/(\d+) failed/g)].reduce((n, m) => n + Number(m[1]), 0) + lines.length - ok.length;
      return { ms, failed };
    };

    const fixedRate = async (uid: string, rate: number, seconds: number) => {
      const clients = rate >= 5000 ? 20 : 10;
      const logFile = `${scratch}/h2load-${rate}.log`;
      rmSync(logFile, { force: true });
      const out = await run(uid, ['h2load', '--h1', `-c${clients}`, '-m1', `--rps=${rate / clients}`, `-D${seconds}`, `--log-file=${logFile}`, URL_]);
      const { ms, failed } = latencies([logFile], out);
      return { achieved: ms.length / seconds, p50: percentile(ms, 0.5), p99: percentile(ms, 0.99), failed };
    };

    /**
     * The same rate from clients that do not fire together. One h2load's clients share one
     * timer, so at 1k/s its 10 clients send 10 requests at once every 10 ms and the last one
     * waits for the other nine: what the "1k/s" column measures is a burst of 10. Here 10 h2load
     * processes of one client each start 1 ms apart, so requests arrive about one per ms.
     */
    const spreadRate = async (uid: string, rate: number, seconds: number) => {
      const clients = 10;
      const files = Array.from({ length: clients }, (_, i) => `${scratch}/h2load-spread-${i}.log`);
      for (const f of files) rmSync(f, { force: true });
      const outs = await Promise.all(files.map(async (file, i) => {
        await new Promise((r) => setTimeout(r, (i * 1000) / rate));
        return run(uid, ['h2load', '--h1', '-c1', '-m1', `--rps=${rate / clients}`, `-D${seconds}`, `--log-file=${file}`, URL_]);
      }));
      const { ms, failed } = latencies(files, outs.join('\n'));
      return { achieved: ms.length / seconds, p50: percentile(ms, 0.5), p99: percentile(ms, 0.99), failed };
    };

    /**
     * 1k/s as one stream of requests a millisecond apart (one h2load client): no request queues
     * behind another in the proxy, so the added latency is the proxy's own path (and the
     * scheduler's). Longer than the other runs: its p99 is the figure the target is on.
     */
    const evenRate = async (uid: string, rate: number, seconds: number) => {
      const logFile = `${scratch}/h2load-even.log`;
      rmSync(logFile, { force: true });
      const out = await run(uid, ['h2load', '--h1', '-c1', '-m1', `--rps=${rate}`, `-D${seconds}`, `--log-file=${logFile}`, URL_]);
      const { ms, failed } = latencies([logFile], out);
      return { achieved: ms.length / seconds, p50: percentile(ms, 0.5), p99: percentile(ms, 0.99), failed };
    };

    const h2c = async (uid: string, seconds: number, pid: number | undefined, url = URL_): Promise<H2cRun> => {
      const cpu0 = pid ? cpuSeconds(pid) : 0;
      const out = await run(uid, ['h2load', '-c16', '-m10', `-D${seconds}`, url]);
      const cpu = pid ? cpuSeconds(pid) - cpu0 : 0;
      const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
      const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? 0) + Number(/(\d+) errored/.exec(out)?.[1] ?? 0);
      return { rps, failed, ...(cpu > 0 ? { rpsPerCore: (rps * seconds) / cpu } : {}) };
    };

    /** The proxy's RSS with IDLE keep-alive connections open, less its RSS before, per connection. */
    const idleRss = async (uid: string, pid: number): Promise<number> => {
      await new Promise((r) => setTimeout(r, 300));
      const before = rssKiB(pid);
      const [bin, ...rest] = asUid(uid, [process.execPath, '--import', 'tsx', `${root}bench/http-idle-peer.ts`, HTTPBIN.address, String(PORT), String(IDLE), `${HTTPBIN.host}:${PORT}`]);
      const holder = execa(bin!, rest, { cwd: root, reject: false, buffer: false, stdin: 'pipe' });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('idle connections did not open')), 60_000);
        holder.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) (clearTimeout(timer), resolve());
        });
        void holder.then((r) => reject(new Error(`idle holder exited: ${r.stderr ?? r.exitCode}`)));
      });
      await new Promise((r) => setTimeout(r, 300));
      const after = rssKiB(pid);
      holder.stdin?.end();
      await holder;
      return (after - before) / IDLE;
    };

    const measure = async (target: TargetName): Promise<Round> => {
      const t = await start(target);
      try {
        const uid = target === 'direct' ? PROXY_UID : APP_UID;
        await wrk(uid, 1); // warm: JIT, pools, caches
        const cpu0 = t.pid ? cpuSeconds(t.pid) : 0;
        const sat = await wrk(uid, SECONDS);
        const cpu = t.pid ? cpuSeconds(t.pid) - cpu0 : undefined;
        const requests = sat.rps * SECONDS;
        const fixed: Round['fixed'] = {};
        for (const rate of [1000, 5000]) fixed[rate] = await fixedRate(uid, rate, Math.max(2, SECONDS / 2));
        const spread = await spreadRate(uid, 1000, Math.max(2, SECONDS / 2));
        const even = await evenRate(uid, 1000, LATENCY_SECONDS);
        // As long as the saturation run: the per-core figure of a 2 s run moved by ±20 % between runs.
        const h2 = await h2c(uid, SECONDS, t.pid);
        const h2ToH2 = await h2c(uid, SECONDS, t.pid, `http://${HTTPBIN.host}:${H2_PORT}/`);
        const idle = t.pid ? await idleRss(uid, t.pid) : undefined;
        return {
          target,
          sat,
          ...(cpu !== undefined ? { cpuUsPerRequest: (cpu * 1e6) / requests, rpsPerCore: requests / cpu } : {}),
          fixed,
          even,
          spread,
          h2c: h2,
          h2cToH2: h2ToH2,
          ...(idle !== undefined ? { idleKiBPerConn: idle } : {}),
        };
      } finally {
        await t.stop();
      }
    };

    const targets = (['direct', 'haproxy', 'interpose', 'interpose-js', 'baseline'] as const).filter((t) => ONLY.has(t) || (t === 'baseline' && BASELINE));
    const rounds: Round[][] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Rotate the order so no target always follows the same one.
      const order = targets.map((_, k) => targets[(k + i) % targets.length]!);
      process.stderr.write(`round ${i + 1}/${ROUNDS}: ${order.join(' → ')}\n`);
      const round: Round[] = [];
      for (const target of order) {
        process.stderr.write(`  ${target}…`);
        const r = await measure(target);
        process.stderr.write(` ${r.sat.rps.toFixed(0)} req/s\n`);
        round.push(r);
      }
      rounds.push(round);
    }
    report(rounds, targets);
  } finally {
    await proxy?.stop();
    for (const c of children) c.kill('SIGKILL');
    await world.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function report(rounds: Round[][], targets: readonly TargetName[]): void {
  const f = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));
  const of = (target: TargetName) => rounds.map((r) => r.find((x) => x.target === target)).filter((x): x is Round => x !== undefined);
  const med = (target: TargetName, pick: (r: Round) => number | undefined) => median(of(target).map((r) => pick(r) ?? NaN));
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\nbench:http — ${rounds.length} alternating rounds of ${SECONDS} s saturation; medians over rounds; ` +
    `1 KiB GETs, HTTP/1.1 keep-alive; load average at the end ${load}\n`);
  // "1k/s even": one connection, a request every ms (evenRate); "1k/s bursts": 10 requests at
  // once every 10 ms (one h2load, fixedRate); "1k/s spread": 10 connections about 1 ms apart (spreadRate).
  console.log('target      | sat req/s | sat p50/p99 ms | proxy CPU µs/req | req/s per core | 1k/s even p50/p99 ms | 1k/s bursts p50/p99 ms | 1k/s spread p50/p99 ms | 5k/s achieved, p50/p99 ms | h2c req/s | h2c req/s per core | h2c→h2 req/s | h2c→h2 per core | idle KiB/conn');
  console.log('------------|-----------|----------------|------------------|----------------|----------------------|------------------------|------------------------|---------------------------|-----------|--------------------|--------------|-----------------|--------------');
  for (const t of targets) {
    console.log([
      t.padEnd(12),
      f(med(t, (r) => r.sat.rps)).padStart(10) + ' ',
      ` ${f(med(t, (r) => r.sat.p50), 2)} / ${f(med(t, (r) => r.sat.p99), 2)}`.padEnd(16),
      ` ${f(med(t, (r) => r.cpuUsPerRequest), 1)}`.padEnd(18),
      ` ${f(med(t, (r) => r.rpsPerCore))}`.padEnd(16),
      ` ${f(med(t, (r) => r.even.p50), 2)} / ${f(med(t, (r) => r.even.p99), 2)}`.padEnd(22),
      ` ${f(med(t, (r) => r.fixed[1000]!.p50), 2)} / ${f(med(t, (r) => r.fixed[1000]!.p99), 2)}`.padEnd(24),
      ` ${f(med(t, (r) => r.spread.p50), 2)} / ${f(med(t, (r) => r.spread.p99), 2)}`.padEnd(24),
      ` ${f(med(t, (r) => r.fixed[5000]!.achieved))}, ${f(med(t, (r) => r.fixed[5000]!.p50), 2)} / ${f(med(t, (r) => r.fixed[5000]!.p99), 2)}`.padEnd(27),
      ` ${f(med(t, (r) => r.h2c.rps))}`.padEnd(11),
      ` ${f(med(t, (r) => r.h2c.rpsPerCore))}`.padEnd(20),
      ` ${f(med(t, (r) => r.h2cToH2.rps))}`.padEnd(14),
      ` ${f(med(t, (r) => r.h2cToH2.rpsPerCore))}`.padEnd(17),
      ` ${f(med(t, (r) => r.idleKiBPerConn), 1)}`,
    ].join('|'));
  }
  const failures = rounds.flat().reduce((n, r) => n + r.sat.errors + r.h2c.failed + r.h2cToH2.failed + r.spread.failed + r.even.failed + Object.values(r.fixed).reduce((m, x) => m + x.failed, 0), 0);
  console.log(`\nfailed or non-2xx requests over all runs: ${failures}`);
  const pairs = [['interpose', 'haproxy'], ['interpose-js', 'haproxy'], ['interpose', 'interpose-js'], ['interpose', 'baseline']] as const;
  for (const [subject, against] of pairs) {
    if (!targets.includes(subject) || !targets.includes(against)) continue;
    // Ratios per round (both measured seconds apart), then the median of those.
    const ratio = (pick: (r: Round) => number | undefined) =>
      median(rounds.map((r) => {
        const i = r.find((x) => x.target === subject);
        const h = r.find((x) => x.target === against);
        return i && h ? (pick(i) ?? NaN) / (pick(h) ?? NaN) : NaN;
      }));
    console.log(`${subject} ÷ ${against} (median of per-round ratios): ` +
      `saturation req/s ${f(ratio((r) => r.sat.rps), 2)}×, req/s per core ${f(ratio((r) => r.rpsPerCore), 2)}×, ` +
      `CPU per request ${f(ratio((r) => r.cpuUsPerRequest), 2)}×, h2c req/s ${f(ratio((r) => r.h2c.rps), 2)}× (per core ${f(ratio((r) => r.h2c.rpsPerCore), 2)}×), ` +
      `h2c→h2 req/s ${f(ratio((r) => r.h2cToH2.rps), 2)}× (per core ${f(ratio((r) => r.h2cToH2.rpsPerCore), 2)}×), ` +
      `idle RSS per connection ${f(ratio((r) => r.idleKiBPerConn), 2)}×`);
  }
  if (targets.includes('direct')) {
    const addedBy = (t: TargetName, pick: (r: Round) => number) =>
      median(rounds.map((r) => {
        const x = r.find((y) => y.target === t);
        const d = r.find((y) => y.target === 'direct');
        return x && d ? pick(x) - pick(d) : NaN;
      }));
    const added = (t: TargetName, rate: number) => addedBy(t, (r) => r.fixed[rate]!.p99);
    for (const t of targets.filter((x) => x !== 'direct')) {
      const satRatio = median(rounds.map((r) => (r.find((x) => x.target === t)?.sat.rps ?? NaN) / (r.find((x) => x.target === 'direct')?.sat.rps ?? NaN)));
      console.log(`${t} vs direct (median of per-round differences): saturation ${f(satRatio, 2)}×; ` +
        `p99 added at 1k/s evenly ${f(addedBy(t, (r) => r.even.p99), 2)} ms (p50 ${f(addedBy(t, (r) => r.even.p50), 2)} ms), ` +
        `in bursts of 10 ${f(added(t, 1000), 2)} ms, spread over 10 connections ${f(addedBy(t, (r) => r.spread.p99), 2)} ms, at 5k/s ${f(added(t, 5000), 2)} ms`);
    }
  }
}

await main();
