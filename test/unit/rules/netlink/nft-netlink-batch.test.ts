/**
 * The nf_tables batch read back with a small netlink parser: framing (BATCH_BEGIN … BATCH_END,
 * increasing sequence numbers, an ack asked of the last message only), the order nft
 * sends objects in, create-vs-add flags, element lists split below the 64 KiB attribute limit
 * with every element present, interval encoding at the edges of each family, and the errors
 * checkReplies raises for refusals and missing answers. What the kernel makes of the bytes is
 * the kernel tests' business (test/kernel/nft-netlink-commit.test.ts).
 */
import test from 'ava';
import { buildNftBatch, intervalElements, INTERVAL_END, OPEN_START } from '../../../../src/rules/render/netlink/nft-netlink-batch.js';
import { NetlinkRejectedError, NetlinkTransaction, checkReplies } from '../../../../src/kernel/nft-transaction.linux.js';
import { generationOf, generationRequest, inetTablesRequest, tablesOf } from '../../../../src/kernel/nft-netlink-tables.js';
import { decodeStamp, encodeStamp, nextGeneration, nftTablesDigest } from '../../../../src/kernel/nft-table-stamp.js';
import { NetlinkWriter } from '../../../../src/rules/render/netlink/netlink-writer.js';
import { parseCidr } from '../../../../src/net/cidr.js';
import { mergeCidrs, mergeCidrsPacked } from '../../../../src/rules/nft-sets.js';
import { nftSet, type NftTable } from '../../../../src/rules/render/nftables.js';
import { SeededRandom } from '../../../helpers/seeded-random.js';

interface Msg {
  type: number;
  flags: number;
  seq: number;
  attrs: Map<number, Buffer[]>;
}

function parse(bytes: Uint8Array): Msg[] {
  const b = Buffer.from(bytes);
  const out: Msg[] = [];
  for (let at = 0; at < b.length; ) {
    const len = b.readUInt32LE(at);
    const attrs = new Map<number, Buffer[]>();
    for (let a = at + 20; a < at + len; ) {
      const alen = b.readUInt16LE(a);
      const type = b.readUInt16LE(a + 2) & 0x7fff;
      attrs.set(type, [...(attrs.get(type) ?? []), b.subarray(a + 4, a + alen)]);
      a += (alen + 3) & ~3;
    }
    out.push({ type: b.readUInt16LE(at + 4), flags: b.readUInt16LE(at + 6), seq: b.readUInt32LE(at + 8), attrs });
    at += (len + 3) & ~3;
  }
  return out;
}

/** Nested attributes of one payload. */
function children(p: Buffer): Array<{ type: number; value: Buffer }> {
  const out = [];
  for (let a = 0; a < p.length; ) {
    const alen = p.readUInt16LE(a);
    out.push({ type: p.readUInt16LE(a + 2) & 0x7fff, value: p.subarray(a + 4, a + alen) });
    a += (alen + 3) & ~3;
  }
  return out;
}

const str = (x: Buffer) => x.toString('latin1').replace(/\0+$/, '');
const NFT = (msg: number) => (10 << 8) | msg;
const cidr = (s: string) => parseCidr(s)!;

const TABLE: NftTable = {
  name: 'istio-proxy-nat',
  sets: [],
  chains: [
    {
      name: 'output',
      base: { type: 'nat', hook: 'output', priority: -100 },
      rules: ['counter jump istio-output'],
      sources: [{ rule: { matches: [], target: { kind: 'jump', chain: 'ISTIO_OUTPUT' } } }],
    },
    {
      name: 'istio-output',
      rules: ['tcp dport { 80, 443 } counter return'],
      sources: [{ rule: { matches: [{ kind: 'protocol', protocol: 'tcp' }, { kind: 'destinationPorts', ports: [443, 80, 443] }], target: { kind: 'return' } } }],
    },
  ],
};

test('framing, order and flags: begin, tables, chains, sets, then each rule after its anonymous set, end', (t) => {
  const batch = buildNftBatch({ replace: ['istio-proxy-raw'], create: ['istio-proxy-nat'], tables: [TABLE] });
  const msgs = parse(batch.bytes);
  const kinds = msgs.map((m) => m.type);
  t.deepEqual(kinds, [0x10, NFT(0), NFT(2), NFT(0), NFT(3), NFT(3), NFT(6), NFT(9), NFT(12), NFT(6), 0x11]);
  t.deepEqual(msgs.map((m) => m.seq), msgs.map((_, i) => i + 1), 'sequence numbers count up from 1');
  t.deepEqual(batch.acked, [msgs.at(-2)!.seq], 'the last message asks for an ack');
  t.deepEqual(msgs.map((m) => (m.flags & 0x4) !== 0), msgs.map((_, i) => i === msgs.length - 2), 'and no other');
  t.is(msgs[3]!.flags & 0x600, 0x600, 'a table known to be absent is created exclusively');
  t.is(msgs[1]!.flags & 0x600, 0x400, 'a table to replace is added (not exclusively) before its delete');
  t.is(batch.describe(3), 'delete table inet istio-proxy-raw');
  t.is(batch.describe(10), 'add rule inet istio-proxy-nat istio-output tcp dport { 80, 443 } counter return');
  t.is(batch.describe(8), 'add anonymous set { 80, 443 } in table inet istio-proxy-nat');
  // The anonymous set: name nft uses, flags anonymous|constant, key inet_service, 2 elements.
  const set = msgs[7]!;
  t.is(str(set.attrs.get(2)![0]!), '__set%d');
  t.is(set.attrs.get(3)![0]!.readUInt32BE(0), 3);
  t.is(set.attrs.get(4)![0]!.readUInt32BE(0), 13);
  const elems = children(children(msgs[8]!.attrs.get(3)![0]!)[0]!.value);
  t.is(elems.length, 1, 'a port-set element carries its key and no interval flags');
  const ports = children(msgs[8]!.attrs.get(3)![0]!).map((e) => children(children(e.value)[0]!.value)[0]!.value.readUInt16BE(0));
  t.deepEqual(ports, [80, 443], 'distinct ports, in order, big-endian');
});

test('100k elements are split into messages whose element lists stay below 64 KiB, none lost', (t) => {
  const rnd = new SeededRandom(3);
  const cidrs = Array.from({ length: 100_000 }, () => cidr(`2001:db8:${rnd.int(0, 0xffff).toString(16)}:${rnd.int(0, 0xffff).toString(16)}::/64`));
  const intervals = mergeCidrsPacked(cidrs);
  const table: NftTable = { name: 't', sets: [nftSet('s', intervals)], chains: [] };
  const msgs = parse(buildNftBatch({ replace: [], create: ['t'], tables: [table] }).bytes);
  const elementMsgs = msgs.filter((m) => m.type === NFT(12));
  t.true(elementMsgs.length > 20);
  let total = 0;
  for (const m of elementMsgs) {
    const list = m.attrs.get(3)![0]!;
    t.true(list.length + 4 <= 0xffff);
    total += children(list).length;
  }
  t.is(total, intervalElements(intervals).count);
  // nft 1.0.6's user data on a named `type ipv6_addr` set: the key's byte order (big endian).
  const set = msgs.find((m) => m.type === NFT(9))!;
  t.is(set.attrs.get(13)![0]!.toString('hex'), '000402000000');
});

test('interval elements: a leading end at 0, an end after each range, none after the last address (the start marked open)', (t) => {
  const keys = (list: string[]) => {
    const p = mergeCidrsPacked(list.map(cidr));
    const { keys: k, flags, count } = intervalElements(p);
    const words = p.family === 4 ? 1 : 4;
    return Array.from({ length: count }, (_, i) => {
      const w = [...k.subarray(words * i, words * i + words)].map((x) => x.toString(16)).join(':');
      return `${w}${flags[i] === INTERVAL_END ? ' end' : flags[i] === OPEN_START ? ' open' : ''}`;
    });
  };
  t.deepEqual(keys(['10.0.0.0/8']), ['0 end', 'a000000', 'b000000 end']);
  t.deepEqual(keys(['0.0.0.0/8', '192.0.2.1']), ['0', '1000000 end', 'c0000201', 'c0000202 end']);
  t.deepEqual(keys(['255.255.255.0/24']), ['0 end', 'ffffff00 open']);
  t.deepEqual(keys(['0.0.0.0/0']), ['0 open']);
  t.deepEqual(keys(['ffff::/16', '::/16']), ['0:0:0:0', '10000:0:0:0 end', 'ffff0000:0:0:0 open']);
  t.deepEqual(keys(['2001:db8::1/128']), ['0:0:0:0 end', '20010db8:0:0:1', '20010db8:0:0:2 end']);
  t.is(intervalElements(mergeCidrsPacked([])).count, 0);
});

test('mergeCidrsPacked holds the same intervals as mergeCidrs (random lists, both families)', (t) => {
  const rnd = new SeededRandom(11);
  for (let round = 0; round < 50; round++) {
    const v4 = Array.from({ length: rnd.int(1, 60) }, () => cidr(`10.0.${rnd.int(0, 15)}.${rnd.int(0, 255)}/${rnd.int(20, 32)}`));
    const v6 = Array.from({ length: rnd.int(1, 60) }, () => cidr(`2001:db8::${rnd.int(0, 15).toString(16)}${rnd.int(0, 0xfff).toString(16)}/${rnd.int(116, 128)}`));
    for (const list of [v4, v6]) {
      const packed = mergeCidrsPacked(list);
      const words = list[0]!.family === 4 ? 1 : 4;
      const asArrays = Array.from({ length: packed.count }, (_, i) => ({
        start: [...packed.starts.subarray(words * i, words * i + words)],
        end: [...packed.ends.subarray(words * i, words * i + words)],
      }));
      t.deepEqual(asArrays, mergeCidrs(list).map((iv) => ({ start: [...iv.start], end: [...iv.end] })));
    }
  }
});

test('checkReplies: a refusal names the message and the errno; a missing answer is an error too; all acks pass', (t) => {
  const batch = buildNftBatch({ replace: [], create: ['istio-proxy-nat'], tables: [TABLE] });
  const acks = batch.acked.map((seq) => ({ seq, error: 0, message: '' }));
  t.notThrows(() => checkReplies(batch, acks));
  const refused = t.throws(() => checkReplies(batch, [{ seq: 4, error: 2, message: 'Could not process rule' }, ...acks]), {
    instanceOf: NetlinkRejectedError,
  });
  t.regex(refused!.message, /^nf_tables refused "add chain inet istio-proxy-nat istio-output": ENOENT \(no such file or directory\): Could not process rule$/);
  const unanswered = t.throws(() => checkReplies(batch, []), { instanceOf: NetlinkRejectedError });
  t.regex(unanswered!.message, /did not acknowledge "add rule inet istio-proxy-nat istio-output tcp dport \{ 80, 443 \} counter return"/);
});

test('the table dump: a GETTABLE dump request for inet; names and user data read from the replies, other families skipped', (t) => {
  const [request] = parse(inetTablesRequest());
  t.is(request!.type, NFT(1));
  t.is(request!.flags, 0x1 | 0x300);
  const w = new NetlinkWriter();
  for (const [family, name] of [[1, 'istio-proxy-nat'], [2, 'ip-only'], [1, 'filter']] as const) {
    const m = w.beginMessage(NFT(0), 0x2, 0, family);
    w.string(1, name);
    w.u32be(2, 0);
    if (name === 'istio-proxy-nat') w.bytesAttr(6, Uint8Array.of(1, 2, 3));
    w.endMessage(m);
  }
  t.deepEqual(tablesOf(Buffer.from(w.bytes())), [{ name: 'istio-proxy-nat', userdata: Buffer.from([1, 2, 3]) }, { name: 'filter' }]);
  t.deepEqual(tablesOf(Buffer.alloc(0)), []);
});

test('the table stamp: round trip, found among other TLVs, and a digest that moves with any rule, chain or element', (t) => {
  const digest = nftTablesDigest([TABLE]);
  t.is(digest.length, 32);
  const stamp = encodeStamp(7, digest);
  t.deepEqual(decodeStamp(stamp), { generation: 7, digest });
  const withComment = Buffer.concat([Uint8Array.of(0, 4), Buffer.from('hi!\0'), stamp]);
  t.deepEqual(decodeStamp(withComment), { generation: 7, digest });
  t.is(decodeStamp(Uint8Array.of(0x49, 3, 1, 2, 3)), undefined, 'not ours: wrong length');
  t.is(decodeStamp(undefined), undefined);
  t.is(nextGeneration(41), 42);
  t.is(nextGeneration(0xffffffff), 1, 'the kernel skips generation 0');

  const ruleChanged: NftTable = { ...TABLE, chains: [TABLE.chains[0]!, { ...TABLE.chains[1]!, rules: ['tcp dport { 80, 444 } counter return'] }] };
  const chainChanged: NftTable = { ...TABLE, chains: [{ ...TABLE.chains[0]!, base: { type: 'nat', hook: 'output', priority: -99 } }, TABLE.chains[1]!] };
  const withSet = (cidr: string): NftTable => ({ ...TABLE, sets: [nftSet('s', mergeCidrsPacked([parseCidr(cidr)!]))] });
  const digests = [digest, nftTablesDigest([ruleChanged]), nftTablesDigest([chainChanged]), nftTablesDigest([withSet('192.0.2.0/24')]), nftTablesDigest([withSet('192.0.2.0/25')])];
  t.is(new Set(digests.map((d) => d.toString('hex'))).size, digests.length);
  t.true(nftTablesDigest([withSet('192.0.2.0/24')]).equals(nftTablesDigest([withSet('192.0.2.0/24')])), 'and is the same for the same tables');
});

test('the stamp goes on the NEWTABLE that creates each written table, not on the add before a delete', (t) => {
  const stamp = encodeStamp(3, nftTablesDigest([TABLE]));
  const msgs = parse(buildNftBatch({ replace: ['istio-proxy-nat'], create: [], tables: [TABLE] }, 2, stamp).bytes);
  const newTables = msgs.filter((m) => m.type === NFT(0));
  t.is(newTables.length, 2);
  t.false(newTables[0]!.attrs.has(6), 'the add that makes the delete safe');
  t.deepEqual(newTables[1]!.attrs.get(6)![0]!, Buffer.from(stamp));
  const created = parse(buildNftBatch({ replace: [], create: ['istio-proxy-nat', 'istio-proxy-raw'], tables: [TABLE] }, 2, stamp).bytes).filter((m) => m.type === NFT(0));
  t.deepEqual(created.map((m) => m.attrs.has(6)), [true, false], 'only tables the plan writes');
});

test('a clean-up batch deletes the tables it names, nothing else, and asks for the last ack', (t) => {
  const batch = buildNftBatch({ remove: ['istio-proxy-nat', 'istio-proxy-raw'], replace: [], create: [], tables: [] });
  const msgs = parse(batch.bytes);
  t.deepEqual(msgs.map((m) => m.type), [0x10, NFT(2), NFT(2), 0x11]);
  t.deepEqual(msgs.slice(1, 3).map((m) => str(m.attrs.get(1)![0]!)), ['istio-proxy-nat', 'istio-proxy-raw']);
  t.deepEqual(batch.acked, [3]);
});

test("port sets carry the user data nft 1.0.6 writes for `tcp dport { … }` and `udp dport { … }`", (t) => {
  // Captured from `nft -c --debug=mnl` for each form: key byte order, then the typeof payload
  // (protocol description 8 = tcp, 6 = udp; field 2 = dport).
  const expected = { tcp: '0004020000000314000407000000010c000408000000010402000000', udp: '0004020000000314000407000000010c000406000000010402000000' };
  for (const protocol of ['tcp', 'udp'] as const) {
    const table: NftTable = {
      name: 't',
      sets: [],
      chains: [
        {
          name: 'c',
          rules: [`${protocol} dport { 53, 54 } counter return`],
          sources: [{ rule: { matches: [{ kind: 'protocol', protocol }, { kind: 'destinationPorts', ports: [53, 54] }], target: { kind: 'return' } } }],
        },
      ],
    };
    const set = parse(buildNftBatch({ replace: [], create: ['t'], tables: [table] }).bytes).find((m) => m.type === NFT(9))!;
    t.is(set.attrs.get(13)![0]!.toString('hex'), expected[protocol], protocol);
  }
});

test('a batch built against a generation carries it on BATCH_BEGIN; the kernel refusing it reads as a lost race', (t) => {
  const guarded = buildNftBatch({ remove: ['istio-proxy-nat'], replace: [], create: [], tables: [] }, 41);
  const begin = parse(guarded.bytes)[0]!;
  t.is(begin.type, 0x10);
  t.is(begin.attrs.get(1)![0]!.readUInt32BE(0), 41);
  t.is(parse(buildNftBatch({ remove: ['istio-proxy-nat'], replace: [], create: [], tables: [] }).bytes)[0]!.attrs.size, 0, 'no generation, no attribute');
  const err = t.throws(() => checkReplies(guarded, [{ seq: 1, error: 85, message: '' }]), { instanceOf: NetlinkRejectedError });
  t.regex(err!.message, /ruleset changed after interpose read it .*nothing was applied/);
});

test('the generation request and its answer', (t) => {
  const [request] = parse(generationRequest());
  t.is(request!.type, NFT(16));
  t.is(request!.flags, 0x1 | 0x4);
  const w = new NetlinkWriter();
  const m = w.beginMessage(NFT(15), 0, 1, 0);
  w.u32be(1, 1234);
  w.u32be(2, 99);
  w.endMessage(m);
  t.is(generationOf(Buffer.from(w.bytes())), 1234);
  t.throws(() => generationOf(Buffer.alloc(0)), { message: /without a generation id/ });
});

test('holdsStamped: only a table list read within one generation, with every table stamped at it with this digest', async (t) => {
  const digest = nftTablesDigest([TABLE]);
  const stamped = (generation: number, d = digest) => Buffer.from(encodeStamp(generation, d));
  const check = async (generations: number[], tables: Array<{ name: string; userdata?: Buffer }>, names = ['istio-proxy-nat']) => {
    const gens = [...generations];
    const tx = new NetlinkTransaction('', { generation: () => gens.shift()!, tables: () => tables });
    await tx.tableNames();
    return tx.holdsStamped(names, digest);
  };
  t.true(await check([5, 5], [{ name: 'istio-proxy-nat', userdata: stamped(5) }]));
  t.false(await check([5, 6], [{ name: 'istio-proxy-nat', userdata: stamped(5) }]), 'a commit between the two reads');
  t.false(await check([6, 6], [{ name: 'istio-proxy-nat', userdata: stamped(5) }]), 'a commit since ours');
  t.false(await check([5, 5], [{ name: 'istio-proxy-nat', userdata: stamped(5, Buffer.alloc(32)) }]), 'another configuration');
  t.false(await check([5, 5], [{ name: 'istio-proxy-nat' }]), 'no stamp (committed through nft -f)');
  t.false(await check([5, 5], [{ name: 'istio-proxy-nat', userdata: stamped(5) }], ['istio-proxy-nat', 'istio-proxy-raw']), 'a wanted table missing');
  t.false(new NetlinkTransaction('').holdsStamped(['istio-proxy-nat'], digest), 'nothing read yet');
});
