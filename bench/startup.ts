/**
 * bench/startup: how long a full `interpose istio-iptables` apply takes in a network namespace,
 * against `iptables-restore --noflush` of the very same text, measured in this run.
 *
 *   npm run bench:startup [-- --runs 20]
 *
 * Rows: the baseline (iptables-restore fed the rendered text), interpose's apply in-process
 * (binary detection, iptables-save of both families, diff, the restore transaction; no Node
 * start-up), and the CLI end to end (`node dist/cli/main.js …`, Node start-up included).
 * Needs root. Each sample uses a fresh namespace, created outside the timed region.
 */
import { execa } from 'execa';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { buildIstioOptions } from '../src/config/istio-options.js';
import { resolveSettings } from '../src/config/istio-flags.js';
import { NamespacedExecutor, SystemExecutor } from '../src/kernel/executor.js';
import { chooseIptables } from '../src/kernel/iptables-binaries.linux.js';
import { IptablesBackend } from '../src/kernel/iptables-backend.linux.js';
import { LinuxSystemLookups } from '../src/kernel/system-lookups.linux.js';
import { buildIstioRuleset } from '../src/rules/istio-ruleset.js';
import { renderRestore } from '../src/rules/render/iptables.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20;
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const FLAGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-i', '*', '-x', '198.51.100.0/24,203.0.113.0/24', '-b', '*', '-d', '15090,15021,15020'];

if (process.getuid?.() !== 0) {
  console.error('bench:startup needs root (it creates network namespaces)');
  process.exit(1);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

async function withNamespace<T>(fn: (name: string) => Promise<T>): Promise<T> {
  const name = `bench-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  await execa('ip', ['netns', 'add', name]);
  try {
    return await fn(name);
  } finally {
    await execa('ip', ['netns', 'del', name], { reject: false });
  }
}

const settings = resolveSettings(
  Object.fromEntries(
    [['envoyPort', '15001'], ['inboundCapturePort', '15006'], ['proxyUid', '1337'], ['proxyGid', '1337'], ['istioServiceCidr', '*'],
      ['istioServiceExcludeCidr', '198.51.100.0/24,203.0.113.0/24'], ['istioInboundPorts', '*'], ['istioLocalExcludePorts', '15090,15021,15020']],
  ),
  {},
);
const system = new SystemExecutor();
const { config } = await buildIstioOptions(settings, new LinuxSystemLookups(system));
const ruleset = buildIstioRuleset(config);
/** The same text interpose applies: one restore input per family it generates. */
const texts = ruleset.families.map((f) => ({ tool: f.family === 4 ? 'iptables-restore' : 'ip6tables-restore', text: renderRestore(f) }));

const samples = { restore: [] as number[], apply: [] as number[], cli: [] as number[] };
for (let i = 0; i < RUNS; i++) {
  await withNamespace(async (ns) => {
    const t0 = performance.now();
    for (const { tool, text } of texts) await execa('ip', ['netns', 'exec', ns, tool, '--noflush'], { input: text });
    samples.restore.push(performance.now() - t0);
  });
  await withNamespace(async (ns) => {
    const exec = new NamespacedExecutor(system, ns);
    const t0 = performance.now();
    const backend = new IptablesBackend(exec, await chooseIptables(exec));
    await backend.apply(ruleset, { reconcile: false, forceApply: false });
    samples.apply.push(performance.now() - t0);
  });
  await withNamespace(async (ns) => {
    const t0 = performance.now();
    await execa('node', [CLI, 'istio-iptables', '--network-namespace', ns, ...FLAGS]);
    samples.cli.push(performance.now() - t0);
  });
}

const base = median(samples.restore);
const row = (name: string, xs: number[]) =>
  `${name.padEnd(44)} ${median(xs).toFixed(1).padStart(8)} ms ${p90(xs).toFixed(1).padStart(8)} ms ${(median(xs) / base).toFixed(2).padStart(7)}×`;
const ruleCount = texts.reduce((n, { text }) => n + text.split('\n').filter((l) => l.startsWith('-')).length, 0);
console.log(`bench:startup — ${RUNS} runs each; ${ruleset.families.length === 2 ? 'IPv4+IPv6' : 'IPv4'} rules (${ruleCount}), baseline restores the same text per family`);
console.log(`${'what'.padEnd(44)} ${'median'.padStart(11)} ${'p90'.padStart(11)} ${'ratio'.padStart(8)}`);
console.log(row('ip(6)tables-restore --noflush (baseline)', samples.restore));
console.log(row('interpose apply, in-process (target ≤ 3×)', samples.apply));
console.log(row('interpose CLI, Node start-up included', samples.cli));
