import test from 'ava';
import { differenceObject } from '../../../src/kernel/difference-object.js';

test('iptables differences read back into objects', (t) => {
  t.deepEqual(differenceObject('IPv4 nat ISTIO_OUTPUT: missing  -A ISTIO_OUTPUT -d 192.0.2.0/24 -j RETURN'), {
    kind: 'missing', family: 4, table: 'nat', chain: 'ISTIO_OUTPUT', rule: '-A ISTIO_OUTPUT -d 192.0.2.0/24 -j RETURN',
    text: 'IPv4 nat ISTIO_OUTPUT: missing  -A ISTIO_OUTPUT -d 192.0.2.0/24 -j RETURN',
  });
  t.like(differenceObject('IPv6 nat PREROUTING: extra    -A PREROUTING -i vm0 -j RETURN'), { kind: 'extra', family: 6, chain: 'PREROUTING', rule: '-A PREROUTING -i vm0 -j RETURN' });
  t.like(differenceObject('IPv4 mangle: extra chain ISTIO_DIVERT (3 rules)'), { kind: 'extra', table: 'mangle', chain: 'ISTIO_DIVERT', rule: null });
  t.like(differenceObject('IPv4 nat: missing chain ISTIO_REDIRECT'), { kind: 'missing', table: 'nat', chain: 'ISTIO_REDIRECT' });
  t.like(differenceObject('IPv4 nat OUTPUT: same rules in a different order'), { kind: 'changed', chain: 'OUTPUT', rule: null });
});

test('nftables differences and leftovers read back into objects', (t) => {
  t.like(differenceObject('inet interpose_nat: missing table'), { kind: 'missing', family: null, table: 'interpose_nat', chain: null, rule: null });
  t.like(differenceObject('inet interpose_nat output: missing  ip daddr 192.0.2.0/24 return'), { kind: 'missing', chain: 'output', rule: 'ip daddr 192.0.2.0/24 return' });
  t.like(differenceObject('inet interpose_nat set exclude4: missing elements 192.0.2.0/24'), { kind: 'missing', chain: 'set exclude4', rule: null });
  t.like(differenceObject('inet interpose_nat prerouting: hook is "none", want "type nat hook prerouting"'), { kind: 'changed', chain: 'prerouting' });
  t.like(differenceObject('nftables: table inet interpose_nat exists, but this configuration uses the iptables backend'), { kind: 'extra', table: 'interpose_nat' });
  t.like(differenceObject('iptables-nft holds ISTIO_* rules, but this configuration uses the nftables backend'), { kind: 'extra', table: null });
});
