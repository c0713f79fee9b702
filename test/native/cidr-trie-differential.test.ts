/**
 * Randomized differential test: CidrTrie against a naive longest-prefix match (one Map per
 * prefix length, probed from the longest length down). Overlapping prefixes of every length in
 * both families, host bits left set, IPv4-mapped addresses and prefixes, and inserts, value
 * replacements and deletes interleaved with lookups through every entry point.
 *
 * Reproduce a failure with CIDR_TRIE_SEED=<seed printed below> npx ava test/native/cidr-trie-differential.test.ts
 */
import test from 'ava';
import { CidrTrie } from '../../src/native.js';

const seed = process.env.CIDR_TRIE_SEED ? Number(process.env.CIDR_TRIE_SEED) : (Date.now() % 2 ** 31) >>> 0;

/** mulberry32: small, seedable, good enough to spread prefixes. */
function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const MASK128 = (1n << 128n) - 1n;
const shift6 = Array.from({ length: 129 }, (_, l) => BigInt(128 - l));

/** The oracle: exact-match maps per length. */
class NaiveLpm {
  readonly v4 = Array.from({ length: 33 }, () => new Map<number, number>());
  readonly v6 = Array.from({ length: 129 }, () => new Map<bigint, number>());

  static key4(addr: number, len: number): number {
    return len === 0 ? 0 : (addr >>> (32 - len)) >>> 0;
  }
  static key6(addr: bigint, len: number): bigint {
    return addr >> shift6[len]!;
  }
  get size(): number {
    let n = 0;
    for (const m of this.v4) n += m.size;
    for (const m of this.v6) n += m.size;
    return n;
  }
  lookup4(addr: number): number {
    return NaiveLpm.longest(this.v4, (l) => NaiveLpm.key4(addr, l));
  }
  lookup6(addr: bigint): number {
    if (addr >> 32n === 0xffffn) return this.lookup4(Number(addr & 0xffffffffn));
    return NaiveLpm.longest(this.v6, (l) => NaiveLpm.key6(addr, l));
  }
  /** The value of the longest prefix present: `byLength[l]` holds the prefixes of length l by keyAt(l). */
  private static longest<K>(byLength: readonly Map<K, number>[], keyAt: (len: number) => K): number {
    for (let l = byLength.length - 1; l >= 0; l--) {
      const m = byLength[l]!;
      if (m.size === 0) continue;
      const v = m.get(keyAt(l));
      if (v !== undefined) return v;
    }
    return -1;
  }
}

function v4Text(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}
function v6Text(a: bigint): string {
  const parts: string[] = [];
  for (let i = 7; i >= 0; i--) parts.push(((a >> BigInt(16 * i)) & 0xffffn).toString(16));
  return parts.join(':');
}
function v6Bytes(a: bigint, out: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i++) out[offset + i] = Number((a >> BigInt(8 * (15 - i))) & 0xffn);
}

test('CidrTrie agrees with a naive longest-prefix match under random inserts, deletes and lookups', (t) => {
  console.log(`cidr-trie differential seed=${seed} (set CIDR_TRIE_SEED to reproduce)`);
  t.log(`seed=${seed}`);
  const next = rng(seed);
  const trie = new CidrTrie();
  const ref = new NaiveLpm();
  const known4: Array<[number, number]> = [];
  const known6: Array<[bigint, number]> = [];
  const rand128 = () => (BigInt(next()) << 96n) | (BigInt(next()) << 64n) | (BigInt(next()) << 32n) | BigInt(next());

  // An address (or prefix base) that often lies inside a known prefix, so lookups and new
  // prefixes nest at every depth; host bits stay random.
  const addr4 = (): number => {
    const r = next();
    if (known4.length === 0 || next() % 4 === 0) return r;
    const [p, l] = known4[next() % known4.length]!;
    const keep = l === 0 ? 0 : (~0 << (32 - l)) >>> 0;
    return ((p & keep) | (r & ~keep)) >>> 0;
  };
  const addr6 = (): bigint => {
    const r = rand128();
    if (known6.length === 0 || next() % 4 === 0) return r;
    const [p, l] = known6[next() % known6.length]!;
    const keep = l === 0 ? 0n : (MASK128 << BigInt(128 - l)) & MASK128;
    return (p & keep) | (r & ~keep & MASK128);
  };

  let inserts = 0;
  let deletes = 0;
  let lookups = 0;
  const ROUNDS = 100;
  const LOOKUPS4 = 7000;
  const LOOKUPS6 = 4000;
  const batch4 = new Uint32Array(LOOKUPS4);
  const out4 = new Int32Array(LOOKUPS4);
  const batch6 = new Uint8Array(LOOKUPS6 * 16);
  const out6 = new Int32Array(LOOKUPS6);
  const addrs6: bigint[] = new Array(LOOKUPS6);

  const fail = (what: string): never => {
    throw new Error(`${what} (seed ${seed}; rerun with CIDR_TRIE_SEED=${seed})`);
  };

  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < 2600; i++) {
      const op = next() % 13;
      const v6 = next() % 3 === 0;
      if (op < 3) {
        // delete: usually a known prefix (maybe already deleted), sometimes a random one
        deletes++;
        if (!v6) {
          const [a, l] = known4.length > 0 && op < 2 ? known4[next() % known4.length]! : [next(), next() % 33];
          const expect = ref.v4[l]!.delete(NaiveLpm.key4(a, l));
          if (trie.delete(`${v4Text(a)}/${l}`) !== expect) fail(`delete ${v4Text(a)}/${l} returned ${!expect}`);
        } else {
          const [a, l] = known6.length > 0 && op < 2 ? known6[next() % known6.length]! : [rand128(), next() % 129];
          const expect = ref.v6[l]!.delete(NaiveLpm.key6(a, l));
          if (trie.delete(`${v6Text(a)}/${l}`) !== expect) fail(`delete ${v6Text(a)}/${l} returned ${!expect}`);
        }
      } else {
        inserts++;
        const value = next() & 0x7fffffff;
        const existing = op === 3;
        if (!v6) {
          const [a, l] = existing && known4.length > 0 ? known4[next() % known4.length]! : [addr4(), next() % 33];
          ref.v4[l]!.set(NaiveLpm.key4(a, l), value);
          // Now and then written as an IPv4-mapped IPv6 prefix, which must land in the IPv4 table.
          trie.insert(next() % 10 === 0 ? `::ffff:${v4Text(a)}/${96 + l}` : `${v4Text(a)}/${l}`, value);
          known4.push([a, l]);
        } else {
          const [a, l] = existing && known6.length > 0 ? known6[next() % known6.length]! : [addr6(), next() % 129];
          // Avoid writing random IPv6 prefixes inside ::ffff:0:0/96, which the trie stores as IPv4.
          if (l >= 96 && a >> 32n === 0xffffn) continue;
          ref.v6[l]!.set(NaiveLpm.key6(a, l), value);
          trie.insert(`${v6Text(a)}/${l}`, value);
          known6.push([a, l]);
        }
      }
    }
    if (trie.size !== ref.size) fail(`size ${trie.size}, expected ${ref.size}`);

    for (let i = 0; i < LOOKUPS4; i++) batch4[i] = addr4();
    trie.lookupManyV4(batch4, out4);
    for (let i = 0; i < LOOKUPS4; i++) {
      const expect = ref.lookup4(batch4[i]!);
      if (out4[i] !== expect) fail(`lookupManyV4 ${v4Text(batch4[i]!)} gave ${out4[i]}, expected ${expect}`);
      if (i % 16 === 0) {
        const got = trie.lookup(v4Text(batch4[i]!)) ?? -1;
        if (got !== expect) fail(`lookup ${v4Text(batch4[i]!)} gave ${got}, expected ${expect}`);
      }
    }
    for (let i = 0; i < LOOKUPS6; i++) {
      // One in eight is an IPv4-mapped address, answered from the IPv4 prefixes.
      const a = next() % 8 === 0 ? (0xffffn << 32n) | BigInt(addr4()) : addr6();
      addrs6[i] = a;
      v6Bytes(a, batch6, 16 * i);
    }
    trie.lookupManyV6(batch6, out6);
    for (let i = 0; i < LOOKUPS6; i++) {
      const a = addrs6[i]!;
      const expect = ref.lookup6(a);
      if (out6[i] !== expect) fail(`lookupManyV6 ${v6Text(a)} gave ${out6[i]}, expected ${expect}`);
      if (i % 16 === 0) {
        const got = trie.lookup(v6Text(a)) ?? -1;
        if (got !== expect) fail(`lookup ${v6Text(a)} gave ${got}, expected ${expect}`);
      }
    }
    lookups += LOOKUPS4 + LOOKUPS6;
  }

  t.log(`${inserts} inserts, ${deletes} deletes, ${lookups} lookups, ${trie.size} prefixes at the end`);
  t.true(lookups >= 1_000_000);
  t.true(inserts >= 100_000);
  t.is(trie.size, ref.size);
});

test('insertMany loads the same table as inserting one by one, duplicates resolved in order', (t) => {
  const s2 = (seed ^ 0x5bd1e995) >>> 0;
  t.log(`seed=${seed}`);
  const next = rng(s2);
  const ref = new NaiveLpm();
  const cidrs: string[] = [];
  const values: number[] = [];
  const bases4: number[] = [];
  for (let i = 0; i < 60_000; i++) {
    const value = next() & 0x7fffffff;
    const r = next() % 10;
    if (r < 6) {
      // Nested around earlier bases so prefixes overlap at every level; some exact repeats.
      const a = bases4.length > 0 && r < 3 ? bases4[next() % bases4.length]! ^ (next() & 0xfff) : next();
      const l = next() % 33;
      bases4.push(a);
      ref.v4[l]!.set(NaiveLpm.key4(a, l), value);
      cidrs.push(r === 0 ? `::ffff:${v4Text(a)}/${96 + l}` : `${v4Text(a)}/${l}`);
    } else {
      const a = (BigInt(0x2001 + (next() % 4)) << 112n) | (BigInt(next()) << 64n) | BigInt(next());
      const l = next() % 129;
      ref.v6[l]!.set(NaiveLpm.key6(a, l), value);
      cidrs.push(`${v6Text(a)}/${l}`);
    }
    values.push(value);
    if (next() % 50 === 0 && cidrs.length > 1) {
      // The same prefix again with a new value: the later one must win.
      const j = next() % cidrs.length;
      const again = next() & 0x7fffffff;
      cidrs.push(cidrs[j]!);
      values.push(again);
      const [text, len] = cidrs[j]!.split('/') as [string, string];
      const l = Number(len);
      if (text.includes(':') && !text.startsWith('::ffff:')) {
        const big = BigInt(`0x${text.split(':').map((g) => g.padStart(4, '0')).join('')}`);
        ref.v6[l]!.set(NaiveLpm.key6(big, l), again);
      } else {
        const v4 = text.startsWith('::ffff:') ? text.slice(7) : text;
        const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
        const l4 = text.startsWith('::ffff:') ? l - 96 : l;
        ref.v4[l4]!.set(NaiveLpm.key4(((a << 24) | (b << 16) | (c << 8) | d) >>> 0, l4), again);
      }
    }
  }
  const trie = new CidrTrie();
  trie.insertMany(cidrs, values);
  t.is(trie.size, ref.size);
  const probes = new Uint32Array(200_000);
  for (let i = 0; i < probes.length; i++) {
    probes[i] = next() % 2 === 0 ? bases4[next() % bases4.length]! ^ (next() & 0xff) : next();
  }
  const out = new Int32Array(probes.length);
  trie.lookupManyV4(probes, out);
  let bad = 0;
  for (let i = 0; i < probes.length; i++) {
    if (out[i] !== ref.lookup4(probes[i]!) && bad++ < 5) t.fail(`lookupManyV4 ${v4Text(probes[i]!)} gave ${out[i]}, expected ${ref.lookup4(probes[i]!)}`);
  }
  for (let i = 0; i < 20_000; i++) {
    const a = (BigInt(0x2001 + (next() % 4)) << 112n) | (BigInt(next()) << 64n) | BigInt(next());
    const got = trie.lookup(v6Text(a)) ?? -1;
    if (got !== ref.lookup6(a) && bad++ < 5) t.fail(`lookup ${v6Text(a)} gave ${got}, expected ${ref.lookup6(a)}`);
  }
  t.is(bad, 0);
});
