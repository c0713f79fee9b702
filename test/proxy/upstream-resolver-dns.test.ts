/**
 * `resolution: DNS` answers are refreshed off the request path: past --dns-refresh-rate the
 * last answer is still used while one lookup runs in the background, and requests for a name
 * not known yet share one lookup (Envoy's DNS clusters resolve on a timer, never per request).
 */
import test from 'ava';
import { CidrTrie } from '../../src/native.js';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import { Registry } from '../../src/proxy/registry.js';
import { UpstreamResolver } from '../../src/proxy/upstream-resolver.js';
import * as seed from '../../src/lab/seed-resources.js';

const registry = new Registry(parseProxyConfig(seed.docs(seed.httpbinServiceEntry)), () => new CidrTrie());
const destination = { host: 'httpbin.org', port: 80 };
const original = { address: '203.0.113.10', port: 80 };

/** A lookup whose answers the test releases one by one; `calls` counts the lookups made. */
function controlledLookup() {
  const pending: ((addresses: string[]) => void)[] = [];
  const fake = {
    calls: 0,
    lookup: (_host: string) => {
      fake.calls++;
      return new Promise<string[]>((resolve) => pending.push(resolve));
    },
    answer: (addresses: string[]) => pending.shift()!(addresses),
  };
  return fake;
}

test('concurrent requests for a name not known yet share one lookup', async (t) => {
  const dns = controlledLookup();
  const resolver = new UpstreamResolver(60_000, dns.lookup);
  const both = Promise.all([resolver.resolve(registry, destination, original), resolver.resolve(registry, destination, original)]);
  await new Promise((r) => setImmediate(r));
  t.is(dns.calls, 1);
  dns.answer(['192.0.2.1']);
  t.deepEqual((await both).map((u) => u.address), ['192.0.2.1', '192.0.2.1']);
});

test('past the refresh rate the last answer is used at once and a new one looked up in the background', async (t) => {
  const dns = controlledLookup();
  const resolver = new UpstreamResolver(1, dns.lookup);
  const first = resolver.resolve(registry, destination, original);
  await new Promise((r) => setImmediate(r));
  dns.answer(['192.0.2.1']);
  t.is((await first).address, '192.0.2.1');
  await new Promise((r) => setTimeout(r, 5));
  // Expired: answered from the old addresses without waiting for the lookup it starts.
  t.is((await resolver.resolve(registry, destination, original)).address, '192.0.2.1');
  t.is((await resolver.resolve(registry, destination, original)).address, '192.0.2.1');
  t.is(dns.calls, 2, 'one background lookup, however many requests come meanwhile');
  dns.answer(['192.0.2.2']);
  await new Promise((r) => setImmediate(r));
  t.is((await resolver.resolve(registry, destination, original)).address, '192.0.2.2');
});

test('a failed background lookup forgets the name: the next request looks it up and fails with UH', async (t) => {
  let fail = false;
  let calls = 0;
  const resolver = new UpstreamResolver(1, async () => {
    calls++;
    if (fail) throw new Error('ENOTFOUND');
    return ['192.0.2.1'];
  });
  t.is((await resolver.resolve(registry, destination, original)).address, '192.0.2.1');
  fail = true;
  await new Promise((r) => setTimeout(r, 5));
  t.is((await resolver.resolve(registry, destination, original)).address, '192.0.2.1');
  await new Promise((r) => setImmediate(r));
  await t.throwsAsync(resolver.resolve(registry, destination, original), { message: /does not resolve/ });
  t.is(calls, 3);
});
