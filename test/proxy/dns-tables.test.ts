/**
 * The DNS proxy's pure parts: Istio's auto-allocation, the name table, the answer cache's TTL
 * rules, resolv.conf settings, the TCP frame bound, and the registry claiming allocated
 * addresses. No sockets, no root.
 */
import test from 'ava';
import type { DecodedPacket } from 'dns-packet';
import { resolverSettings } from '../../src/config/resolv-conf.js';
import { AnswerCache, cacheTtl } from '../../src/proxy/dns/answer-cache.js';
import { autoAllocate, fnv1a32 } from '../../src/proxy/dns/auto-allocate.js';
import { NameTable } from '../../src/proxy/dns/name-table.js';
import { FrameTooLargeError, TcpFrameReader, frame } from '../../src/proxy/dns/tcp-frames.js';
import type { ServiceEntry } from '../../src/proxy/istio-types.js';
import { Registry } from '../../src/proxy/registry.js';
import { CidrTrie } from '../../src/native.js';

function entry(name: string, hosts: string[], extra: Partial<ServiceEntry> = {}): ServiceEntry {
  return {
    kind: 'ServiceEntry',
    name,
    namespace: 'default',
    hosts,
    addresses: [],
    ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }],
    resolution: 'DNS',
    location: 'MESH_EXTERNAL',
    endpoints: [],
    ...extra,
  };
}

test('fnv1a32 is Go hash/fnv New32a', (t) => {
  // Reference values of the FNV-1a 32-bit test suite.
  t.is(fnv1a32(''), 0x811c9dc5);
  t.is(fnv1a32('a'), 0xe40c292c);
  t.is(fnv1a32('foobar'), 0xbf9cf968);
});

test('auto-allocation: concrete, address-less, resolvable hosts only; stable, unique, never .0 or .255', (t) => {
  const entries = [
    entry('db', ['db.internal', 'db2.internal']),
    entry('fixed', ['fixed.internal'], { addresses: ['192.0.2.50'] }),
    entry('wild', ['*.wild.internal']),
    entry('none', ['none.internal'], { resolution: 'NONE' }),
    ...Array.from({ length: 300 }, (_, i) => entry(`svc${i}`, [`svc${i}.example`])),
  ];
  const allocated = autoAllocate(entries);
  t.deepEqual(
    allocated.filter((a) => a.host.endsWith('.internal')).map((a) => a.host).sort(),
    ['db.internal', 'db2.internal'],
  );
  t.is(allocated.length, 302);
  t.is(new Set(allocated.map((a) => a.v4)).size, 302);
  t.is(new Set(allocated.map((a) => a.v6)).size, 302);
  for (const a of allocated) {
    t.regex(a.v4, /^240\.240\.\d{1,3}\.\d{1,3}$/);
    const last = Number(a.v4.split('.')[3]);
    t.true(last > 0 && last < 255, a.v4);
    t.true(a.v6.startsWith('2001:2::f0f0:'), a.v6);
  }
  // Deterministic: the same entries give the same addresses on every reload (as on every istiod).
  t.deepEqual(autoAllocate(entries).map((a) => a.v4), allocated.map((a) => a.v4));
});

test('name table: addresses, NODATA for the other family, search-suffix CNAMEs, wildcards, not ours', (t) => {
  const entries = [
    entry('db', ['db.internal'], { addresses: ['192.0.2.50', '2001:db8::50', '198.51.100.0/24'] }),
    entry('v4', ['v4.internal'], { addresses: ['192.0.2.51'] }),
    entry('wild', ['*.wild.internal'], { addresses: ['192.0.2.52'] }),
    entry('all', ['*'], { addresses: ['192.0.2.53'] }),
    entry('auto', ['auto.internal']),
  ];
  const table = new NameTable(entries, autoAllocate([entries[4]!]), ['ns1.svc.cluster.local']);
  t.deepEqual(table.lookup('DB.Internal.', 4), { addresses: ['192.0.2.50'] });
  t.deepEqual(table.lookup('db.internal', 6), { addresses: ['2001:db8::50'] });
  t.deepEqual(table.lookup('v4.internal', 6), { addresses: [] });
  t.deepEqual(table.lookup('db.internal.ns1.svc.cluster.local', 4), { cname: 'db.internal', addresses: ['192.0.2.50'] });
  t.deepEqual(table.lookup('a.b.wild.internal', 4), { addresses: ['192.0.2.52'] });
  t.regex(table.lookup('auto.internal', 4)!.addresses[0]!, /^240\.240\./);
  t.is(table.lookup('www.example.org', 4), undefined);
  t.is(table.lookup('db.internal.other.suffix', 4), undefined);
});

const response = (over: Partial<DecodedPacket>): DecodedPacket =>
  ({ type: 'response', id: 1, flags: 0, flag_tc: false, questions: [], answers: [], authorities: [], additionals: [], ...over }) as DecodedPacket;
const soa = (ttl: number, minimum: number) => ({
  type: 'SOA' as const,
  name: 'example.org',
  ttl,
  data: { mname: 'ns', rname: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});

test('answer cache: smallest answer TTL, SOA-bounded negative TTL, nothing for SERVFAIL or TC; aged on the way out', (t) => {
  const a = (ttl: number) => ({ type: 'A' as const, name: 'x', ttl, data: '192.0.2.1' });
  t.is(cacheTtl(response({ answers: [a(60), a(30)] })), 30);
  t.is(cacheTtl(response({ flags: 3, authorities: [soa(300, 5)] })), 5);
  t.is(cacheTtl(response({ flags: 3 })), 0);
  t.is(cacheTtl(response({ flags: 2, answers: [a(60)] })), 0);
  t.is(cacheTtl(response({ flag_tc: true, answers: [a(60)] })), 0);
  let now = 1_000_000;
  const cache = new AnswerCache(2, () => now);
  cache.store('k', response({ answers: [a(60)] }));
  now += 20_500;
  t.is(cache.get('k')!.answers![0]!.type === 'A' && (cache.get('k')!.answers![0] as { ttl: number }).ttl, 40);
  now += 40_000;
  t.is(cache.get('k'), undefined);
  cache.store('1', response({ answers: [a(60)] }));
  cache.store('2', response({ answers: [a(60)] }));
  cache.store('3', response({ answers: [a(60)] }));
  t.is(cache.size, 2);
  t.is(cache.get('1'), undefined);
});

test('resolv.conf: first three nameservers, the last search/domain line, timeout', (t) => {
  const s = resolverSettings(
    '# c\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\nnameserver bogus\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n' +
      'domain old.example\nsearch NS1.svc.cluster.local. svc.cluster.local\noptions ndots:5 timeout:2 attempts:3\n',
  );
  t.deepEqual(s.nameservers, ['192.0.2.1', 'fe80::1', '192.0.2.2']);
  t.deepEqual(s.search, ['ns1.svc.cluster.local', 'svc.cluster.local']);
  t.is(s.timeoutMs, 2000);
  t.deepEqual(resolverSettings(''), { nameservers: [], search: [], timeoutMs: 5000 });
});

test('TCP frames: split and joined messages come out whole; an oversized length is refused before it is buffered', (t) => {
  const reader = new TcpFrameReader(100);
  const both = Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two'))]);
  t.deepEqual(reader.push(both.subarray(0, 4)), []);
  t.deepEqual(reader.push(both.subarray(4)).map(String), ['one', 'two']);
  t.is(reader.pending, 0);
  t.throws(() => new TcpFrameReader(100).push(Buffer.from([0x00, 0x65])), { instanceOf: FrameTooLargeError });
});

test('the registry claims auto-allocated addresses for their host, and such an entry no longer owns its whole port', (t) => {
  const config = { mode: 'REGISTRY_ONLY' as const, serviceEntries: [entry('db', ['db.internal'])], virtualServices: [], destinationRules: [], gateways: [], ignored: [], warnings: [] };
  const naiveTable = () => new CidrTrie();
  const allocated = autoAllocate(config.serviceEntries);
  const registry = new Registry(config, naiveTable, allocated);
  t.is(registry.byAddress(allocated[0]!.v4, 5432)?.host, 'db.internal');
  t.is(registry.byAddress(allocated[0]!.v6, 5432)?.host, 'db.internal');
  t.is(registry.byAddress(allocated[0]!.v4, 5433), undefined);
  t.is(registry.tcpServiceOnPort(5432), undefined);
  // Without allocation, Istio's 0.0.0.0:PORT listener: the entry takes the whole port.
  t.is(new Registry(config, naiveTable).tcpServiceOnPort(5432)?.host, 'db.internal');
});
