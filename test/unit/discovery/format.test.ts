import test from 'ava';
import { annotationLine, formatDiscovery, helmSetting, interposeFlag } from '../../../src/discovery/format.js';
import { findingsFrom } from '../../../src/discovery/cidrs.js';
import type { DiscoveryResult } from '../../../src/discovery/types.js';

const result: DiscoveryResult = {
  platform: 'k3s',
  findings: [
    ...findingsFrom('10.42.0.0/16,2001:db8:42::/56', 'pod', 'node-args --cluster-cidr'),
    ...findingsFrom('10.43.0.0/16', 'service', 'k3s default', true),
    // The same range twice (e.g. a VPC that also holds the services) is printed once.
    ...findingsFrom('10.42.0.0/16', 'service', 'duplicate'),
  ],
  notes: ['no --service-cidr found: assuming the default'],
  detection: 'node k3s-1 has annotation k3s.io/node-args',
};

test('helm escapes the commas inside the one value, as Istio documents it', (t) => {
  t.is(helmSetting(['10.0.0.0/8', '172.16.0.0/12']), '--set values.global.proxy.includeIPRanges="10.0.0.0/8\\,172.16.0.0/12"');
  t.is(formatDiscovery(result, 'helm'), '--set values.global.proxy.includeIPRanges="10.42.0.0/16\\,2001:db8:42::/56\\,10.43.0.0/16"\n');
});

test('annotation and interpose flag use plain commas', (t) => {
  t.is(annotationLine(['10.0.0.0/8', 'fd00::/8']), 'traffic.sidecar.istio.io/includeOutboundIPRanges: "10.0.0.0/8,fd00::/8"');
  t.is(interposeFlag(['10.0.0.0/8']), '-i 10.0.0.0/8');
  t.is(formatDiscovery(result, 'annotation'), 'traffic.sidecar.istio.io/includeOutboundIPRanges: "10.42.0.0/16,2001:db8:42::/56,10.43.0.0/16"\n');
  t.is(formatDiscovery(result, 'flag'), '-i 10.42.0.0/16,2001:db8:42::/56,10.43.0.0/16\n');
});

test('json carries ranges, findings with their sources, notes and every usage form', (t) => {
  const j = JSON.parse(formatDiscovery(result, 'json')) as Record<string, unknown>;
  t.is(j.platform, 'k3s');
  t.deepEqual(j.includeIPRanges, ['10.42.0.0/16', '2001:db8:42::/56', '10.43.0.0/16']);
  t.deepEqual(j.podCidrs, ['10.42.0.0/16', '2001:db8:42::/56']);
  t.is((j.findings as Array<{ assumedDefault: boolean }>).filter((f) => f.assumedDefault).length, 1);
  t.is(j.interposeFlag, '-i 10.42.0.0/16,2001:db8:42::/56,10.43.0.0/16');
  t.regex(String(j.detection), /k3s\.io\/node-args/);
});

test('text marks defaults plainly and ends with the three ways to use the ranges', (t) => {
  const text = formatDiscovery(result, 'text');
  t.regex(text, /^platform: k3s\n  picked automatically: node k3s-1/);
  t.regex(text, /10\.43\.0\.0\/16\s+DEFAULT, not read: k3s default/);
  t.regex(text, /2001:db8:42::\/56\s+from node-args --cluster-cidr/);
  t.regex(text, /notes:\n  - no --service-cidr found/);
  t.regex(text, /Helm \/ istioctl:  --set values\.global\.proxy\.includeIPRanges=/);
  t.regex(text, /pod annotation:   traffic\.sidecar\.istio\.io\/includeOutboundIPRanges: "/);
  t.regex(text, /interpose:        interpose istio-iptables -i 10\.42\.0\.0\/16,/);
});
