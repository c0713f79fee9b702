/**
 * The `trace` and `verify` commands as users run them (the built CLI): verify's exit status
 * and difference report on both backends, trace's text and JSON against a namespace's rules,
 * and bad input naming the option.
 */
import test from 'ava';
import { findNft } from '../../src/kernel/nftables-backend.linux.js';
import { runCli } from '../helpers/cli.js';
import { ISTIO_BASE } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';

const SYSTEM_PATH = { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } };
const CONFIG = [...ISTIO_BASE, '-i', '10.96.0.0/12', '-x', '10.96.5.0/24', '-b', '*', '-d', '15090', '-c', 'eth9', '--enable-ipv6'];

for (const backend of ['iptables', 'nftables'] as const) {
  const nft = backend === 'nftables' ? ['--native-nftables'] : [];
  kernelTest(`verify: exit 0 when the kernel holds exactly the configuration, 3 with the differences otherwise (${backend})`, async (t) => {
    const ns = await Netns.create(t, 'tvf');
    const at = ['--network-namespace', ns.name];
    const empty = await runCli(['verify', ...CONFIG, ...nft, ...at], SYSTEM_PATH);
    t.is(empty.exitCode, 3, 'nothing installed yet');
    t.regex(empty.stdout, /missing/);

    t.is((await runCli(['istio-iptables', ...CONFIG, ...nft, ...at], SYSTEM_PATH)).exitCode, 0);
    const same = await runCli(['verify', ...CONFIG, ...nft, ...at], SYSTEM_PATH);
    t.is(same.exitCode, 0, same.stdout + same.stderr);
    t.regex(same.stderr, /holds exactly what this configuration installs/);
    t.is(same.stdout, '');

    if (backend === 'iptables') {
      // An exclude-interface RETURN no configuration claims (as an earlier -c would leave).
      await ns.exec(['iptables', '-t', 'nat', '-I', 'OUTPUT', '1', '-o', 'eth8', '-j', 'RETURN']);
      const stray = await runCli(['verify', ...CONFIG, ...nft, ...at], SYSTEM_PATH);
      t.is(stray.exitCode, 0, 'not ours for certain, so not a difference');
      t.regex(stray.stderr, /warning: IPv4 nat OUTPUT: "-A OUTPUT -o eth8 -j RETURN" is not in this configuration/);
      await ns.exec(['iptables', '-t', 'nat', '-D', 'OUTPUT', '-o', 'eth8', '-j', 'RETURN']);
    }

    const other = await runCli(['verify', ...CONFIG, '-x', '10.96.6.0/24', ...nft, ...at], SYSTEM_PATH);
    t.is(other.exitCode, 3);
    t.regex(other.stdout, /10\.96\.6\.0\/24/, 'the wanted rule is reported missing');
    t.regex(other.stdout, /10\.96\.5\.0\/24/, 'the rule the kernel holds instead is reported extra');

    const otherBackend = await runCli(['verify', ...CONFIG, ...(nft.length ? [] : ['--native-nftables']), ...at], SYSTEM_PATH);
    t.is(otherBackend.exitCode, 3, 'rules of the other backend are a difference');

    // Someone edits the kernel by hand.
    if (backend === 'iptables') await ns.exec(['iptables', '-t', 'nat', '-D', 'ISTIO_OUTPUT', '-d', '10.96.5.0/24', '-j', 'RETURN']);
    else await ns.exec([findNft(), 'add', 'rule', 'inet', 'istio-proxy-nat', 'istio-output', 'tcp', 'dport', '9999', 'return']);
    const edited = await runCli(['verify', ...CONFIG, ...nft, ...at], SYSTEM_PATH);
    t.is(edited.exitCode, 3);
    t.regex(edited.stdout, backend === 'iptables' ? /missing +-A ISTIO_OUTPUT -d 10\.96\.5\.0\/24 -j RETURN/ : /extra +tcp dport 9999/);
  });
}

kernelTest('trace --from-kernel explains a bypass and a capture in the namespace; --json for machines', async (t) => {
  const ns = await Netns.create(t, 'ttr');
  t.is((await runCli(['istio-iptables', ...CONFIG, '--network-namespace', ns.name], SYSTEM_PATH)).exitCode, 0);
  const bypass = await runCli(['trace', '--from-kernel', '--network-namespace', ns.name, '--dst', '203.0.113.5', '--dport', '443', '--uid', '1000', '--out', 'eth0'], SYSTEM_PATH);
  t.is(bypass.exitCode, 0, bypass.stderr);
  t.regex(bypass.stdout, /verdict: untouched/);
  t.regex(bypass.stdout, /-A ISTIO_OUTPUT -d 10\.96\.0\.0\/12 -j ISTIO_REDIRECT +\(destination 203\.0\.113\.5 is not in 10\.96\.0\.0\/12\)/);
  t.regex(bypass.stdout, /rules: +kernel \(network namespace ttr-/);

  const json = await runCli(['trace', '--from-kernel', '--network-namespace', ns.name, '--dst', '10.96.0.10', '--dport', '80', '--uid', '1000', '--out', 'eth0', '--json'], SYSTEM_PATH);
  t.is(json.exitCode, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as { verdict: unknown; decidedBy: Array<{ rule: string }>; notes: string[] };
  t.deepEqual(doc.verdict, { kind: 'redirect', port: 15001 });
  t.is(doc.decidedBy[0]?.rule, '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
  t.true(doc.notes.some((n) => /NEW connection/.test(n)));

  const inbound = await runCli(['trace', '--from-kernel', '--network-namespace', ns.name, '--dst', '192.0.2.10', '--dport', '15090', '--in', 'eth0'], SYSTEM_PATH);
  t.regex(inbound.stdout, /decided by[^\n]*\n(.*\n)*  > -A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN/);

  // The namespace's route decides interface and source for the address the kernel really
  // sends to: IPv4 for a mapped one (an IPv6 route lookup would fail), lo for the unspecified one.
  await ns.exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
  await ns.exec(['ip', 'link', 'set', 'eth0p', 'up']);
  await ns.exec(['ip', 'addr', 'add', '100.64.7.1/24', 'dev', 'eth0']);
  await ns.exec(['ip', 'link', 'set', 'eth0', 'up']);
  await ns.exec(['ip', 'route', 'add', 'default', 'via', '100.64.7.2']);
  const mapped = await runCli(['trace', '--from-kernel', '--network-namespace', ns.name, '--dst', '::ffff:10.96.0.10', '--dport', '80', '--uid', '1000'], SYSTEM_PATH);
  t.is(mapped.exitCode, 0, mapped.stderr);
  t.regex(mapped.stdout, /^packet: +outbound tcp 100\.64\.7\.1:40000 -> 10\.96\.0\.10:80 uid 1000 gid 1000 out eth0 /);
  t.regex(mapped.stdout, /IPv4-mapped address: an IPv6 socket sends IPv4 to 10\.96\.0\.10/);
  t.regex(mapped.stdout, /verdict: redirect to port 15001/);
  const self = await runCli(['trace', '--from-kernel', '--network-namespace', ns.name, '--dst', '0.0.0.0', '--dport', '80', '--uid', '1000'], SYSTEM_PATH);
  t.is(self.exitCode, 0, self.stderr);
  t.regex(self.stdout, /^packet: +outbound tcp 127\.0\.0\.1:40000 -> 127\.0\.0\.1:80 uid 1000 gid 1000 out lo /);
  t.regex(self.stdout, /verdict: untouched/);

  const empty = await Netns.create(t, 'tte');
  const none = await runCli(['trace', '--from-kernel', '--network-namespace', empty.name, '--dst', '192.0.2.1', '--dport', '80'], SYSTEM_PATH);
  t.is(none.exitCode, 1);
  t.regex(none.stderr, /holds no iptables rules/);
});

test('trace: bad input names the option, the value and what is accepted', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--dst', 'example', '--dport', '80'], /--dst: "example".*IPv4 or IPv6 address/],
    [['--dst', '192.0.2.1', '--dport', '70000'], /--dport: "70000".*port from 1 to 65535/],
    [['--dst', '192.0.2.1', '--dport', '80', '--from-kernel', '-i', '*'], /-i\/--istio-service-cidr.*only --network-namespace/],
    [['--dst', '192.0.2.1', '--dport', '80', '-i', '10.0.0.0/33'], /-i\/--istio-service-cidr.*CIDRs/],
    [['--dst', '192.0.2.1'], /required option '--dport/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(['trace', ...args], SYSTEM_PATH);
    t.is(r.exitCode, 1, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
  }
});
