/**
 * The netlink commit against the nft tool, judged by the kernel: the same rendered tables are
 * committed as our own netlink batch in one namespace and through `nft -f -` in another, and
 * the kernel must then hold the same thing in both — the same listing, and the same byte code
 * and set elements as `nft --debug=netlink list ruleset` dumps them. Covers the istio
 * configurations the CLI renders and random rules with every match and target the renderer
 * knows, random prefixes (byte-aligned or not, /0, full), negations, wildcard interfaces,
 * port lists, and interval sets whose ranges touch the first and last address of a family.
 */
import type { ExecutionContext } from 'ava';
import { randomInt } from 'node:crypto';
import { NamespacedExecutor, SystemExecutor, namespacePath } from '../../src/kernel/executor.js';
import { NetlinkRejectedError, NetlinkTransaction, NftToolTransaction, type NftTransaction } from '../../src/kernel/nft-transaction.linux.js';
import { findNft } from '../../src/kernel/nftables-backend.linux.js';
import { parseCidr, type IpFamily } from '../../src/net/cidr.js';
import type { ConntrackState, InetChain, InetRule, InetTable, Match, Rule, Ruleset, TableName, Target } from '../../src/rules/ir.js';
import { buildIstioRuleset } from '../../src/rules/istio-ruleset.js';
import { renderNftTables, type NftTable } from '../../src/rules/render/nftables.js';
import { ISTIO_BASE, optionsFrom } from '../helpers/istio-config.js';
import { kernelTest, Netns } from '../helpers/kernel.js';
import { SeededRandom } from '../helpers/seeded-random.js';

const nft = findNft();

/** What the kernel holds, as text and as byte code. */
async function kernelState(ns: Netns): Promise<string> {
  const listing = await ns.exec([nft, '-y', 'list', 'ruleset']);
  const bytecode = await ns.exec([nft, '--debug=netlink', 'list', 'ruleset']);
  return `${listing.stdout}\n----\n${bytecode.stdout}`;
}

async function commitBothWays(t: ExecutionContext, tables: NftTable[]): Promise<{ viaNft: string; viaNetlink: string }> {
  const a = await Netns.create(t, 'nlc');
  const b = await Netns.create(t, 'nlc');
  const plan = { replace: [], create: tables.map((x) => x.name), tables };
  const tool: NftTransaction = new NftToolTransaction(new NamespacedExecutor(new SystemExecutor(), a.name), nft);
  const netlink: NftTransaction = new NetlinkTransaction(namespacePath(b.name));
  await tool.commit(plan);
  await netlink.commit(plan);
  const out = { viaNft: await kernelState(a), viaNetlink: await kernelState(b) };
  await a.destroy();
  await b.destroy();
  return out;
}

/** The first differing line, to keep a failure readable. */
function firstDifference(x: string, y: string): string {
  const a = x.split('\n');
  const b = y.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1}:\n  nft -f:  ${a[i] ?? '(none)'}\n  netlink: ${b[i] ?? '(none)'}`;
  }
  return '';
}

const CONFIGS: string[][] = [
  [],
  ['-i', '*'],
  ['-i', '*', '-x', '10.1.0.0/20,192.0.2.0/24,198.51.100.7', '-b', '*', '-d', '22,8080'],
  ['-m', 'TPROXY', '-b', '80,443', '-i', '10.96.0.0/12', '--enable-ipv6'],
  ['-i', '*', '-q', '443,8443,9000', '-o', '25,587', '-c', 'eth1,veth+', '-k', 'kv0'],
  ['--redirect-dns', '--capture-all-dns', '-i', '*', '--enable-ipv6', '-x', '2001:db8:1::/48,2001:db8:2:0:8000::/65'],
  ['--drop-invalid', '-i', '*', '-b', '*', '--enable-ipv6'],
  // Long lists: interval sets, in both families, touching each family's first and last address.
  ['-i', '*', '--enable-ipv6', '-x', ['0.0.0.0/8', '255.255.255.0/24', '::/16', 'ffff::/16', ...range(12, (i) => `198.51.100.${i * 16}/28`), ...range(10, (i) => `2001:db8:${i}::/48`)].join(',')],
];

function range<T>(n: number, f: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

kernelTest('netlink commit: the kernel holds what nft -f leaves, byte code included, for istio configurations', async (t) => {
  for (const args of CONFIGS) {
    const { config } = await optionsFrom([...ISTIO_BASE, ...args]);
    const tables = renderNftTables(buildIstioRuleset(config));
    const { viaNft, viaNetlink } = await commitBothWays(t, tables);
    t.true(viaNft.includes('table inet istio-proxy-nat'), `${args.join(' ')}: nothing installed`);
    t.is(viaNetlink, viaNft, `istio-iptables ${args.join(' ')}: ${firstDifference(viaNft, viaNetlink)}`);
  }
});

// ---- random rules ----

const BASE_CHAINS: Record<Exclude<TableName, 'filter'>, string[]> = {
  nat: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'OUTPUT'],
  raw: ['PREROUTING', 'OUTPUT'],
};
const OWNED = 'ISTIO_RANDOM';
const STATES: ConntrackState[] = ['INVALID', 'ESTABLISHED', 'RELATED', 'NEW'];

function randomCidr(rnd: SeededRandom, family: IpFamily) {
  if (family === 4) {
    const len = rnd.pick([0, 1, 7, 8, 12, 16, 20, 23, 24, 27, 31, 32]);
    const a = rnd.int(0, 0xffffffff);
    const masked = len === 0 ? 0 : (a & (0xffffffff << (32 - len))) >>> 0;
    return parseCidr(`${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${len}`)!;
  }
  const len = rnd.pick([0, 1, 16, 32, 33, 48, 64, 65, 100, 127, 128]);
  const words = range(8, () => rnd.int(0, 0xffff));
  for (let bit = len; bit < 128; bit++) words[bit >> 4] = words[bit >> 4]! & ~(0x8000 >> (bit & 15));
  return parseCidr(`${words.map((w) => w.toString(16)).join(':')}/${len}`)!;
}

function randomRule(rnd: SeededRandom, table: TableName, chain: string): InetRule {
  const matches: Match[] = [];
  const family: IpFamily = rnd.pick([4, 6]);
  const withAddress = rnd.int(0, 2) > 0;
  if (withAddress) {
    for (const kind of ['source', 'destination'] as const) {
      if (rnd.int(0, 1)) matches.push({ kind, cidr: randomCidr(rnd, family), negate: rnd.int(0, 3) === 0 });
    }
  }
  if (rnd.int(0, 3) === 0) matches.push({ kind: rnd.pick(['inInterface', 'outInterface'] as const), name: rnd.pick(['lo', 'eth0', 'veth+', 'k']), negate: rnd.int(0, 2) === 0 });
  const target = randomTarget(rnd, table, chain);
  const protocol = target.kind === 'redirect' || target.kind === 'tproxy' || rnd.int(0, 1) ? rnd.pick(['tcp', 'udp'] as const) : undefined;
  const tcp = target.kind === 'redirect' || target.kind === 'tproxy' ? 'tcp' : protocol;
  if (tcp) {
    matches.push({ kind: 'protocol', protocol: tcp });
    const ports = rnd.int(0, 3);
    if (ports === 1) matches.push({ kind: 'destinationPort', port: rnd.int(1, 65535), negate: rnd.int(0, 2) === 0 });
    if (ports === 2) matches.push({ kind: 'destinationPorts', ports: range(rnd.int(1, 5), () => rnd.int(1, 65535)), negate: rnd.int(0, 2) === 0 });
    if (ports === 3) matches.push({ kind: 'sourcePort', port: rnd.int(1, 65535) });
  }
  if (rnd.int(0, 3) === 0) matches.push({ kind: 'conntrackState', states: STATES.filter(() => rnd.int(0, 1)).concat(['NEW']).filter((s, i, a) => a.indexOf(s) === i) });
  if (chain === 'OUTPUT' && rnd.int(0, 2) === 0) matches.push({ kind: rnd.pick(['ownerUid', 'ownerGid'] as const), uid: rnd.int(0, 70000), gid: rnd.int(0, 70000), negate: rnd.int(0, 1) === 1 } as Match);
  if (rnd.int(0, 4) === 0) matches.push({ kind: 'mark', value: rnd.int(0, 0xffffffff), negate: rnd.int(0, 1) === 1 });
  if (rnd.int(0, 5) === 0) matches.push({ kind: 'connmark', value: rnd.int(0, 0xffff) });
  const own = matches.some((m) => m.kind === 'source' || m.kind === 'destination');
  const rule: Rule = { matches, target };
  // A tproxy rule needs a family; others may be limited to one at random.
  if (!own && (target.kind === 'tproxy' || rnd.int(0, 2) === 0)) return { rule, family };
  return { rule };
}

function randomTarget(rnd: SeededRandom, table: TableName, chain: string): Target {
  const common: Target[] = [{ kind: 'return' }, { kind: 'accept' }, { kind: 'drop' }];
  if (chain !== OWNED) common.push({ kind: 'jump', chain: OWNED });
  const own: Target[] =
    table === 'nat'
      ? [{ kind: 'redirect', toPort: rnd.int(1, 65535) }]
      : table === 'mangle'
        ? [
            { kind: 'setMark', mark: rnd.int(0, 0xffffffff) },
            { kind: 'connmarkSave' },
            { kind: 'connmarkRestore' },
            ...(chain === 'PREROUTING' ? [{ kind: 'tproxy', onPort: rnd.int(1, 65535), mark: rnd.int(1, 0xffff), mask: 0xffffffff } as Target] : []),
          ]
        : [{ kind: 'ctZone', zone: rnd.int(0, 65535) }];
  return rnd.pick([...common, ...own, ...own]);
}

function randomRuleset(rnd: SeededRandom): Ruleset {
  const inet: InetTable[] = (['nat', 'mangle', 'raw'] as const).map((table) => {
    const chains: InetChain[] = BASE_CHAINS[table].map((name) => ({ name, rules: range(rnd.int(1, 8), () => randomRule(rnd, table, name)) }));
    // An owned chain (jumped to) with a run of lone address matches long enough to become sets.
    const runTarget: Target = { kind: 'return' };
    const run: InetRule[] = range(rnd.int(0, 30), () => ({ rule: { matches: [{ kind: 'destination', cidr: randomCidr(rnd, rnd.pick([4, 6])) }], target: runTarget } }));
    chains.push({ name: OWNED, rules: [...range(rnd.int(1, 4), () => randomRule(rnd, table, OWNED)), ...run] });
    return { table, chains };
  });
  return { families: [], inet };
}

kernelTest('netlink commit: the kernel holds what nft -f leaves, byte code included, for random rules and sets', async (t) => {
  const seed = Number(process.env.NETLINK_SEED ?? randomInt(1, 2 ** 31));
  t.log(`seed ${seed} (rerun with NETLINK_SEED=${seed})`);
  const rnd = new SeededRandom(seed);
  for (let round = 0; round < 12; round++) {
    const tables = renderNftTables(randomRuleset(rnd), { setThreshold: 3 });
    const { viaNft, viaNetlink } = await commitBothWays(t, tables);
    t.is(viaNetlink, viaNft, `round ${round}: ${firstDifference(viaNft, viaNetlink)}`);
  }
});

kernelTest('netlink commit: a refused batch names the message and changes nothing', async (t) => {
  const ns = await Netns.create(t, 'nlc');
  const { config } = await optionsFrom([...ISTIO_BASE, '-i', '*']);
  const tables = renderNftTables(buildIstioRuleset(config));
  const netlink = new NetlinkTransaction(namespacePath(ns.name));
  await netlink.commit({ replace: [], create: tables.map((x) => x.name), tables });
  const before = await kernelState(ns);
  // Creating a table that exists fails the whole batch, with a delete and an add before it.
  const err = await t.throwsAsync(netlink.commit({ replace: ['istio-proxy-raw'], create: ['istio-proxy-mangle', 'istio-proxy-nat'], tables }), {
    instanceOf: NetlinkRejectedError,
  });
  t.regex(err!.message, /nf_tables refused "create table inet istio-proxy-nat": EEXIST/);
  t.is(await kernelState(ns), before, 'the kernel changed');
  // A missing namespace is a clear error, not a crash.
  await t.throwsAsync(new NetlinkTransaction('/run/netns/interpose-no-such-namespace').commit({ replace: [], create: [], tables }), {
    message: /open failed: ENOENT .*entering the network namespace at \/run\/netns\/interpose-no-such-namespace/,
  });
});

kernelTest('netlink commit: the generation guard follows its own commits, and refuses after anyone else’s', async (t) => {
  const ns = await Netns.create(t, 'nlc');
  const { config } = await optionsFrom([...ISTIO_BASE, '-i', '*']);
  const tables = renderNftTables(buildIstioRuleset(config));
  const tx = new NetlinkTransaction(namespacePath(ns.name));
  t.deepEqual(await tx.tableNames(), []);
  await tx.commit({ replace: [], create: tables.map((x) => x.name), tables });
  // Our own commit moved the generation: the next one is guarded against the new value.
  await tx.commit({ replace: tables.map((x) => x.name), create: [], tables });
  await ns.exec([nft, 'add', 'table', 'inet', 'someone-else']);
  await t.throwsAsync(tx.commit({ remove: tables.map((x) => x.name), replace: [], create: [], tables: [] }), {
    instanceOf: NetlinkRejectedError,
    message: /ruleset changed after interpose read it/,
  });
  t.regex(String((await ns.exec([nft, 'list', 'tables'])).stdout), /istio-proxy-nat/, 'nothing was removed');
});
