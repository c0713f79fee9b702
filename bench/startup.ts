/**
 * bench/startup: what every pod waits for. The whole CLI (`node dist/interpose.js istio-iptables …`,
 * Node start-up included) applying Istio's default injector case in a fresh network namespace,
 * against `node -e 0` (the floor of any Node program) and against `iptables-restore --noflush`
 * of the very same rules (the floor of any iptables installer), measured in one run.
 *
 *   npm run bench:startup [-- --runs 20] [--cli dist/cli/main.js] [--compare OTHER/dist/interpose.js]
 *
 * Rounds alternate the three commands, so a change in machine load hits all of them alike; each
 * command runs in its own fresh namespace (created outside the timed region), entered with
 * `nsenter --net` by all three. Target: the CLI within 2× of `node -e 0`. Needs root.
 * `--compare FILE` times a second build of the CLI in the same rounds (e.g. one from before a
 * change): on a loaded machine only measurements taken side by side compare.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20;
const ROOT = join(import.meta.dirname, '..');
/** The package's bin (the bundled CLI), as an image or `npx interpose` runs it; `--cli FILE` measures another build (e.g. dist/cli/main.js, unbundled). */
const cliArg = process.argv.indexOf('--cli');
const CLI = cliArg > 0 ? process.argv[cliArg + 1]! : join(ROOT, 'dist', 'interpose.js');
const compareArg = process.argv.indexOf('--compare');
const OTHER = compareArg > 0 ? process.argv[compareArg + 1] : undefined;
/** Istio's injector args for its default settings (../shared/reference/istio/injector-args.json, case "default"). */
const DEFAULT_CASE = ['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info'];

if (process.getuid?.() !== 0) {
  console.error('bench:startup needs root (it creates network namespaces)');
  process.exit(1);
}
for (const cli of [CLI, OTHER]) {
  if (cli !== undefined && !existsSync(cli)) {
    console.error(`${cli} is missing: run \`npm run build\` first`);
    process.exit(1);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

/** Runs argv to completion; rejects on a non-zero exit. Resolves with the elapsed milliseconds. */
function timed(argv: readonly string[], input?: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr}`));
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

function run(argv: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${argv.join(' ')} exited ${code}`))));
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function withNamespace<T>(fn: (enter: string[]) => Promise<T>): Promise<T> {
  const name = `bench-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  await run(['ip', 'netns', 'add', name]);
  try {
    return await fn(['nsenter', `--net=/run/netns/${name}`, '--']);
  } finally {
    await run(['ip', 'netns', 'del', name]).catch(() => undefined);
  }
}

// The restore baseline feeds exactly what the CLI applies: its --dry-run text, per family.
const dryRun = await withNamespace((enter) => run([...enter, process.execPath, CLI, ...DEFAULT_CASE, '--dry-run']));
const restores = dryRun
  .split(/^(?=# ip6?tables-restore --noflush$)/m)
  .filter((s) => s.startsWith('# '))
  .map((s) => ({ tool: s.slice(2, s.indexOf(' ', 2)), text: s.slice(s.indexOf('\n') + 1) }));
const ruleCount = restores.reduce((n, r) => n + r.text.split('\n').filter((l) => l.startsWith('-A')).length, 0);

// The CLI's ownership records go to a directory of this run, not /run/interpose.
const stateDir = mkdtempSync(join(tmpdir(), 'bench-startup-'));
const cliEnv = { ...process.env, INTERPOSE_STATE_DIR: stateDir };

const samples = { node: [] as number[], restore: [] as number[], cli: [] as number[], other: [] as number[] };
const loadBefore = loadavg()[0]!;
try {
  for (let i = 0; i < RUNS; i++) {
    await withNamespace(async (enter) => samples.node.push(await timed([...enter, process.execPath, '-e', '0'])));
    await withNamespace(async (enter) => {
      let ms = 0;
      for (const { tool, text } of restores) ms += await timed([...enter, tool, '--noflush'], text);
      samples.restore.push(ms);
    });
    await withNamespace(async (enter) => samples.cli.push(await timed([...enter, process.execPath, CLI, ...DEFAULT_CASE], undefined, cliEnv)));
    if (OTHER !== undefined) {
      await withNamespace(async (enter) => samples.other.push(await timed([...enter, process.execPath, OTHER, ...DEFAULT_CASE], undefined, cliEnv)));
    }
  }
} finally {
  rmSync(stateDir, { recursive: true, force: true });
}

const nodeMs = median(samples.node);
const restoreMs = median(samples.restore);
const row = (name: string, xs: number[]) =>
  `${name.padEnd(46)} ${median(xs).toFixed(1).padStart(8)} ms ${p90(xs).toFixed(1).padStart(8)} ms ` +
  `${(median(xs) / nodeMs).toFixed(2).padStart(9)}× ${(median(xs) / restoreMs).toFixed(2).padStart(9)}×`;
console.log(
  `bench:startup — ${RUNS} alternating rounds; Istio's default injector case (${ruleCount} rules, ${restores.map((r) => r.tool).join(' + ')}); ` +
    `load average ${loadBefore.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`,
);
console.log(`${'what'.padEnd(46)} ${'median'.padStart(11)} ${'p90'.padStart(11)} ${'/ node -e 0'.padStart(10)} ${'/ restore'.padStart(10)}`);
console.log(row('node -e 0', samples.node));
console.log(row('iptables-restore --noflush of the same rules', samples.restore));
console.log(row('interpose CLI, whole (target ≤ 2× node -e 0)', samples.cli));
if (OTHER !== undefined) console.log(row('the build given by --compare', samples.other));
console.log(`(CLI: ${CLI}${OTHER !== undefined ? `; --compare: ${OTHER}` : ''})`);
