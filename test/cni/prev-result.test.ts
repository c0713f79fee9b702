import test from 'ava';
import { ipv6FromPrevResult } from '../../src/cni/prev-result.js';

test('IPv6 rules follow the global IPv6 addresses prevResult gave the pod', (t) => {
  t.false(ipv6FromPrevResult({ ips: [{ address: '100.64.1.5/24', interface: 2 }] }));
  t.true(ipv6FromPrevResult({ ips: [{ address: '100.64.1.5/24' }, { address: '2001:db8::5/64' }] }));
  t.true(ipv6FromPrevResult({ ips: [{ address: 'fd00:10::5/64' }] }), 'a ULA is scope global too');
  t.false(ipv6FromPrevResult({ ips: [{ address: 'fe80::1/64' }, { address: 'FEB0::1/64' }] }), 'link-local is not');
  // Nothing to go by: ask the namespace, as istio-iptables does.
  t.is(ipv6FromPrevResult({ ips: [] }), undefined);
  t.is(ipv6FromPrevResult({ cniVersion: '1.0.0' }), undefined);
  t.is(ipv6FromPrevResult(undefined), undefined);
});
