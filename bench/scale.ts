/**
 * bench/scale: what long exclude lists cost, with interval sets and without.
 *
 *   npm run bench:scale                      # 1, 1k, 10k and 100k CIDRs
 *   npm run bench:scale -- --sizes=1,10000 --runs=5
 *   SCALE_BENCH_SEED=7 npm run bench:scale
 *
 * For each size: random CIDRs, half IPv4 and half IPv6, a fifth of them derived from another
 * (inside it, around it, or its adjacent sibling) so the list overlaps like real ones do. Then,
 * each in a fresh pod namespace linked to a world namespace (created outside the timed region):
 *
 *   apply   wall time of the apply, in-process (IR build, render, reading the kernel's state,
 *           the transaction; no Node start-up and no flag parsing — parsing the CIDR text is
 *           shown apart) for: nftables with interval sets committed as our netlink batch (the
 *           default), the same committed through `nft -f -`, nftables with one rule per CIDR,
 *           and the iptables backend (iptables-restore, one rule per CIDR per family).
 *   conn/s  sequential TCP connections from the pod to the world, IPv4 and IPv6 alternating,
 *           to destinations outside every CIDR: each new connection's first packet walks the
 *           whole list (nothing returns early), the verdict comes after it. Measured in short
 *           bursts alternating with a 1-CIDR pod that lives through the whole run; the % is
 *           the median of per-burst ratios, so load from elsewhere on the machine cancels out.
 *
 * Apply ratios are against the 1-CIDR "nft sets" row measured in this run. Needs root.
 */
import { execa, type ResultPromise } from 'execa';
import { performance } from 'node:perf_hooks';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIstioOptions } from '../src/config/istio-options.js';
import { resolveSettings } from '../src/config/istio-flags.js';
import type { InterceptConfig } from '../src/config/intercept-config.js';
import { applyRuleset } from '../src/kernel/backend.js';
import { NamespacedExecutor, SystemExecutor, type CommandResult, type Executor } from '../src/kernel/executor.js';
import { chooseIptables } from '../src/kernel/iptables-binaries.linux.js';
import { IptablesBackend } from '../src/kernel/iptables-backend.linux.js';
import { NftablesBackend, findNft } from '../src/kernel/nftables-backend.linux.js';
import { NetlinkTransaction, NftToolTransaction, type NftTransaction } from '../src/kernel/nft-transaction.linux.js';
import type { NftBatchPlan } from '../src/rules/render/netlink/nft-netlink-batch.js';
import { namespacePath } from '../src/kernel/executor.js';
import { LinuxSystemLookups } from '../src/kernel/system-lookups.linux.js';
import { buildIstioRuleset } from '../src/rules/istio-ruleset.js';
import { renderNftTables } from '../src/rules/render/nftables.js';
import { SeededRandom } from '../test/helpers/seeded-random.js';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const SIZES = arg('sizes')?.split(',').map(Number) ?? [1, 1_000, 10_000, 100_000];
const RUNS = Number(arg('runs') ?? 3);
/** Connection-rate sampling: until this many ms have passed or this many connections were made. */
const CONN_BUDGET_MS = 2_500;
const CONN_ROUNDS = 10;
const CONN_MAX = 3_000;
const PORT = 8080;
const DEST_V4 = '203.0.113.10';
const DEST_V6 = '2001:db8:100::10';

if (process.getuid?.() !== 0) {
  console.error('bench:scale needs root (it creates network namespaces)');
  process.exit(1);
}

// ---- random, overlapping CIDR lists (seeded, reproducible) ----
const rnd = new SeededRandom(Number(process.env.SCALE_BENCH_SEED ?? 1));
const next = () => rnd.int(0, 0xffffffff);

const v4Text = (a: number, len: number) => {
  const masked = len === 0 ? 0 : (a & (0xffffffff << (32 - len))) >>> 0;
  return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${len}`;
};
const v6Text = (w: number[], len: number) => `${w.map((x) => x.toString(16)).join(':')}/${len}`;

/** True when `a/len` contains the destination (those would return early: not wanted). */
const coversV4 = (a: number, len: number) => {
  const d = 0xcb00710a; // 203.0.113.10
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((a & mask) >>> 0) === ((d & mask) >>> 0);
};

function randomCidrs(n: number): string[] {
  const out: string[] = [];
  const v4: Array<[number, number]> = [];
  const v6: Array<[number[], number]> = [];
  for (let i = 0; out.length < n; i++) {
    const family = i % 2 === 0 ? 4 : 6;
    const derive = next() % 5 === 0;
    if (family === 4) {
      let [a, len] = derive && v4.length > 0 ? v4[next() % v4.length]! : [next(), 16 + (next() % 17)];
      if (derive) {
        const r = next() % 3;
        if (r === 0) len = Math.min(32, len + 1 + (next() % 4)); // inside it
        else if (r === 1) len = Math.max(12, len - 1 - (next() % 3)); // around it
        else a = (a ^ (1 << (32 - len))) >>> 0; // its sibling
      }
      if (coversV4(a, len)) continue;
      v4.push([a, len]);
      out.push(v4Text(a, len));
    } else {
      // Global unicast (2000::/3) outside 2001:db8::/32, where the destination lives.
      let [w, len] =
        derive && v6.length > 0
          ? v6[next() % v6.length]!
          : [[0x2400 + (next() % 0x1000), ...Array.from({ length: 7 }, () => next() & 0xffff)], 32 + (next() % 97)];
      if (derive) len = Math.min(128, Math.max(24, len + (next() % 9) - 4));
      w = [...w];
      for (let bit = len; bit < 128; bit++) w[bit >> 4] = w[bit >> 4]! & ~(0x8000 >> (bit & 15));
      v6.push([w, len]);
      out.push(v6Text(w, len));
    }
  }
  return out;
}

// ---- namespaces ----
interface Topology {
  pod: string;
  world: string;
  server: ResultPromise;
}

const run = (argv: string[], input?: string) => execa(argv[0]!, argv.slice(1), input === undefined ? {} : { input });
const inNs = (ns: string, argv: string[], input?: string) => run(['ip', 'netns', 'exec', ns, ...argv], input);

const scratch = mkdtempSync(join(tmpdir(), 'bench-scale-'));
const SERVER = join(scratch, 'server.mjs');
const CLIENT = join(scratch, 'client.mjs');
writeFileSync(
  SERVER,
  `import net from 'node:net';
net.createServer((s) => { s.on('error', () => {}); s.end(); }).listen({ port: ${PORT}, host: '::', ipv6Only: false, backlog: 4096 }, () => process.stdout.write('ready\\n'));`,
);
writeFileSync(
  CLIENT,
  `import net from 'node:net';
const [budget, max] = [Number(process.argv[2]), Number(process.argv[3])];
const dests = ['${DEST_V4}', '${DEST_V6}'];
const once = (host) => new Promise((resolve, reject) => {
  const s = net.connect({ host, port: ${PORT} });
  // A reset, not a FIN: no TIME_WAIT left behind, so a long-lived pod never runs out of ports.
  s.on('connect', () => { s.resetAndDestroy(); resolve(); });
  s.on('error', reject);
});
await once(dests[0]); await once(dests[1]); // warm up (and fail fast if unreachable)
const t0 = performance.now();
let n = 0;
while (n < max && performance.now() - t0 < budget) await once(dests[n++ % 2]);
process.stdout.write(JSON.stringify({ n, ms: performance.now() - t0 }) + '\\n');`,
);

async function topology(): Promise<Topology> {
  const id = `${process.pid}${Math.random().toString(16).slice(2, 6)}`;
  const pod = `bsp-${id}`;
  const world = `bsw-${id}`;
  await run(['ip', 'netns', 'add', pod]);
  await run(['ip', 'netns', 'add', world]);
  await run(['ip', 'link', 'add', `vp${id}`, 'netns', pod, 'type', 'veth', 'peer', 'name', `vw${id}`, 'netns', world]);
  for (const [ns, dev, v4, v6] of [
    [pod, `vp${id}`, '100.64.0.1/30', '2001:db8:ffff::1/64'],
    [world, `vw${id}`, '100.64.0.2/30', '2001:db8:ffff::2/64'],
  ] as const) {
    await inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
    await inNs(ns, ['ip', 'addr', 'add', v4, 'dev', dev]);
    await inNs(ns, ['ip', '-6', 'addr', 'add', v6, 'dev', dev, 'nodad']);
    await inNs(ns, ['ip', 'link', 'set', dev, 'up']);
  }
  await inNs(pod, ['ip', 'route', 'add', 'default', 'via', '100.64.0.2']);
  await inNs(pod, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
  await inNs(pod, ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:ffff::2']);
  await inNs(world, ['ip', 'addr', 'add', `${DEST_V4}/32`, 'dev', 'lo']);
  await inNs(world, ['ip', '-6', 'addr', 'add', `${DEST_V6}/128`, 'dev', 'lo']);
  const server = execa('ip', ['netns', 'exec', world, 'node', SERVER], { reject: false, buffer: false });
  await new Promise<void>((resolve, reject) => {
    server.stdout!.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`server exited (${code})`)));
  });
  return { pod, world, server };
}

async function teardown(t: Topology): Promise<void> {
  t.server.kill('SIGKILL');
  await run(['ip', 'netns', 'del', t.pod]).catch(() => undefined);
  await run(['ip', 'netns', 'del', t.world]).catch(() => undefined);
}

/** One burst of sequential connects from the pod; returns [connections, ms]. */
async function burst(t: Topology, budgetMs: number): Promise<[number, number]> {
  const r = await inNs(t.pod, ['node', CLIENT, String(budgetMs), String(CONN_MAX)]);
  const { n, ms } = JSON.parse(String(r.stdout)) as { n: number; ms: number };
  return [n, ms];
}

/**
 * Connection rate of `t` relative to the baseline, robust to load from anything else on the
 * machine: bursts alternate baseline, t, baseline, t, …, baseline; each t burst is compared
 * with the mean of the baseline bursts on either side, and the median of those ratios is kept.
 */
async function connRate(t: Topology, baseline: Topology): Promise<{ rate: number; relative: number }> {
  const budget = CONN_BUDGET_MS / CONN_ROUNDS;
  const rate = ([n, ms]: [number, number]) => (n / ms) * 1000;
  let before = rate(await burst(baseline, budget));
  const rates: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < CONN_ROUNDS; round++) {
    const r = rate(await burst(t, budget));
    const after = rate(await burst(baseline, budget));
    rates.push(r);
    ratios.push(r / ((before + after) / 2));
    before = after;
  }
  return { rate: median(rates), relative: median(ratios) };
}

// ---- the forms ----
type Form = 'nft sets' | 'nft sets, nft -f' | 'nft per-rule' | 'iptables per-rule';
const FORMS: Form[] = ['nft sets', 'nft sets, nft -f', 'nft per-rule', 'iptables per-rule'];
/** The same kernel state as "nft sets": its connection rate is not measured again. */
const SAME_KERNEL_STATE: Partial<Record<Form, Form>> = { 'nft sets, nft -f': 'nft sets' };

/** Times the commits of an nftables apply (the transaction's share). */
class TimingTransaction implements NftTransaction {
  ms = 0;
  readonly name: string;
  constructor(private readonly inner: NftTransaction) {
    this.name = inner.name;
  }
  tableNames(): Promise<string[]> {
    return this.inner.tableNames();
  }
  /** Passed on, though each apply here is a fresh install: the stamp is written all the same. */
  get holdsStamped() {
    return this.inner.holdsStamped?.bind(this.inner);
  }
  async commit(plan: NftBatchPlan, digest?: Buffer): Promise<void> {
    const t0 = performance.now();
    await this.inner.commit(plan, digest);
    this.ms += performance.now() - t0;
  }
}

/** Times the `*-restore` transactions an iptables apply runs (the kernel tool's share). */
class TimingExecutor implements Executor {
  toolMs = 0;
  readonly realNamespace: string | undefined;
  constructor(private readonly inner: Executor) {
    this.realNamespace = inner.realNamespace;
  }
  async run(argv: readonly string[], options?: { input?: string }): Promise<CommandResult> {
    const t0 = performance.now();
    const r = await this.inner.run(argv, options);
    if (options?.input !== undefined) this.toolMs += performance.now() - t0;
    return r;
  }
}

async function apply(form: Form, config: InterceptConfig, pod: string): Promise<{ ms: number; toolMs: number }> {
  const exec = new TimingExecutor(new NamespacedExecutor(new SystemExecutor(), pod));
  if (form === 'iptables per-rule') {
    const binaries = await chooseIptables(exec); // a probe, like nft's version probe: not timed
    const t0 = performance.now();
    await applyRuleset(new IptablesBackend(exec, binaries), buildIstioRuleset(config), { reconcile: false, forceApply: false });
    return { ms: performance.now() - t0, toolMs: exec.toolMs };
  }
  const nft = findNft();
  const tx = new TimingTransaction(form === 'nft sets, nft -f' ? new NftToolTransaction(exec, nft) : new NetlinkTransaction(namespacePath(pod)));
  const t0 = performance.now();
  const backend = new NftablesBackend(exec, form === 'nft per-rule' ? { setThreshold: Infinity } : {}, nft, tx);
  await applyRuleset(backend, buildIstioRuleset(config), { reconcile: false, forceApply: false });
  return { ms: performance.now() - t0, toolMs: tx.ms };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Row {
  size: number;
  parseMs: number;
  elements: number;
  renderMs: number;
  apply: Map<Form, number>;
  toolMs: Map<Form, number>;
  rate: Map<Form, number>;
  /** The rate relative to the baseline's, from alternating bursts. */
  relRate: Map<Form, number>;
}

const system = new SystemExecutor();
const lookups = new LinuxSystemLookups(system);

async function configFor(cidrs: string): Promise<InterceptConfig> {
  const settings = resolveSettings(
    {
      envoyPort: '15001', inboundCapturePort: '15006', proxyUid: '1337', proxyGid: '1337',
      istioServiceCidr: '', istioServiceExcludeCidr: cidrs, istioInboundPorts: '', enableIpv6: true,
    },
    {},
  );
  return (await buildIstioOptions(settings, lookups)).config;
}

// The baseline for connection rates: one CIDR, lives through the whole run.
const baseline = await topology();
await apply('nft sets', await configFor('192.0.2.0/24'), baseline.pod);

const rows: Row[] = [];
try {
  for (const size of SIZES) {
    const cidrs = randomCidrs(size).join(',');
    const p0 = performance.now();
    const config = await configFor(cidrs);
    const parseMs = performance.now() - p0;
    const r0 = performance.now();
    const tables = renderNftTables(buildIstioRuleset(config));
    const renderMs = performance.now() - r0;
    const elements = tables.flatMap((t) => t.sets).reduce((n, s) => n + s.elements.length, 0);
    const row: Row = { size, parseMs, elements, renderMs, apply: new Map(), toolMs: new Map(), rate: new Map(), relRate: new Map() };
    for (const form of FORMS) {
      const samples: Array<{ ms: number; toolMs: number }> = [];
      // The linear forms at 100k take seconds per apply: one sample is telling enough.
      const runs = size >= 100_000 && form !== 'nft sets' ? 1 : RUNS;
      for (let i = 0; i < runs; i++) {
        const t = await topology();
        try {
          samples.push(await apply(form, config, t.pod));
          const same = SAME_KERNEL_STATE[form];
          if (i === runs - 1 && same) {
            row.rate.set(form, row.rate.get(same)!);
            row.relRate.set(form, row.relRate.get(same)!);
          } else if (i === runs - 1) {
            const { rate, relative } = await connRate(t, baseline);
            row.rate.set(form, rate);
            row.relRate.set(form, relative);
          }
        } finally {
          await teardown(t);
        }
      }
      samples.sort((a, b) => a.ms - b.ms);
      const mid = samples[Math.floor(samples.length / 2)]!;
      row.apply.set(form, mid.ms);
      row.toolMs.set(form, mid.toolMs);
      process.stderr.write(
        `  ${size} CIDRs, ${form}: apply ${mid.ms.toFixed(1)} ms (commit ${mid.toolMs.toFixed(1)} ms), ` +
          `${row.rate.get(form)!.toFixed(0)} conn/s = ${(row.relRate.get(form)! * 100).toFixed(0)}% of the baseline\n`,
      );
    }
    rows.push(row);
  }
} finally {
  await teardown(baseline);
}
rmSync(scratch, { recursive: true, force: true });

const base = rows[0]!;
const baseApply = base.apply.get('nft sets')!;
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
console.log(`bench:scale — seed ${process.env.SCALE_BENCH_SEED ?? 1}, ${RUNS} runs (median; 1 for the linear forms at ≥100k), fresh namespaces`);
console.log('apply: in-process apply (IR build, render, reading state, transaction), in brackets the commit alone');
console.log('       (netlink batch / nft -f / iptables-restore), then the ratio to the first row\'s "nft sets" apply');
console.log('conn/s: sequential TCP connects whose first packet walks the whole list (median burst); % = against a');
console.log('        1-CIDR namespace, in bursts alternating with it (median of per-burst ratios, so machine load hits both alike)\n');
const header = ['CIDRs', 'set elems', 'parse', 'render', ...FORMS.map((f) => `apply ${f}`), ...FORMS.map((f) => `conn/s ${f}`)];
const cells = rows.map((r) => [
  String(r.size),
  String(r.elements),
  fmt(r.parseMs),
  fmt(r.renderMs),
  ...FORMS.map((f) => `${fmt(r.apply.get(f)!)} [${fmt(r.toolMs.get(f)!)}] ${(r.apply.get(f)! / baseApply).toFixed(1)}×`),
  ...FORMS.map((f) => `${r.rate.get(f)!.toFixed(0)} ${(r.relRate.get(f)! * 100).toFixed(0)}%`),
]);
const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
const line = (xs: string[]) => xs.map((x, i) => x.padStart(widths[i]!)).join('  ');
console.log(line(header));
for (const c of cells) console.log(line(c));

const at = (n: number) => rows.find((r) => r.size === n);
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
console.log('\ntargets:');
/** The target "N CIDRs applied with sets in ≤ LIMIT ms" for ROW; returns the apply time. */
const applyTarget = (row: Row, label: string, limitMs: number): number => {
  const ms = row.apply.get('nft sets')!;
  console.log(
    `  ${label} CIDRs applied with sets in ≤ ${limitMs} ms: ${fmt(ms)} (the netlink commit ${fmt(row.toolMs.get('nft sets')!)}; ` +
      `through nft -f the apply takes ${fmt(row.apply.get('nft sets, nft -f')!)}) — ${verdict(ms <= limitMs)}`,
  );
  return ms;
};
const r10k = at(10_000);
if (r10k) applyTarget(r10k, '10k', 50);
const r100k = at(100_000);
if (r100k) {
  const ms = applyTarget(r100k, '100k', 500);
  const rel = r100k.relRate.get('nft sets')!;
  console.log(`  conn/s with 100k CIDRs in a set within 10% of 1 CIDR: ${(rel * 100).toFixed(0)}% — ${verdict(rel >= 0.9)}`);
  console.log(
    `  linear forms at 100k: apply ${(r100k.apply.get('nft per-rule')! / ms).toFixed(1)}× (nft) and ` +
      `${(r100k.apply.get('iptables per-rule')! / ms).toFixed(1)}× (iptables) the sets' time; conn/s ` +
      `${(r100k.relRate.get('nft per-rule')! * 100).toFixed(1)}% (nft) and ${(r100k.relRate.get('iptables per-rule')! * 100).toFixed(1)}% (iptables) of 1 CIDR`,
  );
}
