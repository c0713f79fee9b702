/**
 * Rules are compared in the form iptables-save prints them. Matches whose saved form differs
 * from what a naive writer would write (a /0 range, which the kernel keeps as no match at all;
 * TPROXY's mark and mask; multiport lists; port matches that imply `-p tcp -m tcp`) must not
 * read back as drift: right after an install, `verify` with the same flags exits 0 and a rerun
 * says "already in place". Random flag sets from a printed seed, on both iptables variants.
 */
import { runCli } from '../helpers/cli.js';
import { ISTIO_BASE } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';
import { SeededRandom } from '../helpers/seeded-random.js';

const V4 = ['192.0.2.0/24', '198.51.100.7/32', '203.0.113.128/25', '0.0.0.0/0', '100.64.0.0/10'];
const V6 = ['2001:db8::/32', '2001:db8:1::5/128', '::/0', '::ffff:192.0.2.0/120'];
const PORTS = ['80', '8080', '15090', '3306', '443', '9000'];

const list = (r: SeededRandom, items: readonly string[], max: number) => {
  const n = r.int(1, max);
  return [...new Set(Array.from({ length: n }, () => r.pick(items)))].join(',');
};

/** One random istio-iptables flag set, always with a /0 somewhere. */
function randomFlags(r: SeededRandom): string[] {
  const args: string[] = [];
  const zero = r.pick(['0.0.0.0/0', '::/0']);
  const cidrs = (extra: string) => `${list(r, [...V4, ...V6], 4)},${extra}`;
  const slot = r.int(0, 2);
  args.push('-x', slot === 0 ? cidrs(zero) : list(r, [...V4, ...V6], 3));
  args.push('-i', slot === 1 ? cidrs(zero) : r.pick(['*', list(r, V4, 3)]));
  if (slot === 2) args.push('-x', cidrs(zero));
  if (r.next() < 0.5) args.push('-m', 'TPROXY');
  args.push('-b', r.pick(['*', list(r, PORTS, 4)]));
  if (r.next() < 0.5) args.push('-d', list(r, PORTS, 3));
  if (r.next() < 0.5) args.push('-q', list(r, PORTS, 3));
  if (r.next() < 0.5) args.push('-o', list(r, PORTS, 3));
  if (r.next() < 0.3) args.push('-k', 'vm0');
  if (r.next() < 0.3) args.push('-c', 'eth9');
  if (r.next() < 0.3) args.push('--drop-invalid');
  args.push('--enable-ipv6');
  return args;
}

kernelTest('/0 ranges and other canonicalised matches: verify exits 0 and a rerun is "already in place"', async (t) => {
  const seed = Number(process.env.CANONICAL_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (CANONICAL_SEED=${seed} reproduces)`);
  const r = new SeededRandom(seed);
  for (let round = 0; round < 6; round++) {
    const binary = round % 2 === 0 ? 'iptables-nft' : 'iptables-legacy';
    const ns = await Netns.create(t);
    const flags = [...ISTIO_BASE, '--network-namespace', ns.name, '--force-iptables-binary', binary, ...randomFlags(r)];
    const what = `${binary} ${flags.join(' ')}`;
    const apply = await runCli(['istio-iptables', ...flags]);
    t.is(apply.exitCode, 0, `${what}\n${apply.stderr}`);
    const verify = await runCli(['verify', ...flags]);
    t.is(verify.exitCode, 0, `${what}\n${verify.stdout}${verify.stderr}`);
    const again = await runCli(['istio-iptables', ...flags]);
    t.is(again.exitCode, 0, `${what}\n${again.stderr}`);
    t.regex(again.stderr, /already in place/, what);
    await ns.destroy();
  }
});

kernelTest('-x 192.0.2.0/24,0.0.0.0/0: verify with the same flags exits 0 right after the install', async (t) => {
  const ns = await Netns.create(t);
  const flags = [...ISTIO_BASE, '--network-namespace', ns.name, '-i', '*', '-x', '192.0.2.0/24,0.0.0.0/0,::/0', '--enable-ipv6'];
  t.is((await runCli(['istio-iptables', ...flags])).exitCode, 0);
  const verify = await runCli(['verify', ...flags]);
  t.is(verify.exitCode, 0, verify.stdout + verify.stderr);
  const again = await runCli(['istio-iptables', ...flags]);
  t.regex(again.stderr, /already in place/);
});
