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
 * The measurement and its report are bench/http-slices.ts's.
 *
 *   npm run bench:http-per-core -- [--slices N] [--seconds S] [--only haproxy,haproxy-nolog,interpose,interpose-nolog,interpose-js] [--baseline DIR]
 *
 * Needs root, haproxy, wrk, h2load (scripts/install-system-deps.sh). Not part of `npm test`.
 */
import { checkBenchTools, type TargetName } from './http-world.js';
import { measureInSlices, reportSlices } from './http-slices.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const slices = Number(flag('--slices', '8'));
const seconds = Number(flag('--seconds', '3'));
/** Another checkout's built interpose (DIR/dist/cli/main.js), measured as target "baseline". */
const baseline = flag('--baseline', '');
const targets = [...new Set([...flag('--only', 'haproxy,interpose').split(','), ...(baseline ? ['baseline'] : [])])] as TargetName[];

for (const t of targets) {
  if (!['haproxy', 'haproxy-nolog', 'interpose', 'interpose-nolog', 'interpose-js', 'baseline'].includes(t)) {
    throw new Error(`--only: "${t.slice(0, 40)}" is not a proxy (haproxy, haproxy-nolog, interpose, interpose-nolog, interpose-js)`);
  }
}
if (!Number.isInteger(slices) || slices < 1 || slices > 1000) throw new Error('--slices: a whole number from 1 to 1000');
if (!(seconds >= 1 && seconds <= 600)) throw new Error('--seconds: from 1 to 600');

await checkBenchTools();
const options = { targets, slices, seconds, ...(baseline ? { baseline } : {}) };
reportSlices(await measureInSlices(options), options, 'bench:http-per-core');
