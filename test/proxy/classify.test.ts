import test from 'ava';
import { CidrTrie } from '../../src/native.js';
import { classifyOutbound, needsSniffing, passesThroughUnseen, unseenPassthroughPorts } from '../../src/proxy/classify.js';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import { Registry } from '../../src/proxy/registry.js';
import { pickDestination, selectHttpRoute } from '../../src/proxy/routes.js';
import * as seed from '../../src/lab/seed-resources.js';

const registry = (...docs: string[]) => new Registry(parseProxyConfig(seed.docs(...docs)), () => new CidrTrie());

const tcpByAddress = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: db
spec:
  hosts: [db.example.com]
  addresses: [192.0.2.0/24, "2001:db8:5::/48"]
  ports:
  - number: 5432
    name: tcp
    protocol: TCP
  resolution: NONE
`;

const wildcardTls = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: wikipedia
spec:
  hosts: ["*.wikipedia.org"]
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: NONE
`;

const dst = (address: string, port: number) => ({ address, port });

test('ALLOW_ANY: anything unknown passes through; REGISTRY_ONLY: refused, HTTP left to the 502', (t) => {
  const allow = registry(seed.meshMode('ALLOW_ANY'));
  t.deepEqual(classifyOutbound(allow, dst('203.0.113.20', 443), { kind: 'tls', sni: 'www.google.com' }), { action: 'passthrough' });
  t.deepEqual(classifyOutbound(allow, dst('203.0.113.10', 80), { kind: 'http', host: 'httpbin.org' }), { action: 'passthrough' });
  const only = registry(seed.meshMode('REGISTRY_ONLY'));
  t.deepEqual(classifyOutbound(only, dst('203.0.113.20', 443), { kind: 'tls', sni: 'www.google.com' }), { action: 'refuse' });
  t.deepEqual(classifyOutbound(only, dst('203.0.113.20', 22), { kind: 'other' }), { action: 'refuse' });
  t.deepEqual(classifyOutbound(only, dst('203.0.113.10', 80), { kind: 'http', host: 'httpbin.org' }), { action: 'http' });
});

test('ServiceEntries: HTTP ports go to the HTTP layer, HTTPS by SNI is relayed to the entry', (t) => {
  const r = registry(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, seed.googleServiceEntry);
  t.deepEqual(classifyOutbound(r, dst('203.0.113.10', 80), { kind: 'http', host: 'anything' }), { action: 'http' });
  t.deepEqual(classifyOutbound(r, dst('203.0.113.20', 443), { kind: 'tls', sni: 'www.google.com' }), {
    action: 'relay',
    destination: { host: 'www.google.com', port: 443 },
    requestedName: 'www.google.com',
  });
  // Right name, wrong port: not in the registry.
  t.deepEqual(classifyOutbound(r, dst('203.0.113.20', 8443), { kind: 'tls', sni: 'www.google.com' }), { action: 'refuse' });
  // HTTPS port but no SNI: nothing to match by.
  t.deepEqual(classifyOutbound(r, dst('203.0.113.20', 443), { kind: 'tls', sni: undefined }), { action: 'refuse' });
});

test('addresses are matched by the native trie (longest prefix, IPv4 and IPv6), without waiting for bytes', (t) => {
  const r = registry(seed.meshMode('REGISTRY_ONLY'), tcpByAddress);
  t.false(needsSniffing(r, '192.0.2.77', 5432));
  t.true(needsSniffing(r, '192.0.2.77', 5433));
  t.deepEqual(classifyOutbound(r, dst('192.0.2.77', 5432), { kind: 'none' }), {
    action: 'relay',
    destination: { host: 'db.example.com', port: 5432 },
  });
  t.deepEqual(classifyOutbound(r, dst('2001:db8:5:1::9', 5432), { kind: 'none' }).action, 'relay');
  t.deepEqual(classifyOutbound(r, dst('198.51.100.7', 5432), { kind: 'none' }), { action: 'refuse' });
});

test('wildcard hosts match SNI by suffix; the cluster keeps the pattern', (t) => {
  const r = registry(seed.meshMode('REGISTRY_ONLY'), wildcardTls);
  t.deepEqual(classifyOutbound(r, dst('198.51.100.9', 443), { kind: 'tls', sni: 'en.wikipedia.org' }), {
    action: 'relay',
    destination: { host: '*.wikipedia.org', port: 443 },
    requestedName: 'en.wikipedia.org',
  });
  t.deepEqual(classifyOutbound(r, dst('198.51.100.9', 443), { kind: 'tls', sni: 'wikipedia.org' }), { action: 'refuse' });
});

test('VirtualService tls routes on the mesh send matching SNI elsewhere (the egress gateway seed)', (t) => {
  const r = registry(seed.meshMode('REGISTRY_ONLY'), seed.googleServiceEntry, seed.egressGateway);
  t.deepEqual(classifyOutbound(r, dst('203.0.113.20', 443), { kind: 'tls', sni: 'www.google.com' }), {
    action: 'relay',
    destination: { host: 'localhost.local', port: 443 },
    requestedName: 'www.google.com',
  });
});

test('http routes: first match wins (uri prefix/exact, port, gateway); weights split traffic', (t) => {
  const r = registry(seed.egressGateway);
  const vs = r.virtualService('httpbin.org', 'mesh')!;
  // A plain GET as a client sends it; these routes match on uri, port and gateway only.
  const facts = { path: '/status/418', authority: 'httpbin.org', method: 'GET', scheme: 'http', port: 80, rawHeaders: ['Host', 'httpbin.org'] };
  t.is(selectHttpRoute(vs, { ...facts, gateway: 'mesh' })!.route[0]!.destination.host, 'localhost.local');
  t.is(selectHttpRoute(vs, { ...facts, gateway: 'istio-egressgateway' })!.route[0]!.destination.host, 'httpbin.org');
  t.is(selectHttpRoute(vs, { ...facts, port: 8080, gateway: 'mesh' }), undefined);
  const uri = registry(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: split}
spec:
  hosts: [httpbin.org]
  http:
  - match: [{uri: {exact: /headers}}]
    route: [{destination: {host: a.example}}]
  - match: [{uri: {prefix: /status/}}]
    route:
    - {destination: {host: b.example}, weight: 25}
    - {destination: {host: c.example}, weight: 75}
`).virtualService('httpbin.org')!;
  t.is(selectHttpRoute(uri, { ...facts, path: '/headers?x=1', gateway: 'mesh' })!.route[0]!.destination.host, 'a.example');
  t.is(selectHttpRoute(uri, { ...facts, path: '/headersX', gateway: 'mesh' }), undefined);
  const split = selectHttpRoute(uri, { ...facts, gateway: 'mesh' })!.route;
  t.is(pickDestination(split, () => 0.1).host, 'b.example');
  t.is(pickDestination(split, () => 0.3).host, 'c.example');
});

test('ALLOW_ANY connections nothing could claim pass through without waiting for bytes', (t) => {
  t.true(passesThroughUnseen(registry(seed.meshMode('ALLOW_ANY')), 443));
  const withEntries = registry(seed.meshMode('ALLOW_ANY'), seed.googleServiceEntry, tcpByAddress);
  t.false(passesThroughUnseen(withEntries, 443), 'a host on the port may match by SNI');
  t.true(passesThroughUnseen(withEntries, 8443));
  t.false(passesThroughUnseen(withEntries, 5432), 'an address entry may claim it');
  t.false(passesThroughUnseen(registry(seed.meshMode('REGISTRY_ONLY')), 443));
  t.false(passesThroughUnseen(registry(seed.httpbinTimeout), 8443), 'VirtualService routes may match');
});

test('the ports the splice relay gets are those where no registry step could claim a connection', (t) => {
  const configs = [
    [seed.meshMode('ALLOW_ANY')],
    [seed.meshMode('ALLOW_ANY'), seed.googleServiceEntry, tcpByAddress],
    [seed.meshMode('ALLOW_ANY'), wildcardTls],
    [seed.meshMode('REGISTRY_ONLY'), seed.googleServiceEntry],
    [seed.httpbinTimeout],
  ];
  const addresses = ['203.0.113.20', '192.0.2.1', '2001:db8:5::1', '198.51.100.7'];
  const bytes = [
    { kind: 'none' as const },
    { kind: 'tls' as const, sni: 'www.google.com' },
    { kind: 'tls' as const, sni: 'en.wikipedia.org' },
    { kind: 'http' as const, host: 'httpbin.org' },
  ];
  let passed = 0;
  for (const docs of configs) {
    const r = registry(...docs);
    const ports = unseenPassthroughPorts(r);
    for (const port of [80, 443, 5432, 8080, 8443, 15001]) {
      if (ports[port] !== 1) continue;
      passed++;
      // Whatever the address and the bytes, the classifier would have passed it through too.
      for (const address of addresses) {
        for (const sniffed of bytes) {
          t.deepEqual(classifyOutbound(r, { address, port }, sniffed), { action: 'passthrough' }, `${docs.length} docs: ${address}:${port}`);
        }
      }
    }
  }
  // Some connections do take the relay's own path (ALLOW_ANY without entries on the port).
  t.true(passed > 0);
  t.is(unseenPassthroughPorts(registry(seed.meshMode('REGISTRY_ONLY'))).indexOf(1), -1);
  const byAddress = unseenPassthroughPorts(registry(seed.meshMode('ALLOW_ANY'), tcpByAddress));
  t.deepEqual([byAddress[5431], byAddress[5432], byAddress[5433]], [1, 0, 1]);
});

const dbRoutes = (match: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: db-split
spec:
  hosts: [db.example.com]
  tcp:
  - match: [${match}]
    route: [{destination: {host: db-replica.example.com, port: {number: 5432}}}]
  - route: [{destination: {host: db.example.com, port: {number: 5432}}}]
`;
const relayTo = (host: string) => ({ action: 'relay', destination: { host, port: 5432 } });

test('tcp routes: destinationSubnets match the original destination, sourceSubnet the client (both families, IPv4-mapped too)', (t) => {
  const r = registry(seed.meshMode('REGISTRY_ONLY'), tcpByAddress, dbRoutes('{destinationSubnets: [192.0.2.128/25, "2001:db8:5:1::/64"]}'));
  t.deepEqual(classifyOutbound(r, dst('192.0.2.200', 5432), { kind: 'other' }), relayTo('db-replica.example.com'));
  t.deepEqual(classifyOutbound(r, dst('::ffff:192.0.2.200', 5432), { kind: 'other' }), relayTo('db-replica.example.com'));
  t.deepEqual(classifyOutbound(r, dst('192.0.2.20', 5432), { kind: 'other' }), relayTo('db.example.com'));
  t.deepEqual(classifyOutbound(r, dst('2001:db8:5:1::9', 5432), { kind: 'other' }), relayTo('db-replica.example.com'));
  t.deepEqual(classifyOutbound(r, dst('2001:db8:5:2::9', 5432), { kind: 'other' }), relayTo('db.example.com'));
  // With a VirtualService the decision needs the bytes' absence of TLS: the sniff runs.
  t.true(needsSniffing(r, '192.0.2.200', 5432));

  const bySource = registry(seed.meshMode('REGISTRY_ONLY'), tcpByAddress, dbRoutes('{sourceSubnet: 100.64.7.0/24, port: 5432}'));
  t.deepEqual(classifyOutbound(bySource, { ...dst('192.0.2.20', 5432), source: '100.64.7.9' }, { kind: 'other' }), relayTo('db-replica.example.com'));
  t.deepEqual(classifyOutbound(bySource, { ...dst('192.0.2.20', 5432), source: '::ffff:100.64.7.9' }, { kind: 'other' }), relayTo('db-replica.example.com'));
  t.deepEqual(classifyOutbound(bySource, { ...dst('192.0.2.20', 5432), source: '100.64.8.9' }, { kind: 'other' }), relayTo('db.example.com'));
  t.deepEqual(classifyOutbound(bySource, dst('192.0.2.20', 5432), { kind: 'other' }), relayTo('db.example.com'), 'no source known: a sourceSubnet match cannot hold');
});

test('tcp routes apply to an address-less TCP ServiceEntry too (its whole port)', (t) => {
  const addressless = tcpByAddress.replace('  addresses: [192.0.2.0/24, "2001:db8:5::/48"]\n', '');
  const r = registry(seed.meshMode('REGISTRY_ONLY'), addressless, dbRoutes('{destinationSubnets: [198.51.100.0/24]}'));
  t.deepEqual(classifyOutbound(r, dst('198.51.100.7', 5432), { kind: 'other' }), relayTo('db-replica.example.com'));
  t.deepEqual(classifyOutbound(r, dst('203.0.113.7', 5432), { kind: 'other' }), relayTo('db.example.com'));
});

test('tls routes: destinationSubnets narrow an SNI match', (t) => {
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: wiki
spec:
  hosts: ["*.wikipedia.org"]
  tls:
  - match: [{sniHosts: [en.wikipedia.org], destinationSubnets: [203.0.113.0/28]}]
    route: [{destination: {host: mirror.wikipedia.org, port: {number: 443}}}]
`;
  const r = registry(seed.meshMode('REGISTRY_ONLY'), wildcardTls, vs);
  t.deepEqual(classifyOutbound(r, dst('203.0.113.5', 443), { kind: 'tls', sni: 'en.wikipedia.org' }), {
    action: 'relay',
    destination: { host: 'mirror.wikipedia.org', port: 443 },
    requestedName: 'en.wikipedia.org',
  });
  t.deepEqual(classifyOutbound(r, dst('203.0.113.50', 443), { kind: 'tls', sni: 'en.wikipedia.org' }), {
    action: 'relay',
    destination: { host: '*.wikipedia.org', port: 443 },
    requestedName: 'en.wikipedia.org',
  });
});

test('destinationSubnets and sourceSubnet that are not addresses are errors naming the field', (t) => {
  for (const [match, field] of [
    ['{destinationSubnets: [192.0.2.0/33]}', 'destinationSubnets[0]'],
    ['{destinationSubnets: 192.0.2.0/24}', 'destinationSubnets'],
    ['{sourceSubnet: [100.64.0.0/10]}', 'sourceSubnet'],
    ['{sourceSubnet: "not-an-ip"}', 'sourceSubnet'],
  ] as const) {
    const err = t.throws(() => registry(tcpByAddress, dbRoutes(match)));
    t.true(err!.message.includes(`spec.tcp[0].match[0].${field}`), err!.message);
  }
});
