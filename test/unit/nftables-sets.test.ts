/**
 * Interval-set merging held to a naive oracle: for random overlapping and adjacent CIDR lists,
 * an address is in the merged set exactly when some CIDR of the list contains it; the merged
 * intervals are sorted, disjoint and never adjacent (what the kernel's interval sets accept);
 * and each element is printed the way `nft list` prints it.
 */
import test from 'ava';
import ipaddr from 'ipaddr.js';
import { randomInt } from 'node:crypto';
import { parseCidr, type Cidr } from '../../src/net/cidr.js';
import { formatIPv6 } from '../../src/net/ip-format.js';
import { intervalElement, intervalsContain, ipv6WordsText, mergeCidrs, mergedElements } from '../../src/rules/nft-sets.js';
import { boundaryBytes } from '../helpers/cidr-bounds.js';
import { SeededRandom } from '../helpers/seeded-random.js';

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (!c) throw new Error(text);
  return c;
};

/** The oracle: a linear scan, as one rule per CIDR behaves. */
const naiveContains = (list: readonly Cidr[], addr: ipaddr.IPv4 | ipaddr.IPv6) =>
  list.some((c) => c.family === (addr.kind() === 'ipv4' ? 4 : 6) && addr.match(c.address, c.prefixLength));

function randomV4(rnd: SeededRandom): Cidr {
  // A small universe (10.0.0.0/20) so that overlaps and adjacency are frequent.
  const len = rnd.int(20, 32);
  return cidr(`10.0.${rnd.int(0, 15)}.${rnd.int(0, 255)}/${len}`);
}

function randomV6(rnd: SeededRandom): Cidr {
  const len = rnd.int(116, 128);
  return cidr(`2001:db8::${rnd.int(0, 0xfff).toString(16)}/${len}`);
}

function addressNear(rnd: SeededRandom, family: 4 | 6): ipaddr.IPv4 | ipaddr.IPv6 {
  return family === 4
    ? ipaddr.parse(`10.0.${rnd.int(0, 16)}.${rnd.int(0, 255)}`)
    : ipaddr.parse(`2001:db8::${rnd.int(0, 0x1000).toString(16)}`);
}

/** The ends of each CIDR and the addresses just outside them: the boundaries. */
function boundaries(list: readonly Cidr[]): Array<ipaddr.IPv4 | ipaddr.IPv6> {
  return list.flatMap((c) => boundaryBytes(c).map((b) => ipaddr.fromByteArray(b) as ipaddr.IPv4 | ipaddr.IPv6));
}

for (const family of [4, 6] as const) {
  test(`merged IPv${family} intervals answer exactly like one rule per CIDR (random lists)`, (t) => {
    const seed = Number(process.env.SETS_SEED ?? randomInt(1, 2 ** 31));
    t.log(`seed ${seed} (rerun with SETS_SEED=${seed})`);
    const rnd = new SeededRandom(seed);
    for (let round = 0; round < 40; round++) {
      const list = Array.from({ length: rnd.int(1, 60) }, () => (family === 4 ? randomV4(rnd) : randomV6(rnd)));
      const merged = mergeCidrs(list);
      for (let i = 1; i < merged.length; i++) {
        const a = merged[i - 1]!;
        const b = merged[i]!;
        // Sorted, disjoint and not adjacent: b starts at least two addresses after a ends.
        t.true(compare(b.start, a.end) > 0 && !isSuccessor(a.end, b.start), `intervals ${i - 1} and ${i} touch`);
      }
      const probes = [...boundaries(list), ...Array.from({ length: 200 }, () => addressNear(rnd, family))];
      for (const addr of probes) {
        t.is(intervalsContain(merged, addr), naiveContains(list, addr), `${addr.toString()} in ${list.map((c) => c.text).join(',')}`);
      }
    }
  });
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function isSuccessor(a: readonly number[], b: readonly number[]): boolean {
  const next = [...a];
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i] !== 0xffffffff) {
      next[i] = next[i]! + 1;
      break;
    }
    next[i] = 0;
  }
  return compare(next, b) === 0;
}

test('elements print as nft does: address, prefix or range', (t) => {
  const el = (list: string[]) => mergeCidrs(list.map(cidr)).map(intervalElement);
  t.deepEqual(el(['192.0.2.7/32']), ['192.0.2.7']);
  t.deepEqual(el(['192.0.2.0/25', '192.0.2.128/25']), ['192.0.2.0/24'], 'adjacent halves become their prefix');
  t.deepEqual(el(['192.0.2.0/24', '192.0.2.77/32']), ['192.0.2.0/24'], 'a contained CIDR disappears');
  t.deepEqual(el(['192.0.2.128/25', '198.51.100.0/25']), ['192.0.2.128/25', '198.51.100.0/25']);
  t.deepEqual(el(['192.0.2.1/32', '192.0.2.2/31', '192.0.2.4/32']), ['192.0.2.1-192.0.2.4'], 'a merged run that is no prefix is a range');
  t.deepEqual(el(['0.0.0.0/1', '128.0.0.0/1']), ['0.0.0.0/0']);
  t.deepEqual(el(['255.255.255.255/32', '255.255.255.254/32']), ['255.255.255.254/31'], 'the last address does not overflow');
  t.deepEqual(el(['2001:db8::/48', '2001:db8:1::/48']), ['2001:db8::/47']);
  t.deepEqual(el(['2001:db8:1::/48', '2001:db8:2::/48']), ['2001:db8:1::-2001:db8:2:ffff:ffff:ffff:ffff:ffff']);
  t.deepEqual(el(['::127.0.0.53/128']), ['::127.0.0.53']);
  t.deepEqual(el(['::/0', '2001:db8::/32']), ['::/0']);
  t.throws(() => mergeCidrs([cidr('192.0.2.0/24'), cidr('2001:db8::/32')]), { message: /mixed families/ });
});

test('IPv6 element text equals the address formatter (inet_ntop rules) for random addresses', (t) => {
  const rnd = new SeededRandom(Number(process.env.SETS_SEED ?? randomInt(1, 2 ** 31)));
  for (let i = 0; i < 3000; i++) {
    // Mostly zero words, so that compression and the dotted forms get exercised.
    const words = Array.from({ length: 8 }, () => (rnd.int(0, 2) === 0 ? rnd.int(0, 0xffff) : 0));
    if (rnd.int(0, 9) === 0) words.splice(0, 6, 0, 0, 0, 0, 0, rnd.pick([0, 0xffff]));
    const addr = new ipaddr.IPv6(words);
    t.is(ipv6WordsText(words), formatIPv6(addr), words.join(','));
  }
});

test('mergedElements (typed arrays) gives what mergeCidrs + intervalElement give, both families', (t) => {
  const seed = Number(process.env.SETS_SEED ?? randomInt(1, 2 ** 31));
  t.log(`seed ${seed} (rerun with SETS_SEED=${seed})`);
  const rnd = new SeededRandom(seed);
  const hex = () => rnd.int(0, 0xffff).toString(16);
  // Near the top and bottom of the space too, where carries and the last address matter.
  const v6 = () => {
    const top = rnd.pick(['ffff:ffff:ffff:ffff', '0:0:0:0', `2001:db8:${hex()}:${hex()}`]);
    return cidr(`${top}:${rnd.pick(['ffff', '0', hex()])}:${hex()}:${rnd.pick(['ffff', hex()])}:${hex()}/${rnd.int(0, 128)}`);
  };
  for (let round = 0; round < 200; round++) {
    const n = rnd.int(1, 80);
    const lists = [
      Array.from({ length: n }, () => randomV4(rnd)),
      Array.from({ length: n }, () => randomV6(rnd)),
      Array.from({ length: n }, v6),
      Array.from({ length: n }, () => cidr(`${rnd.int(0, 255)}.${rnd.int(0, 255)}.${rnd.int(0, 255)}.${rnd.int(0, 255)}/${rnd.int(0, 32)}`)),
    ];
    for (const list of lists) t.deepEqual(mergedElements(list), mergeCidrs(list).map(intervalElement), list.map((c) => c.text).join(','));
  }
  t.deepEqual(mergedElements([cidr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128'), cidr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128')]), [
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127',
  ]);
  t.throws(() => mergedElements([cidr('192.0.2.0/24'), cidr('2001:db8::/32')]), { message: /mixed families/ });
});
