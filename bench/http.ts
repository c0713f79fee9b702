/**
 * bench:http — HTTP/1.1 keep-alive (and h2c) through a ServiceEntry HTTP port, in the lab's
 * namespaces, one run, alternating rounds, ratios against HAProxy and direct from that run.
 *
 * The world (origin, rules, targets) is bench/http-world.ts's; the targets are measured in turn
 * in every round: direct, haproxy, interpose, and on request (--only, --baseline)
 * haproxy-nolog, interpose-nolog, interpose-js and baseline.
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
 *   npm run bench:http -- [--rounds N] [--seconds S] [--idle N] [--latency-seconds S] [--only direct,haproxy,haproxy-nolog,interpose,interpose-nolog,interpose-js] [--cpu-prof DIR]
 *
 * Needs root, haproxy, wrk, h2load (scripts/install-system-deps.sh). Not part of `npm test`.
 */
import { readFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import { HTTPBIN } from '../src/lab/world/addresses.js';
import { APP_UID, checkBenchTools, cpuSeconds, H2_URL, HttpBenchWorld, median, PORT, PROXY_UID, root, URL_, type H2cRun, type TargetName } from './http-world.js';

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

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

async function main(): Promise<void> {
  await checkBenchTools();
  const bench = await HttpBenchWorld.create('bhttp', { cpuProf: CPU_PROF, baseline: BASELINE });
  const { scratch } = bench;
  try {
    const run = (uid: string, cmd: string[]) => bench.run(uid, cmd);

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

    /** The proxy's RSS with IDLE keep-alive connections open, less its RSS before, per connection. */
    const idleRss = async (uid: string, pid: number): Promise<number> => {
      await new Promise((r) => setTimeout(r, 300));
      const before = rssKiB(pid);
      const [bin, ...rest] = bench.asUid(uid, [process.execPath, '--import', 'tsx', `${root}bench/http-idle-peer.ts`, HTTPBIN.address, String(PORT), String(IDLE), `${HTTPBIN.host}:${PORT}`]);
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
      const t = await bench.start(target);
      try {
        const uid = target === 'direct' ? PROXY_UID : APP_UID;
        await bench.wrk(uid, 1); // warm: JIT, pools, caches
        const cpu0 = t.pid ? cpuSeconds(t.pid) : 0;
        const sat = await bench.wrk(uid, SECONDS);
        const cpu = t.pid ? cpuSeconds(t.pid) - cpu0 : undefined;
        const requests = sat.rps * SECONDS;
        const fixed: Round['fixed'] = {};
        for (const rate of [1000, 5000]) fixed[rate] = await fixedRate(uid, rate, Math.max(2, SECONDS / 2));
        const spread = await spreadRate(uid, 1000, Math.max(2, SECONDS / 2));
        const even = await evenRate(uid, 1000, LATENCY_SECONDS);
        // As long as the saturation run: the per-core figure of a 2 s run moved by ±20 % between runs.
        const h2 = await bench.h2c(uid, SECONDS, t.pid);
        const h2ToH2 = await bench.h2c(uid, SECONDS, t.pid, H2_URL);
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

    const targets = (['direct', 'haproxy', 'haproxy-nolog', 'interpose', 'interpose-nolog', 'interpose-js', 'baseline'] as const).filter((t) => ONLY.has(t) || (t === 'baseline' && BASELINE));
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
    await bench.destroy();
  }
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
  // The targets of a round run tens of seconds apart, and the machine drifts meanwhile.
  console.log('(per-core ratios here come from runs tens of seconds apart and move by ±20 % between runs; ' +
    'bench:http-per-core measures them with the proxies running at once)');
  const pairs = [['interpose', 'haproxy'], ['interpose-nolog', 'haproxy-nolog'], ['interpose-js', 'haproxy'], ['interpose', 'interpose-js'], ['interpose', 'baseline']] as const;
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
