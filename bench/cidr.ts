/**
 * CidrTrie benchmark (`npm run bench:cidr`): lookups per second at 100, 10k, 100k and 1M
 * prefixes, IPv4 and IPv6, random and realistic prefix-length mixes; one-at-a-time lookup(),
 * batch lookupManyV4/V6, against net.BlockList.check and an ipaddr.js match loop measured in
 * the same run; build time (insertMany, and a loop of insert()) and bytes per prefix. Slow
 * baselines run for a fixed time budget, not a fixed count, so the whole run takes a few
 * minutes.
 *
 * net.BlockList checks its rules one by one, newest first, and stops at the first match, so
 * its speed depends on the probes: a second table measures both on probes that match no
 * prefix (drawn from a block the generated prefixes avoid), which makes BlockList scan every
 * rule.
 *
 *   npm run bench:cidr                 # everything
 *   npm run bench:cidr -- --quick      # 100 and 10k prefixes only
 *   npm run bench:cidr -- --family=6 --sizes=100000
 *   CIDR_BENCH_SEED=7 npm run bench:cidr
 */
import net from 'node:net';
import { cpus, loadavg } from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import ipaddr from 'ipaddr.js';
import { CidrTrie } from '../src/native.js';

// A full collection before each timed build, so the build is not charged for collecting
// the garbage the data set generation left behind, nor for unmapping a dropped trie (Node-API
// finalizers may run after the collection, hence the turn of the event loop).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
async function collectGarbage(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const quick = process.argv.includes('--quick');
const SIZES = arg('sizes')?.split(',').map(Number) ?? (quick ? [100, 10_000] : [100, 10_000, 100_000, 1_000_000]);
const FAMILIES = (arg('family')?.split(',').map(Number) ?? [4, 6]) as Array<4 | 6>;
const BUDGET_MS = 300;
const PROBES = 1 << 16;
const MISS_PROBES = 1 << 10;

let state = Number(process.env.CIDR_BENCH_SEED ?? 1) >>> 0 || 1;
function next(): number {
  // xorshift32
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
}

type Family = 4 | 6;
type Mix = 'random' | 'realistic';

/** Prefix length drawn from a mix: uniform, or shaped like public routing tables. */
function prefixLength(family: Family, mix: Mix): number {
  const r = next() % 100;
  if (family === 4) {
    if (mix === 'random') return 8 + (next() % 25);
    if (r < 55) return 24;
    if (r < 90) return 16 + (next() % 8);
    if (r < 95) return 8 + (next() % 8);
    return 25 + (next() % 8);
  }
  if (mix === 'random') return 16 + (next() % 113);
  if (r < 45) return 48;
  if (r < 75) return 32 + (next() % 16);
  if (r < 80) return 29 + (next() % 3);
  if (r < 95) return 49 + (next() % 16);
  return 65 + (next() % 64);
}

const words = () => Array.from({ length: 8 }, () => next() & 0xffff);
const v4Text = (a: number) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
// No generated prefix lies in these blocks, so probes drawn from them match nothing:
// 0.0.0.0/8 ("this network", RFC 1122) and 0100::/16 (holding the RFC 6666 discard prefix).
const MISS_V4_OCTET = 0;
const MISS_V6_WORD = 0x0100;
const v4Base = () => {
  for (;;) {
    const a = next();
    if (a >>> 24 !== MISS_V4_OCTET) return a;
  }
};
// Realistic IPv6 prefixes live in 2000::/3 like global unicast.
const v6Words = (mix: Mix) => {
  for (;;) {
    const w = words();
    if (mix === 'realistic') w[0] = 0x2000 | (w[0]! & 0x1fff);
    if (w[0] !== MISS_V6_WORD) return w;
  }
};
const v6Text = (w: number[]) => w.map((x) => x.toString(16)).join(':');

interface Dataset {
  cidrs: string[];
  probeText: string[];
  probe4: Uint32Array;
  probe6: Uint8Array;
  /** Addresses no prefix covers. */
  missText: string[];
}

function dataset(family: Family, mix: Mix, n: number): Dataset {
  const cidrs: string[] = [];
  const bases: Array<number | number[]> = [];
  for (let i = 0; i < n; i++) {
    const len = prefixLength(family, mix);
    if (family === 4) {
      const a = v4Base();
      bases.push(a);
      cidrs.push(`${v4Text(a)}/${len}`);
    } else {
      const w = v6Words(mix);
      bases.push(w);
      cidrs.push(`${v6Text(w)}/${len}`);
    }
  }
  // Half the probes fall inside an inserted prefix (the host part of its base), half anywhere.
  const probeText: string[] = [];
  const probe4 = new Uint32Array(PROBES);
  const probe6 = new Uint8Array(PROBES * 16);
  for (let i = 0; i < PROBES; i++) {
    const inside = next() % 2 === 0;
    if (family === 4) {
      const a = inside ? (bases[next() % n] as number) : next();
      probe4[i] = a;
      probeText.push(v4Text(a));
    } else {
      const w = inside ? (bases[next() % n] as number[]) : v6Words(mix);
      for (let k = 0; k < 8; k++) {
        probe6[16 * i + 2 * k] = w[k]! >> 8;
        probe6[16 * i + 2 * k + 1] = w[k]! & 0xff;
      }
      probeText.push(v6Text(w));
    }
  }
  const missText: string[] = [];
  for (let i = 0; i < MISS_PROBES; i++) {
    if (family === 4) {
      missText.push(v4Text(((MISS_V4_OCTET << 24) | (next() & 0xffffff)) >>> 0));
    } else {
      const w = words();
      w[0] = MISS_V6_WORD;
      missText.push(v6Text(w));
    }
  }
  // Template literals build rope (cons) strings that V8 flattens on first use; text read from
  // a file or the network is flat. Flatten here so neither the builds nor the lookups pay it.
  const flat = (a: string[]) => JSON.parse(JSON.stringify(a)) as string[];
  return { cidrs: flat(cidrs), probeText: flat(probeText), probe4, probe6, missText: flat(missText) };
}

/** Runs fn(count) repeatedly for about BUDGET_MS and returns operations per second. */
function rate(fn: (i: number) => number): number {
  let ops = 0;
  let sink = 0;
  const start = performance.now();
  let now = start;
  do {
    sink += fn(ops);
    ops++;
    if ((ops & 63) === 0) now = performance.now();
  } while (now - start < BUDGET_MS || ops < 8);
  if (sink === 0.5) console.log(''); // keep the work observable
  return (ops / (performance.now() - start)) * 1000;
}

/** Like rate() but fn handles a whole batch of `per` lookups per call. */
function batchRate(fn: () => void, per: number): number {
  fn();
  let calls = 0;
  const start = performance.now();
  do {
    fn();
    calls++;
  } while (performance.now() - start < BUDGET_MS);
  return ((calls * per) / (performance.now() - start)) * 1000;
}

const fmt = (x: number) =>
  x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
const ratio = (a: number, b: number) => `${a / b >= 100 ? Math.round(a / b).toLocaleString('en') : (a / b).toFixed(1)}×`;

const rows: string[][] = [];
const header = [
  'family',
  'mix',
  'prefixes',
  'build ms',
  'insert() ms',
  'bytes/prefix',
  'lookup()/s',
  'batch/s',
  'BlockList/s',
  'ipaddr.js/s',
  'lookup÷BlockList',
  'batch÷BlockList',
  'lookup÷ipaddr',
];
const missRows: string[][] = [];
const missHeader = ['family', 'mix', 'prefixes', 'lookup()/s', 'BlockList/s', 'lookup÷BlockList'];

for (const family of FAMILIES) {
  for (const mix of ['random', 'realistic'] as const) {
    for (const n of SIZES) {
      const d = dataset(family, mix, n);
      const values = Array.from({ length: n }, (_, i) => i);

      // One-at-a-time inserts first, into a trie dropped afterwards; then the table the
      // lookups use, loaded with insertMany (the documented way to load a large table).
      await collectGarbage();
      let loopTrie: CidrTrie | undefined = new CidrTrie();
      let t0 = performance.now();
      for (let i = 0; i < n; i++) loopTrie.insert(d.cidrs[i]!, i);
      const insertLoopMs = performance.now() - t0;
      loopTrie = undefined;

      await collectGarbage();
      const trie = new CidrTrie();
      t0 = performance.now();
      trie.insertMany(d.cidrs, values);
      const buildMs = performance.now() - t0;
      const bytesPerPrefix = trie.memoryBytes / trie.size;

      const mask = PROBES - 1;
      const lookupRate = rate((i) => trie.lookup(d.probeText[i & mask]!) ?? 0);
      const out = new Int32Array(PROBES);
      const batch =
        family === 4
          ? batchRate(() => trie.lookupManyV4(d.probe4, out), PROBES)
          : batchRate(() => trie.lookupManyV6(d.probe6, out), PROBES);

      const bl = new net.BlockList();
      const type = family === 4 ? 'ipv4' : 'ipv6';
      for (const c of d.cidrs) {
        const [a, l] = c.split('/') as [string, string];
        bl.addSubnet(a, Number(l), type);
      }
      const blRate = rate((i) => (bl.check(d.probeText[i & mask]!, type) ? 1 : 0));

      const ranges = d.cidrs.map((c) => ipaddr.parseCIDR(c));
      const ipaddrRate = rate((i) => {
        // Longest match by linear scan: what a plain TypeScript implementation would do.
        const addr = ipaddr.parse(d.probeText[i & mask]!);
        let best = -1;
        let bestLen = -1;
        for (let k = 0; k < ranges.length; k++) {
          const r = ranges[k]!;
          if (r[1] > bestLen && addr.kind() === r[0].kind() && addr.match(r)) {
            best = k;
            bestLen = r[1];
          }
        }
        return best;
      });

      // Probes that match nothing: BlockList has to look at every rule.
      const missMask = MISS_PROBES - 1;
      for (const m of d.missText) {
        if (trie.lookup(m) !== undefined || bl.check(m, type)) throw new Error(`bench bug: miss probe ${m} matches`);
      }
      const missLookupRate = rate((i) => trie.lookup(d.missText[i & missMask]!) ?? 0);
      const missBlRate = rate((i) => (bl.check(d.missText[i & missMask]!, type) ? 1 : 0));

      rows.push([
        `IPv${family}`,
        mix,
        n.toLocaleString('en'),
        buildMs.toFixed(0),
        insertLoopMs.toFixed(0),
        bytesPerPrefix.toFixed(0),
        fmt(lookupRate),
        fmt(batch),
        fmt(blRate),
        fmt(ipaddrRate),
        ratio(lookupRate, blRate),
        ratio(batch, blRate),
        ratio(lookupRate, ipaddrRate),
      ]);
      missRows.push([
        `IPv${family}`,
        mix,
        n.toLocaleString('en'),
        fmt(missLookupRate),
        fmt(missBlRate),
        ratio(missLookupRate, missBlRate),
      ]);
      console.error(`done: IPv${family} ${mix} ${n}`);
    }
  }
}

function table(head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  console.log(line(head));
  for (const r of body) console.log(line(r));
}

console.log(
  `CidrTrie benchmark (node ${process.version}, seed ${process.env.CIDR_BENCH_SEED ?? 1}, ${BUDGET_MS} ms per measurement, ` +
    `${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)} at the end: absolute rates scale with it, ratios much less)`,
);
console.log('\nProbes: half inside an inserted prefix, half anywhere (BlockList stops at the first matching rule)');
table(header, rows);
console.log(
  '\nbuild = insertMany (parse in TypeScript, one call into the addon); insert() = a loop of insert() into a ' +
    'fresh trie. lookup() parses the address text in TypeScript then calls the addon; batch = lookupManyV4/V6 ' +
    'over 65,536 addresses per call. bytes/prefix counts native memory including the fixed 16-bit first level ' +
    'of each family in use (576 KiB), so it is large for small tables.',
);
console.log(
  `\nProbes that match no prefix (${MISS_PROBES} addresses in ${MISS_V4_OCTET}.0.0.0/8 or ${MISS_V6_WORD.toString(16)}::/16, ` +
    'which the prefixes avoid): BlockList checks every rule, the trie answers from its first level',
);
table(missHeader, missRows);
