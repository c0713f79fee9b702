/**
 * bench:http-per-core — requests per CPU-second of each proxy, with every target running at once
 * in its own copy of bench:http's world and the load switched between them in short slices.
 *
 * Why: bench:http measures its targets one after the other, tens of seconds apart, and on a
 * shared VM the cost of a system call (most of a proxy's cost per request) drifts over such
 * spans: its per-core ratios moved by ±20 % between runs. Here each slice gives every target
 * the same load for --seconds, in an order that rotates, and the slices follow each other
 * closely, so a drift of the machine falls on both targets alike.
 *
 * Per workload (HTTP/1.1 keep-alive with wrk -t1 -c16; h2c with h2load -c16 -m10 to the HTTP
 * port, HTTP/1.1 upstream; h2c to the HTTP2 port, HTTP/2 upstream) and target: requests and the
 * proxy's CPU time (/proc/PID/stat, all threads) summed over the slices, and their quotient.
 * The ratios against HAProxy are printed twice: of the sums, and as the median, lowest and
 * highest of the per-slice ratios (each slice's targets ran seconds apart).
 *
 *   npm run bench:http-per-core -- [--slices N] [--seconds S] [--only haproxy,haproxy-nolog,interpose,interpose-nolog,interpose-js] [--baseline DIR]
 *
 * Needs root, haproxy, wrk, h2load (scripts/install-system-deps.sh). Not part of `npm test`.
 */
import { readFileSync } from 'node:fs';
import { APP_UID, checkBenchTools, cpuSeconds, H2_URL, HttpBenchWorld, median, URL_, type RunningTarget, type TargetName } from './http-world.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const SLICES = Number(flag('--slices', '8'));
const SECONDS = Number(flag('--seconds', '3'));
/** Another checkout's built interpose (DIR/dist/cli/main.js), measured as target "baseline". */
const BASELINE = flag('--baseline', '');
const TARGETS = [...new Set([...flag('--only', 'haproxy,interpose').split(','), ...(BASELINE ? ['baseline'] : [])])] as TargetName[];

for (const t of TARGETS) {
  if (!['haproxy', 'haproxy-nolog', 'interpose', 'interpose-nolog', 'interpose-js', 'baseline'].includes(t)) {
    throw new Error(`--only: "${t.slice(0, 40)}" is not a proxy (haproxy, haproxy-nolog, interpose, interpose-nolog, interpose-js)`);
  }
}
if (!Number.isInteger(SLICES) || SLICES < 1 || SLICES > 1000) throw new Error('--slices: a whole number from 1 to 1000');
if (!(SECONDS >= 1 && SECONDS <= 600)) throw new Error('--seconds: from 1 to 600');

type Workload = 'http1' | 'h2c' | 'h2c→h2';
const WORKLOADS: readonly Workload[] = ['http1', 'h2c', 'h2c→h2'];

/** One target's load for one slice: requests done and the proxy's CPU seconds meanwhile. */
interface Slice {
  requests: number;
  cpu: number;
  failed: number;
}

async function main(): Promise<void> {
  await checkBenchTools();
  const worlds: HttpBenchWorld[] = [];
  const running = new Map<TargetName, { bench: HttpBenchWorld; target: RunningTarget }>();
  try {
    for (const [i, name] of TARGETS.entries()) {
      const bench = await HttpBenchWorld.create(`bcore${i}`, { baseline: BASELINE });
      worlds.push(bench);
      running.set(name, { bench, target: await bench.start(name) });
    }

    const load = async (name: TargetName, workload: Workload, seconds: number): Promise<Slice> => {
      const { bench, target } = running.get(name)!;
      const pid = target.pid!;
      const cpu0 = cpuSeconds(pid);
      let requests: number;
      let failed: number;
      if (workload === 'http1') {
        const r = await bench.wrk(APP_UID, seconds);
        requests = r.rps * seconds;
        failed = r.errors;
      } else {
        const r = await bench.h2c(APP_UID, seconds, undefined, workload === 'h2c' ? URL_ : H2_URL);
        requests = r.rps * seconds;
        failed = r.failed;
      }
      const cpu = cpuSeconds(pid) - cpu0;
      if (!(requests > 0) || !(cpu > 0)) throw new Error(`${name}, ${workload}: no requests or no CPU time measured (${requests} requests, ${cpu} s)`);
      return { requests, cpu, failed };
    };

    // Warm every target on every workload (JIT, pools, caches) before anything counts.
    for (const name of TARGETS) for (const w of WORKLOADS) await load(name, w, 1);

    const slices = new Map<string, Slice[]>();
    const key = (name: TargetName, w: Workload) => `${name} ${w}`;
    for (let i = 0; i < SLICES; i++) {
      for (const w of WORKLOADS) {
        // Rotate the order so no target always goes first.
        const order = TARGETS.map((_, k) => TARGETS[(k + i) % TARGETS.length]!);
        for (const name of order) {
          const s = await load(name, w, SECONDS);
          slices.set(key(name, w), [...(slices.get(key(name, w)) ?? []), s]);
        }
      }
      process.stderr.write(`slice ${i + 1}/${SLICES}\n`);
    }
    report(slices, key);
  } finally {
    for (const b of worlds) await b.destroy();
  }
}

function report(slices: Map<string, Slice[]>, key: (name: TargetName, w: Workload) => string): void {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const sum = (xs: Slice[], pick: (s: Slice) => number) => xs.reduce((a, s) => a + pick(s), 0);
  const perCore = (xs: Slice[]) => sum(xs, (s) => s.requests) / sum(xs, (s) => s.cpu);
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\nbench:http-per-core — ${SLICES} slices of ${SECONDS} s per target and workload, targets running at once, ` +
    `1 KiB GETs; load average at the end ${loadavg}\n`);
  console.log('target          | workload | requests | proxy CPU s | req/s per core | CPU µs/req | failed');
  console.log('----------------|----------|----------|-------------|----------------|------------|-------');
  for (const name of TARGETS) {
    for (const w of WORKLOADS) {
      const xs = slices.get(key(name, w)) ?? [];
      console.log([
        name.padEnd(16),
        ` ${w}`.padEnd(10),
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
  for (const [name, against] of pairs.filter(([a, b]) => TARGETS.includes(a) && TARGETS.includes(b))) {
    const parts = WORKLOADS.map((w) => {
      const a = slices.get(key(name, w)) ?? [];
      const b = slices.get(key(against, w)) ?? [];
      const each = a.map((s, i) => (s.requests / s.cpu) / (b[i]!.requests / b[i]!.cpu)).filter(Number.isFinite);
      return `${w} ${f(perCore(a) / perCore(b), 2)}× (slices: median ${f(median(each), 2)}×, ` +
        `lowest ${f(Math.min(...each), 2)}×, highest ${f(Math.max(...each), 2)}×)`;
    });
    console.log(`${name} ÷ ${against}, requests per core: ${parts.join('; ')}`);
  }
}

await main();
