import test from 'ava';
import { ValidationError } from '../../../src/errors/validation-error.js';
import { fakeSystem } from '../../helpers/fake-system.js';
import { ISTIO_BASE, optionsFrom, parseArgv } from '../../helpers/istio-config.js';

test('defaults match istio-iptables', async (t) => {
  const { config, run } = await optionsFrom([]);
  t.is(config.proxyPort, 15001);
  t.is(config.inboundCapturePort, 15006);
  t.is(config.inboundTunnelPort, 15008);
  t.deepEqual(config.proxyUids, [1337]); // uid of istio-proxy in the fake passwd
  t.deepEqual(config.proxyGids, [1337]); // defaults to the uids
  t.is(config.interceptionMode, 'REDIRECT');
  t.deepEqual(config.inboundPorts, { kind: 'none' });
  t.is(config.tproxyMark, 1337);
  t.is(config.tproxyRouteTable, 133);
  t.is(config.hostIPv4LoopbackCidr.text, '127.0.0.1/32');
  t.false(config.enableIPv6);
  t.is(run.probePort, 15002);
  t.is(run.probeTimeoutMs, 5000);
  t.false(run.dryRun);
});

test('proxy uid falls back to 1337 when $ENVOY_USER does not exist', async (t) => {
  const { config } = await optionsFrom([], {}, fakeSystem({ users: {} }));
  t.deepEqual(config.proxyUids, [1337]);
});

test('a flag wins over its environment variable, which wins over the default', async (t) => {
  const viaEnv = await optionsFrom([], { ENVOY_PORT: '16001', ISTIO_SERVICE_CIDR: '10.0.0.0/8' });
  t.is(viaEnv.config.proxyPort, 16001);
  t.deepEqual(viaEnv.config.outboundInclude.cidrs.map((c) => c.text), ['10.0.0.0/8']);
  const both = await optionsFrom(['-p', '17001'], { ENVOY_PORT: '16001' });
  t.is(both.config.proxyPort, 17001);
});

test('env aliases: ISTIO_META_DNS_CAPTURE, INVALID_DROP, ISTIO_DUAL_STACK', async (t) => {
  const { config } = await optionsFrom([], {
    ISTIO_META_DNS_CAPTURE: 'true',
    INVALID_DROP: 'true',
    ISTIO_DUAL_STACK: 'true',
  });
  t.true(config.redirectDns);
  t.true(config.dropInvalid);
  t.true(config.enableIPv6);
});

test('boolean flags accept a bare flag or an explicit value', async (t) => {
  t.true((await optionsFrom(['--redirect-dns'])).config.redirectDns);
  t.false((await optionsFrom(['--redirect-dns=false'])).config.redirectDns);
  t.true((await optionsFrom(['-n'])).run.dryRun);
});

test('lists drop empty items and duplicates, as istio splits them', async (t) => {
  const { config } = await optionsFrom(['-b', '4000,5000', '-d', '6000,7000,', '-q', '32000,31000,32000']);
  t.deepEqual(config.inboundPorts, { kind: 'list', ports: [4000, 5000] });
  t.deepEqual(config.inboundPortsExclude, [6000, 7000]);
  t.deepEqual(config.outboundPortsInclude, [32000, 31000]);
});

test('wildcards: -b "*" and -i "*"', async (t) => {
  const { config } = await optionsFrom(['-b', '*', '-i', '*']);
  t.deepEqual(config.inboundPorts, { kind: 'all' });
  t.true(config.outboundInclude.wildcard);
});

test('CIDRs of both families, host bits masked as the kernel does', async (t) => {
  const { config } = await optionsFrom(['-i', '10.1.2.3/8,2001:db8::1/32', '-x', '192.0.2.77/24']);
  t.deepEqual(config.outboundInclude.cidrs.map((c) => c.text), ['10.0.0.0/8', '2001:db8::/32']);
  t.deepEqual(config.outboundExclude.map((c) => c.text), ['192.0.2.0/24']);
});

test('user and group names resolve to ids; unknown names are errors', async (t) => {
  const { config } = await optionsFrom(['-u', 'root,3', '-g', 'java']);
  t.deepEqual(config.proxyUids, [0, 3]);
  t.deepEqual(config.proxyGids, [40000]);
  const err = await t.throwsAsync(optionsFrom(['-g', 'nosuchgroup']), { instanceOf: ValidationError });
  t.regex(err!.message, /-g\/--proxy-gid.*nosuchgroup.*does not resolve/);
});

test('owner group filters: include list, exclude list, include wins with a warning', async (t) => {
  const inc = await optionsFrom([], { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' });
  t.deepEqual(inc.config.ownerGroups, { except: false, gids: [40000, 202] });
  const exc = await optionsFrom([], { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp' });
  t.deepEqual(exc.config.ownerGroups, { except: true, gids: [888, 21] });
  const both = await optionsFrom([], { ISTIO_OUTBOUND_OWNER_GROUPS: 'java', ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: 'ftp' });
  t.deepEqual(both.config.ownerGroups, { except: false, gids: [40000] });
  t.regex(both.warnings.join('\n'), /ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE is ignored/);
});

test('DNS servers come from resolv.conf, split by family, only with --redirect-dns', async (t) => {
  const system = fakeSystem({ resolvConf: 'search x\nnameserver 127.0.0.53\nnameserver ::127.0.0.53\n# nameserver 9.9.9.9\n' });
  const off = await optionsFrom([], {}, system);
  t.deepEqual(off.config.dnsServersV4, []);
  const on = await optionsFrom(['--redirect-dns'], {}, system);
  t.deepEqual(on.config.dnsServersV4.map((c) => c.text), ['127.0.0.53/32']);
  t.deepEqual(on.config.dnsServersV6.map((c) => c.text), ['::127.0.0.53/128']);
  const none = await optionsFrom(['--redirect-dns'], {}, fakeSystem({ resolvConf: '' }));
  t.regex(none.warnings.join('\n'), /DNS capture disabled/);
});

test('IPv6: explicit flag, dual-stack, or a global IPv6 address in the namespace', async (t) => {
  t.true((await optionsFrom(['--enable-ipv6'])).config.enableIPv6);
  t.true((await optionsFrom(['--dual-stack'])).config.enableIPv6);
  t.true((await optionsFrom([], {}, fakeSystem({ globalIPv6: true }))).config.enableIPv6);
});

test('istio base flags parse', async (t) => {
  const { config } = await optionsFrom(ISTIO_BASE);
  t.is(config.tproxyRouteTable, 133);
});

test('unknown flags are rejected by the parser', (t) => {
  t.throws(() => parseArgv(['--no-such-flag']), { message: /unknown option '--no-such-flag'/ });
  t.throws(() => parseArgv(['extra-positional']), { message: /too many arguments/ });
});
