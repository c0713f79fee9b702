/**
 * Interval sets against one rule per CIDR, judged by real connections: for random,
 * overlapping and adjacent include and exclude lists (IPv4 and IPv6), every destination —
 * the first and last address of each CIDR, the addresses just outside them, and random ones —
 * lands in the same place under both forms, and where a naive reading of the lists says.
 */
import { randomInt } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { NamespacedExecutor, SystemExecutor } from '../../src/kernel/executor.js';
import { applyRuleset } from '../../src/kernel/backend.js';
import { NftablesBackend, findNft } from '../../src/kernel/nftables-backend.linux.js';
import { parseCidr, type Cidr } from '../../src/net/cidr.js';
import { formatAddress } from '../../src/net/ip-format.js';
import { buildIstioRuleset } from '../../src/rules/istio-ruleset.js';
import { ISTIO_BASE, optionsFrom } from '../helpers/istio-config.js';
import { kernelTest, type Netns } from '../helpers/kernel.js';
import { boundaryBytes } from '../helpers/cidr-bounds.js';
import { SeededRandom } from '../helpers/seeded-random.js';
import { WORLD_V4_RANGES, WORLD_V6_RANGE, createPodAndWorld, probe } from '../helpers/topology.js';

const PORT = 80;
const WORLD = [...WORLD_V4_RANGES, WORLD_V6_RANGE].map((c) => parseCidr(c)!);

const inside = (net: Cidr, addr: ipaddr.IPv4 | ipaddr.IPv6) =>
  (addr.kind() === 'ipv4' ? 4 : 6) === net.family && addr.match(net.address, net.prefixLength);

/** Random prefixes inside the world's ranges, with deliberate overlaps and adjacent siblings. */
function randomList(rnd: SeededRandom, count4: number, count6: number): Cidr[] {
  const out: Cidr[] = [];
  while (out.filter((c) => c.family === 4).length < count4) {
    const base = rnd.pick(['192.0.2', '198.51.100', '203.0.113']);
    const c = parseCidr(`${base}.${rnd.int(0, 255)}/${rnd.int(26, 32)}`)!;
    out.push(c);
    if (rnd.int(0, 3) === 0) out.push(sibling(c)); // adjacent
    if (rnd.int(0, 4) === 0) out.push(parseCidr(`${formatAddress(c.address)}/${Math.min(32, c.prefixLength + 2)}`)!); // contained
  }
  for (let i = 0; i < count6; i++) {
    const c = parseCidr(`2001:db8:100:${rnd.int(0, 3)}${rnd.int(0, 15).toString(16)}00::${rnd.int(0, 0xffff).toString(16)}/${rnd.pick([56, 60, 64, 120, 124, 128])}`)!;
    out.push(c);
    if (rnd.int(0, 3) === 0) out.push(sibling(c));
  }
  return out;
}

/** The other half of the parent prefix. */
function sibling(c: Cidr): Cidr {
  const bytes = c.address.toByteArray();
  const bit = c.prefixLength - 1;
  bytes[bit >> 3] ^= 0x80 >> (bit & 7);
  return parseCidr(`${formatAddress(ipaddr.fromByteArray(bytes) as ipaddr.IPv4)}/${c.prefixLength}`)!;
}

/** First, last, one before and one after each CIDR, plus random addresses; all inside the world. */
function destinations(rnd: SeededRandom, lists: Cidr[]): string[] {
  const out = new Set<string>();
  for (const c of lists) {
    for (const bytes of boundaryBytes(c)) {
      const addr = ipaddr.fromByteArray(bytes) as ipaddr.IPv4 | ipaddr.IPv6;
      if (WORLD.some((w) => inside(w, addr))) out.add(formatAddress(addr));
    }
  }
  for (let i = 0; i < 20; i++) out.add(`${rnd.pick(['192.0.2', '198.51.100', '203.0.113'])}.${rnd.int(1, 254)}`);
  for (let i = 0; i < 10; i++) out.add(`2001:db8:100:${rnd.int(0, 3)}${rnd.int(0, 15).toString(16)}00::${rnd.int(1, 0xffff).toString(16)}`);
  return [...out];
}

async function install(pod: Netns, args: string[], setThreshold: number | undefined): Promise<void> {
  const { config } = await optionsFrom([...ISTIO_BASE, '--enable-ipv6', ...args]);
  const backend = new NftablesBackend(new NamespacedExecutor(new SystemExecutor(), pod.name), setThreshold === undefined ? {} : { setThreshold });
  await applyRuleset(backend, buildIstioRuleset(config), { reconcile: true, forceApply: false });
}

kernelTest('nftables: interval sets land every connection where one rule per CIDR does (random lists, both families)', async (t) => {
  const seed = Number(process.env.SETS_SEED ?? randomInt(1, 2 ** 31));
  t.log(`seed ${seed} (rerun with SETS_SEED=${seed})`);
  const rnd = new SeededRandom(seed);
  const { pod } = await createPodAndWorld(t, [PORT]);
  const nft = findNft();

  let probes = 0;
  for (const form of ['exclude', 'include'] as const) {
    const list = randomList(rnd, rnd.int(12, 20), rnd.int(10, 14));
    const text = list.map((c) => c.text).join(',');
    const args = form === 'exclude' ? ['-i', '*', '-x', text] : ['-i', text];
    const dsts = destinations(rnd, list);
    const targets = dsts.map((d): [string, number] => [d, PORT]);
    const expected = dsts.map((d) => {
      const hit = list.some((c) => inside(c, ipaddr.parse(d)));
      return form === 'exclude' ? (hit ? 'world' : 'proxy') : hit ? 'proxy' : 'world';
    });
    const label = (answers: string[]) => dsts.map((d, i) => `${d} ${answers[i]}`);

    for (const threshold of [undefined, Infinity]) {
      await install(pod, args, threshold);
      const listing = String((await pod.exec([nft, 'list', 'table', 'inet', 'istio-proxy-nat'])).stdout);
      if (threshold === undefined) {
        t.regex(listing, /ip daddr @\S+ counter/, `${form}: the IPv4 list is a set`);
        t.regex(listing, /ip6 daddr @\S+ counter/, `${form}: the IPv6 list is a set`);
      } else {
        t.notRegex(listing, /@/, `${form}: one rule per CIDR`);
      }
      const got = await probe(pod, targets);
      t.deepEqual(label(got), label(expected), `${form} list ${text}, ${threshold === undefined ? 'sets' : 'one rule per CIDR'}`);
      probes += targets.length;
    }
  }
  t.log(`${probes} connections`);
});
