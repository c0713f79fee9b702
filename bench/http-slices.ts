/**
 * Requests per CPU-second of HTTP proxies measured at once: every target runs in its own copy of
 * bench:http's world, and the load goes to one target at a time in short slices, the order
 * rotated each slice, so that a drift of the machine falls on every target alike.
 * bench:http-per-core is its command line; bench:proxy prints its HTTP rows with it.
 *
 * Per workload (HTTP/1.1 keep-alive with wrk -t1 -c16; h2c with h2load -c16 -m10 to the HTTP
 * port, HTTP/1.1 upstream; h2c to the HTTP2 port, HTTP/2 upstream, as gRPC goes) and target:
 * requests and the proxy's CPU time (/proc/PID/stat, all threads) summed over the slices, and
 * their quotient; the ratios against HAProxy of the sums, and the median, lowest and highest
 * of the per-slice ratios.
 */
import { readFileSync } from 'node:fs';
import { APP_UID, cpuSeconds, H2_URL, HttpBenchWorld, median, URL_, type RunningTarget, type TargetName } from './http-world.js';

export type Workload = 'http1' | 'h2c' | 'h2c→h2';
export const WORKLOADS: readonly Workload[] = ['http1', 'h2c', 'h2c→h2'];

/** One target's load for one slice: requests done, their rate, the proxy's CPU seconds meanwhile. */
export interface Slice {
  requests: number;
  rps: number;
  cpu: number;
  failed: number;
  /** wrk's p99 (HTTP/1.1 only; h2load prints no percentiles), ms. */
  p99?: number;
}

export interface SliceOptions {
  targets: readonly TargetName[];
  slices: number;
  seconds: number;
  /** A built checkout run as target "baseline". */
  baseline?: string;
}

export type SliceResults = Map<string, Slice[]>;
export const sliceKey = (name: TargetName, w: Workload) => `${name} ${w}`;

/** Starts every target in its own world, warms each, runs the slices; deletes the worlds after. */
export async function measureInSlices(o: SliceOptions): Promise<SliceResults> {
  const worlds: HttpBenchWorld[] = [];
  const running = new Map<TargetName, { bench: HttpBenchWorld; target: RunningTarget }>();
  try {
    for (const [i, name] of o.targets.entries()) {
      const bench = await HttpBenchWorld.create(`bcore${i}`, { baseline: o.baseline });
      worlds.push(bench);
      running.set(name, { bench, target: await bench.start(name) });
    }

    const load = async (name: TargetName, workload: Workload, seconds: number): Promise<Slice> => {
      const { bench, target } = running.get(name)!;
      const pid = target.pid!;
      const cpu0 = cpuSeconds(pid);
      let run: { rps: number; failed: number; p99?: number };
      if (workload === 'http1') {
        const r = await bench.wrk(APP_UID, seconds);
        run = { rps: r.rps, failed: r.errors, p99: r.p99 };
      } else {
        run = await bench.h2c(APP_UID, seconds, undefined, workload === 'h2c' ? URL_ : H2_URL);
      }
      const cpu = cpuSeconds(pid) - cpu0;
      const requests = run.rps * seconds;
      if (!(requests > 0) || !(cpu > 0)) throw new Error(`${name}, ${workload}: no requests or no CPU time measured (${requests} requests, ${cpu} s)`);
      return { requests, rps: run.rps, cpu, failed: run.failed, ...(run.p99 !== undefined ? { p99: run.p99 } : {}) };
    };

    // Warm every target on every workload (JIT, pools, caches) before anything counts.
    for (const name of o.targets) for (const w of WORKLOADS) await load(name, w, 1);

    const results: SliceResults = new Map();
    for (let i = 0; i < o.slices; i++) {
      for (const w of WORKLOADS) {
        // Rotate the order so no target always goes first.
        const order = o.targets.map((_, k) => o.targets[(k + i) % o.targets.length]!);
        for (const name of order) {
          const s = await load(name, w, o.seconds);
          results.set(sliceKey(name, w), [...(results.get(sliceKey(name, w)) ?? []), s]);
        }
      }
      process.stderr.write(`slice ${i + 1}/${o.slices}\n`);
    }
    return results;
  } finally {
    for (const b of worlds) await b.destroy();
  }
}

/** Prints the table and the ratios. */
export function reportSlices(results: SliceResults, o: SliceOptions, title: string): void {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const sum = (xs: Slice[], pick: (s: Slice) => number) => xs.reduce((a, s) => a + pick(s), 0);
  const perCore = (xs: Slice[]) => sum(xs, (s) => s.requests) / sum(xs, (s) => s.cpu);
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\n${title} — ${o.slices} slices of ${o.seconds} s per target and workload, targets running at once, ` +
    `1 KiB GETs; load average at the end ${loadavg}\n`);
  console.log('target          | workload | req/s (median) | p99 ms (median) | requests | proxy CPU s | req/s per core | CPU µs/req | failed');
  console.log('----------------|----------|----------------|-----------------|----------|-------------|----------------|------------|-------');
  for (const name of o.targets) {
    for (const w of WORKLOADS) {
      const xs = results.get(sliceKey(name, w)) ?? [];
      console.log([
        name.padEnd(16),
        ` ${w}`.padEnd(10),
        ` ${f(median(xs.map((s) => s.rps)))}`.padEnd(16),
        ` ${w === 'http1' ? f(median(xs.map((s) => s.p99 ?? NaN)), 2) : '-'}`.padEnd(17),
        ` ${f(sum(xs, (s) => s.requests))}`.padEnd(10),
        ` ${f(sum(xs, (s) => s.cpu), 2)}`.padEnd(13),
        ` ${f(perCore(xs))}`.padEnd(16),
        ` ${f((sum(xs, (s) => s.cpu) * 1e6) / sum(xs, (s) => s.requests), 1)}`.padEnd(12),
        ` ${sum(xs, (s) => s.failed)}`,
      ].join('|'));
    }
  }
  console.log('');
  const pairs = [['interpose', 'haproxy'], ['interpose-nolog', 'haproxy-nolog'], ['interpose-js', 'haproxy'], ['baseline', 'haproxy'], ['interpose', 'baseline']] as const;
  for (const [name, against] of pairs.filter(([a, b]) => o.targets.includes(a) && o.targets.includes(b))) {
    const parts = WORKLOADS.map((w) => {
      const a = results.get(sliceKey(name, w)) ?? [];
      const b = results.get(sliceKey(against, w)) ?? [];
      const each = a.map((s, i) => (s.requests / s.cpu) / (b[i]!.requests / b[i]!.cpu)).filter(Number.isFinite);
      return `${w} ${f(perCore(a) / perCore(b), 2)}× (slices: median ${f(median(each), 2)}×, ` +
        `lowest ${f(Math.min(...each), 2)}×, highest ${f(Math.max(...each), 2)}×)`;
    });
    console.log(`${name} ÷ ${against}, requests per core: ${parts.join('; ')}`);
  }
}
