import test from 'ava';
import { annotationsToFlags, withStatusPort } from '../../src/config/annotations.js';
import { ValidationError } from '../../src/errors/index.js';
import { parseIstioIptablesArgv } from '../helpers/istio-argv.js';

const T = 'traffic.sidecar.istio.io/';

test('no annotations: the injector defaults, status port 15020 excluded after 15090,15021', (t) => {
  t.deepEqual(annotationsToFlags({}).argv, [
    '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT',
    '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020',
  ]);
});

/** Every traffic annotation, the interception mode, and a label that is none of them. */
const EVERY_ANNOTATION = {
  [`${T}includeOutboundIPRanges`]: '10.96.0.0/12,2001:db8::/32',
  [`${T}excludeOutboundIPRanges`]: '10.96.0.10/32',
  [`${T}includeInboundPorts`]: '8080,9090',
  [`${T}excludeInboundPorts`]: '9090',
  [`${T}includeOutboundPorts`]: '5432',
  [`${T}excludeOutboundPorts`]: '3306,6379',
  [`${T}kubevirtInterfaces`]: 'net1',
  [`${T}excludeInterfaces`]: 'eth1',
  'sidecar.istio.io/interceptionMode': 'TPROXY',
  'app.kubernetes.io/name': 'ignored',
};

test('every traffic annotation maps to its istio-iptables flag', (t) => {
  const { argv } = annotationsToFlags(EVERY_ANNOTATION);
  const flag = (f: string) => argv[argv.indexOf(f) + 1];
  t.is(flag('-m'), 'TPROXY');
  t.is(flag('-i'), '10.96.0.0/12,2001:db8::/32');
  t.is(flag('-x'), '10.96.0.10/32');
  t.is(flag('-b'), '8080,9090');
  t.is(flag('-d'), '15090,15021,9090,15020');
  t.is(flag('-q'), '5432');
  t.is(flag('-o'), '3306,6379');
  t.is(flag('-k'), 'net1');
  t.is(flag('-c'), 'eth1');
});

test('the status port is merged like the injector’s excludeInboundPort()', (t) => {
  t.is(withStatusPort('15020', ''), '15020');
  t.is(withStatusPort('15020', '8080, 9090,'), '8080,9090,15020');
  // Already there: the list is left exactly as written.
  t.is(withStatusPort('15020', '15020,8080'), '15020,8080');
  // 0 disables the status port.
  t.is(withStatusPort('0', '8080'), '8080');
  const custom = annotationsToFlags({ 'status.sidecar.istio.io/port': '15999', [`${T}excludeInboundPorts`]: '8080' }).argv;
  t.is(custom[custom.indexOf('-d') + 1], '15090,15021,8080,15999');
  const off = annotationsToFlags({ 'status.sidecar.istio.io/port': '0' }).argv;
  t.is(off[off.indexOf('-d') + 1], '15090,15021');
});

test('-q and -o appear only when annotated; an empty annotation still sets the flag', (t) => {
  t.false(annotationsToFlags({}).argv.includes('-q'));
  t.false(annotationsToFlags({}).argv.includes('-o'));
  const { argv } = annotationsToFlags({ [`${T}excludeOutboundPorts`]: '' });
  t.is(argv[argv.indexOf('-o') + 1], '');
});

test('istio.io/reroute-virtual-interfaces wins over kubevirtInterfaces, with a note', (t) => {
  const r = annotationsToFlags({ 'istio.io/reroute-virtual-interfaces': 'net2', [`${T}kubevirtInterfaces`]: 'net1' });
  t.is(r.argv[r.argv.indexOf('-k') + 1], 'net2');
  t.is(r.argv.filter((a) => a === '-k').length, 1);
  t.regex(r.notes[0]!, /wins over/);
});

test('interceptionMode NONE: no init container, no flags, said', (t) => {
  const r = annotationsToFlags({ 'sidecar.istio.io/interceptionMode': 'NONE' });
  t.deepEqual(r.argv, []);
  t.regex(r.notes[0]!, /no istio-init container/);
});

test('an unknown traffic.sidecar.istio.io key is refused by name', (t) => {
  const err = t.throws(() => annotationsToFlags({ [`${T}includeOutboundIpRanges`]: '10.0.0.0/8' }), { instanceOf: ValidationError });
  t.regex(err!.message, /annotation traffic\.sidecar\.istio\.io\/includeOutboundIpRanges/);
  t.regex(err!.message, /traffic\.sidecar\.istio\.io\/includeOutboundIPRanges/);
});

test('bad values name the annotation, the value and what is accepted', (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ [`${T}includeOutboundIPRanges`]: '10.0.0.0/33' }, /includeOutboundIPRanges: "10\.0\.0\.0\/33".*CIDRs/],
    [{ [`${T}excludeOutboundIPRanges`]: '*' }, /excludeOutboundIPRanges: "\*"/],
    [{ [`${T}excludeInboundPorts`]: '80,http' }, /excludeInboundPorts: "80,http".*bad item "http"/],
    [{ [`${T}includeOutboundPorts`]: '70000' }, /includeOutboundPorts: "70000"/],
    [{ [`${T}kubevirtInterfaces`]: 'a very long interface name' }, /kubevirtInterfaces/],
    [{ 'sidecar.istio.io/interceptionMode': 'redirect' }, /interceptionMode: "redirect": expected REDIRECT, TPROXY or NONE/],
    [{ 'status.sidecar.istio.io/port': 'abc' }, /status\.sidecar\.istio\.io\/port: "abc"/],
  ];
  for (const [annotations, message] of cases) {
    const err = t.throws(() => annotationsToFlags(annotations), { instanceOf: ValidationError });
    t.regex(err!.message, message);
  }
});

test('what annotations-to-flags prints, istio-iptables accepts and reads back', async (t) => {
  const { config } = await parseIstioIptablesArgv(annotationsToFlags(EVERY_ANNOTATION).argv);
  t.is(config.proxyPort, 15001);
  t.is(config.interceptionMode, 'TPROXY');
  t.deepEqual(config.inboundPorts, { kind: 'list', ports: [8080, 9090] });
  t.deepEqual(config.inboundPortsExclude, [15090, 15021, 9090, 15020]);
  t.deepEqual(config.outboundPortsExclude, [3306, 6379]);
  t.deepEqual(config.outboundPortsInclude, [5432]);
  t.deepEqual(config.kubeVirtInterfaces, ['net1']);
  t.deepEqual(config.excludeInterfaces, ['eth1']);
  t.deepEqual(config.outboundInclude.cidrs.map((c) => c.text), ['10.96.0.0/12', '2001:db8::/32']);
  t.deepEqual(config.outboundExclude.map((c) => c.text), ['10.96.0.10/32']);
  // Defaults too.
  await t.notThrowsAsync(parseIstioIptablesArgv(annotationsToFlags({}).argv));
});
