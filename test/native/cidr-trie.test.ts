/** CidrTrie semantics on hand-picked cases, and the argument errors it raises before the addon. */
import test, { type ExecutionContext } from 'ava';
import { existsSync, statSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { CidrTrie } from '../../src/native.js';
import * as entry from '../../src/index.js';

/** A trie holding each prefix with its value, inserted in the order given. */
function trieOf(entries: Record<string, number>): CidrTrie {
  const trie = new CidrTrie();
  for (const [cidr, value] of Object.entries(entries)) trie.insert(cidr, value);
  return trie;
}

/** Each address looks up to its value (undefined: no prefix holds it). */
function expectLookups(t: ExecutionContext, trie: CidrTrie, expected: Record<string, number | undefined>): void {
  for (const [address, value] of Object.entries(expected)) t.is(trie.lookup(address), value, address);
}

test('longest prefix wins, and deleting a prefix restores the next-longest one', (t) => {
  const trie = trieOf({ '0.0.0.0/0': 0, '10.0.0.0/8': 8, '10.1.0.0/16': 16, '10.1.2.0/24': 24, '10.1.2.128/25': 25, '10.1.2.3/32': 32 });
  t.is(trie.size, 6);
  expectLookups(t, trie, { '10.1.2.3': 32, '10.1.2.200': 25, '10.1.2.4': 24, '10.1.3.4': 16, '10.2.0.1': 8, '192.0.2.1': 0 });

  t.true(trie.delete('10.1.2.0/24'));
  t.false(trie.delete('10.1.2.0/24'));
  expectLookups(t, trie, { '10.1.2.4': 16, '10.1.2.200': 25 });
  t.true(trie.delete('10.1.0.0/16'));
  expectLookups(t, trie, { '10.1.2.4': 8 });
  t.true(trie.delete('0.0.0.0/0'));
  expectLookups(t, trie, { '192.0.2.1': undefined });
  t.true(trie.delete('10.1.2.3/32'));
  expectLookups(t, trie, { '10.1.2.3': 8 });
  t.is(trie.size, 2);
});

test('host bits are masked, and inserting a prefix again replaces its value', (t) => {
  const trie = trieOf({ '10.1.2.3/8': 1 });
  expectLookups(t, trie, { '10.200.0.1': 1 });
  trie.insert('10.0.0.0/8', 2);
  t.is(trie.size, 1);
  expectLookups(t, trie, { '10.200.0.1': 2 });
  trie.insert('2001:db8:ffff::1/32', 3);
  expectLookups(t, trie, { '2001:db8::5': 3 });
  t.true(trie.delete('2001:db8::/32'));
  t.is(trie.size, 1);
});

test('IPv6 prefixes of every depth, and IPv4-mapped addresses match IPv4 prefixes', (t) => {
  const trie = trieOf({ '::/0': 1, '2001:db8::/32': 2, '2001:db8:1::/48': 3, '2001:db8:1:2::/63': 4, '2001:db8:1:2::7/128': 5 });
  expectLookups(t, trie, { '2001:db8:1:2::7': 5, '2001:db8:1:3::1': 4, '2001:db8:1:4::1': 3, '2001:db8:2::1': 2, '2001:db9::1': 1 });
  t.true(trie.delete('2001:db8:1:2::/63'));
  expectLookups(t, trie, { '2001:db8:1:3::1': 3 });

  trie.insert('192.0.2.0/24', 10);
  // Mapped addresses are IPv4 traffic: IPv6 prefixes such as ::/0 do not apply to them.
  expectLookups(t, trie, { '::ffff:192.0.2.9': 10, '::ffff:c000:209': 10, '::ffff:198.51.100.1': undefined });
  trie.insert('::ffff:198.51.100.0/120', 11);
  expectLookups(t, trie, { '198.51.100.77': 11 });
  t.true(trie.delete('198.51.100.0/24'));
  t.is(trie.size, 5);
});

test('batch lookups write -1 for no match, IPv4 as numbers and IPv6 as 16-byte groups', (t) => {
  const trie = trieOf({ '203.0.113.0/24': 5, '2001:db8::/32': 6 });
  const out4 = new Int32Array(3);
  trie.lookupManyV4(Uint32Array.of(0xcb007101, 0xc0000201, 0xcb0071ff), out4);
  t.deepEqual([...out4], [5, -1, 5]);
  const addrs6 = new Uint8Array(48);
  addrs6.set([0x20, 0x01, 0x0d, 0xb8], 0);
  addrs6.set([0x20, 0x01, 0x0d, 0xb9], 16);
  addrs6.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 9], 32);
  const out6 = new Int32Array(3);
  trie.lookupManyV6(addrs6, out6);
  t.deepEqual([...out6], [6, -1, 5]);
});

test('insertMany inserts in order and validates every entry before inserting any', (t) => {
  const trie = new CidrTrie();
  trie.insertMany(['10.0.0.0/8', '2001:db8::/32', '10.1.0.0/16', '10.0.0.0/8', '::ffff:192.0.2.0/120'], [1, 2, 3, 4, 5]);
  t.is(trie.size, 4);
  // 10.0.0.0/8 was given twice: the later value won.
  expectLookups(t, trie, { '10.2.0.1': 4, '10.1.0.1': 3, '2001:db8::1': 2, '192.0.2.7': 5 });
  trie.insertMany([], []);
  t.is(trie.size, 4);

  const fresh = new CidrTrie();
  t.throws(() => fresh.insertMany(['10.0.0.0/8', '10.0.0.0/40'], [1, 2]), {
    instanceOf: RangeError,
    message: /insertMany: cidrs\[1\] "10\.0\.0\.0\/40".*0-32/,
  });
  t.throws(() => fresh.insertMany(['10.0.0.0/8', 'nope'], [1, 2]), { instanceOf: TypeError, message: /cidrs\[1\] "nope"/ });
  t.throws(() => fresh.insertMany(['10.0.0.0/8', 7 as unknown as string], [1, 2]), {
    instanceOf: TypeError,
    message: /cidrs\[1\] must be a string/,
  });
  t.throws(() => fresh.insertMany(['10.0.0.0/8', '2001:db8::/32'], [1, -2]), { instanceOf: RangeError, message: /values\[1\] -2/ });
  t.throws(() => fresh.insertMany(['10.0.0.0/8'], ['1' as unknown as number]), { instanceOf: TypeError, message: /values\[0\] must be/ });
  t.throws(() => fresh.insertMany(['10.0.0.0/8'], [1, 2]), { instanceOf: RangeError, message: /values has length 2/ });
  t.throws(() => fresh.insertMany('10.0.0.0/8' as unknown as string[], [1]), { instanceOf: TypeError, message: /cidrs must be an array/ });
  t.throws(() => fresh.insertMany(['10.0.0.0/8'], 1 as unknown as number[]), { instanceOf: TypeError, message: /values must be/ });
  t.is(fresh.size, 0);
});

test('dotted-decimal IPv4 parsing accepts exactly a.b.c.d with octets 0-255 and no leading zeros', (t) => {
  const trie = trieOf({ '0.0.0.0/0': 1 });
  for (const good of ['0.0.0.0', '255.255.255.255', '1.2.3.4', '10.200.30.9', '199.99.9.100']) {
    t.is(trie.lookup(good), 1, good);
  }
  for (const bad of ['256.0.0.0', '1.2.3.256', '1.2.3', '1.2.3.4.5', '1.2.3.', '.1.2.3', '1..2.3', '01.2.3.4', '1.2.3.04',
    '00.0.0.0', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4a', '1234.1.1.1', '1.2.3.-4', '', '1.2.3.4/']) {
    t.throws(() => trie.lookup(bad), { instanceOf: TypeError }, JSON.stringify(bad));
  }
});

test('memoryBytes is reported and grows with content', (t) => {
  const trie = new CidrTrie();
  const empty = trie.memoryBytes;
  for (let i = 0; i < 1000; i++) trie.insert(`10.${i >> 8}.${i & 255}.0/24`, i);
  t.true(trie.memoryBytes > empty);
  t.is(trie.size, 1000);
});

test('bad arguments throw TypeError/RangeError naming the argument', (t) => {
  const trie = new CidrTrie();
  t.throws(() => trie.insert('10.0.0.0/33', 1), { instanceOf: RangeError, message: /cidr "10\.0\.0\.0\/33".*0-32/ });
  t.throws(() => trie.insert('2001:db8::/129', 1), { instanceOf: RangeError, message: /cidr .*0-128/ });
  t.throws(() => trie.insert('10.0.0.0', 1), { instanceOf: TypeError, message: /cidr "10\.0\.0\.0" is not a CIDR/ });
  t.throws(() => trie.insert('10.0.0/8', 1), { instanceOf: TypeError, message: /cidr "10\.0\.0\/8"/ });
  t.throws(() => trie.insert('010.0.0.0/8', 1), { instanceOf: TypeError, message: /cidr/ });
  t.throws(() => trie.insert('10.0.0.0/-1', 1), { instanceOf: TypeError, message: /cidr/ });
  t.throws(() => trie.insert('fe80::1%eth0/64', 1), { instanceOf: TypeError, message: /cidr/ });
  t.throws(() => trie.insert(42 as unknown as string, 1), { instanceOf: TypeError, message: /cidr must be a string/ });
  t.throws(() => trie.insert('10.0.0.0/8', -1), { instanceOf: RangeError, message: /value -1/ });
  t.throws(() => trie.insert('10.0.0.0/8', 2 ** 31), { instanceOf: RangeError, message: /value 2147483648/ });
  t.throws(() => trie.insert('10.0.0.0/8', 0.5), { instanceOf: RangeError, message: /value 0\.5/ });
  t.throws(() => trie.insert('10.0.0.0/8', '1' as unknown as number), { instanceOf: TypeError, message: /value must be/ });
  t.throws(() => trie.delete('nope'), { instanceOf: TypeError, message: /delete: cidr "nope"/ });
  t.throws(() => trie.lookup('10.0.0.256'), { instanceOf: TypeError, message: /ip "10\.0\.0\.256"/ });
  t.throws(() => trie.lookup('10.0.0.1/32'), { instanceOf: TypeError, message: /ip/ });
  t.throws(() => trie.lookup(undefined as unknown as string), { instanceOf: TypeError, message: /ip/ });
  t.throws(() => trie.lookupManyV4(new Int32Array(1) as unknown as Uint32Array, new Int32Array(1)), {
    instanceOf: TypeError,
    message: /addrs must be a Uint32Array/,
  });
  t.throws(() => trie.lookupManyV4(new Uint32Array(2), new Uint32Array(2) as unknown as Int32Array), {
    instanceOf: TypeError,
    message: /out must be an Int32Array/,
  });
  t.throws(() => trie.lookupManyV4(new Uint32Array(2), new Int32Array(1)), { instanceOf: RangeError, message: /out has length 1/ });
  t.throws(() => trie.lookupManyV6(new Uint8Array(17), new Int32Array(1)), { instanceOf: RangeError, message: /addrs has length 17/ });
  t.throws(() => trie.lookupManyV6(new Uint8Array(32), new Int32Array(1)), { instanceOf: RangeError, message: /out has length 1/ });
  t.is(trie.size, 0);
});

test('the package entry exports the native API and error classes', async (t) => {
  t.is(entry.CidrTrie, CidrTrie);
  for (const name of ['originalDst', 'originalDstLookup', 'setTransparent', 'setMark', 'socketFd', 'NativeError', 'InterceptError'] as const) {
    t.is(typeof entry[name], 'function', name);
  }
  // The built package, imported by name (self-reference through package.json "exports").
  const built = new URL('../../dist/net/cidr-trie.js', import.meta.url);
  const sources = ['../../src/native.ts', '../../src/net/cidr-trie.ts', '../../src/index.ts'].map((p) => new URL(p, import.meta.url));
  if (!existsSync(built) || sources.some((src) => statSync(src).mtimeMs > statSync(built).mtimeMs)) {
    t.log('dist/ missing or older than src/ (run npm run build): skipped the import of the built package');
    return;
  }
  const pkg = (await import('interpose' as string)) as typeof entry;
  const trie = new pkg.CidrTrie();
  trie.insert('192.0.2.0/24', 3);
  t.is(trie.lookup('192.0.2.1'), 3);
});

test('IPv6 text in every RFC 4291 form parses to the same address as ipaddr.js reads', (t) => {
  const trie = new CidrTrie();
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16;
  const addrs: ipaddr.IPv6[] = [];
  for (let i = 0; i < 2000; i++) {
    // Runs of zero groups so that :: compression appears at the start, middle and end.
    const parts = Array.from({ length: 8 }, () => (next() % 3 === 0 ? 0 : next()));
    const a = new ipaddr.IPv6(parts);
    if (a.range() === 'ipv4Mapped') continue;
    addrs.push(a);
    trie.insert(`${a.toNormalizedString()}/128`, i);
  }
  for (const [i, a] of addrs.entries()) {
    const v = trie.lookup(a.toNormalizedString());
    t.is(trie.lookup(a.toRFC5952String()), v);
    // Every group at four digits, upper case (ipaddr.js's toFixedLengthString, absent from its types).
    const fixedLength = a.parts.map((part) => part.toString(16).padStart(4, '0')).join(':');
    t.is(trie.lookup(fixedLength.toUpperCase()), v);
    if (i > 50) break;
  }
  t.true(addrs.every((a) => trie.lookup(a.toRFC5952String()) !== undefined));
  trie.insert('::/128', 1);
  trie.insert('::1.2.3.4/128', 2); // IPv4-compatible, not IPv4-mapped
  t.is(trie.lookup('0:0:0:0:0:0:0:0'), 1);
  t.is(trie.lookup('::0102:0304'), 2);
  t.is(trie.lookup('1.2.3.4'), undefined);
  for (const bad of [':', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', '1:', 'g::1', '::1.2.3', '::1.2.3.4.5', '::ffff:1.2.3.4:1']) {
    t.throws(() => trie.lookup(bad), { instanceOf: TypeError }, bad);
  }
});
