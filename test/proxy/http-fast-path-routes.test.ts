/**
 * Which routes the fast path may take (src/proxy/http-fast-path-routes.ts), decided without an
 * addon: the upstream must be one address, since the JS path round-robins over a name's
 * addresses (and a ServiceEntry's endpoints) request by request.
 */
import test from 'ava';
import { CidrTrie } from '../../src/native.js';
import { compileFastRoute } from '../../src/proxy/http-fast-path-routes.js';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import { Registry } from '../../src/proxy/registry.js';
import { UpstreamResolver } from '../../src/proxy/upstream-resolver.js';

const ADDRESSES: Record<string, string[]> = { 'one.test': ['192.0.2.10'], 'two.test': ['192.0.2.11', '192.0.2.12'] };

const entry = (host: string, endpoints: string, protocol = 'HTTP') => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.replace(/\./g, '-')}}
spec:
  hosts: [${host}]
  ports: [{number: 80, name: ${protocol.toLowerCase()}, protocol: ${protocol}}]
  resolution: DNS
${endpoints}`;

test('a DNS upstream with several addresses stays on the JS path; one address is a fast route', async (t) => {
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}
${entry('one.test', '')}${entry('two.test', '')}${entry('pinned.test', '  endpoints: [{address: one.test}]\n')}${entry('spread.test', '  endpoints: [{address: two.test}]\n')}`;
  const registry = new Registry(parseProxyConfig(yaml), () => new CidrTrie());
  const resolver = new UpstreamResolver(60_000, async (host) => ADDRESSES[host] ?? []);
  const deps = { registry: () => registry, resolver };
  t.like(await compileFastRoute(deps, 80, 'one.test'), { address: '192.0.2.10', port: 80, cluster: 'outbound|80||one.test' });
  t.like(await compileFastRoute(deps, 80, 'pinned.test'), { address: '192.0.2.10' });
  t.is(await compileFastRoute(deps, 80, 'two.test'), undefined);
  t.is(await compileFastRoute(deps, 80, 'spread.test'), undefined);
  t.is(await compileFastRoute(deps, 80, 'unknown.test'), undefined);
});

test('HTTP2 and GRPC ports are fast routes with an HTTP/2 upstream; HTTP ones with HTTP/1.1; TCP ones are none', async (t) => {
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}
${entry('one.test', '')}${entry('h2.test', '  endpoints: [{address: one.test}]\n', 'HTTP2')}${entry('grpc.test', '  endpoints: [{address: one.test}]\n', 'GRPC')}${entry('tcp.test', '  endpoints: [{address: one.test}]\n', 'TCP')}`;
  const registry = new Registry(parseProxyConfig(yaml), () => new CidrTrie());
  const resolver = new UpstreamResolver(60_000, async (host) => ADDRESSES[host] ?? []);
  const deps = { registry: () => registry, resolver };
  t.like(await compileFastRoute(deps, 80, 'one.test'), { http2: false });
  t.like(await compileFastRoute(deps, 80, 'h2.test'), { address: '192.0.2.10', http2: true, retry: { onRefusedStream: true } });
  t.like(await compileFastRoute(deps, 80, 'grpc.test'), { address: '192.0.2.10', http2: true, cluster: 'outbound|80||grpc.test' });
  t.is(await compileFastRoute(deps, 80, 'tcp.test'), undefined);
});
