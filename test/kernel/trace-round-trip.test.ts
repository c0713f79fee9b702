/**
 * Round trip through the kernel: render → apply → the kernel's own dump (iptables-save,
 * `nft -j list table`) → parse → the same IR. Then a configuration large enough to become nft
 * interval sets, read back with its sets, traces exactly like the configuration itself.
 */
import { resolveSettings } from '../../src/config/istio-flags.js';
import { buildIstioOptions } from '../../src/config/istio-options.js';
import { NamespacedExecutor, SystemExecutor } from '../../src/kernel/executor.js';
import { LinuxSystemLookups } from '../../src/kernel/system-lookups.linux.js';
import { buildIstioRuleset } from '../../src/rules/istio-ruleset.js';
import { familyRulesetFromSave } from '../../src/trace/iptables-dump.js';
import { findNft } from '../../src/kernel/nftables-backend.linux.js';
import { programFromDumps, readKernelDumps } from '../../src/kernel/trace-program.linux.js';
import { inetTablesFromNftJson } from '../../src/trace/nft-json.js';
import { programFromRulesetNft } from '../../src/trace/from-ruleset.js';
import { buildPacket } from '../../src/trace/packet.js';
import { tracePacket } from '../../src/trace/walker.js';
import { runCli } from '../helpers/cli.js';
import { ISTIO_BASE, parseArgv } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';
import { CONFIGS, normalFamily, normalInet } from '../unit/trace/trace-fixtures.js';

const SYSTEM_PATH = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

for (const backend of ['iptables', 'nftables'] as const) {
  kernelTest(`render → kernel → dump → parse gives the same IR (${backend})`, async (t) => {
    const ns = await Netns.create(t, 'trt');
    ns.writeEtc('resolv.conf', 'nameserver 192.0.2.53\n');
    const exec = new NamespacedExecutor(new SystemExecutor(), ns.name);
    const lookups = new LinuxSystemLookups(new SystemExecutor());
    for (const c of CONFIGS) {
      await ns.exec([findNft(), 'flush', 'ruleset']);
      const args = [...ISTIO_BASE, ...c.args, '--network-namespace', ns.name, ...(backend === 'nftables' ? ['--native-nftables'] : [])];
      const applied = await runCli(['istio-iptables', ...args], { env: { ...c.env, ...SYSTEM_PATH } });
      t.is(applied.exitCode, 0, applied.stderr);
      const { config } = await buildIstioOptions(resolveSettings(parseArgv(args), c.env ?? {}), lookups);
      const ruleset = buildIstioRuleset(config);
      const dumps = await readKernelDumps(exec);
      if (backend === 'iptables') {
        t.deepEqual(dumps.iptables.map((d) => d.family), ruleset.families.map((f) => f.family), c.name);
        for (const d of dumps.iptables) {
          const want = ruleset.families.find((f) => f.family === d.family)!;
          t.deepEqual(normalFamily(familyRulesetFromSave(d.text, d.family)), normalFamily(want), `${c.name} IPv${d.family}`);
        }
      } else {
        t.deepEqual(normalInet(inetTablesFromNftJson(dumps.nftJson)), normalInet(ruleset.inet!), c.name);
      }
    }
  });
}

kernelTest('nft interval sets read back from the kernel trace like the configuration', async (t) => {
  const ns = await Netns.create(t, 'trs');
  const exclude = Array.from({ length: 40 }, (_, i) => `198.51.100.${i * 4}/30`).join(',') + ',2001:db8:7::/48,2001:db8:8::/48';
  const include = Array.from({ length: 20 }, (_, i) => `203.0.113.${i * 8}/29`).join(',') + ',198.51.100.0/24';
  const args = [...ISTIO_BASE, '-i', include, '-x', exclude, '--enable-ipv6', '--network-namespace', ns.name, '--native-nftables'];
  const applied = await runCli(['istio-iptables', ...args], { env: SYSTEM_PATH });
  t.is(applied.exitCode, 0, applied.stderr);
  const dumps = await readKernelDumps(new NamespacedExecutor(new SystemExecutor(), ns.name));
  t.regex(dumps.nftListing, /@istio-output-return-v4/, 'the exclude list became a set');
  const fromKernel = programFromDumps(dumps, ns.name);
  const { config } = await buildIstioOptions(resolveSettings(parseArgv(args), {}), new LinuxSystemLookups(new SystemExecutor()));
  const fromFlags = programFromRulesetNft(buildIstioRuleset(config));
  let checked = 0;
  for (let a = 0; a < 256; a += 3) {
    // IPv4-mapped forms too: sent as IPv4, so the IPv4 sets decide them.
    for (const dst of [`198.51.100.${a}`, `203.0.113.${a}`, `::ffff:198.51.100.${a}`]) {
      const p = buildPacket({ dst, dport: 80, uid: 1000, out: 'eth0' }).packet;
      t.deepEqual(tracePacket(fromKernel, p).verdict, tracePacket(fromFlags, p).verdict, dst);
      checked++;
    }
  }
  const setRule = tracePacket(fromKernel, buildPacket({ dst: '198.51.100.9', dport: 80, uid: 1000, out: 'eth0' }).packet);
  t.deepEqual(setRule.verdict, { kind: 'untouched' });
  t.regex(setRule.decidedBy[0]?.rule ?? '', /ip daddr @istio-output-return-v4 counter return/, 'the deciding rule is shown as nft lists it');
  const mapped = tracePacket(fromKernel, buildPacket({ dst: '::ffff:198.51.100.9', dport: 80, uid: 1000, out: 'eth0' }).packet);
  t.deepEqual(mapped.verdict, { kind: 'untouched' }, 'an IPv4-mapped destination meets the IPv4 set');
  t.regex(mapped.decidedBy[0]?.rule ?? '', /ip daddr @istio-output-return-v4 counter return/);
  // A connection to the unspecified address goes to the local application, whatever the sets say.
  for (const dst of ['0.0.0.0', '::']) {
    const self = buildPacket({ dst, dport: 80, uid: 1000 }).packet;
    t.deepEqual(tracePacket(fromKernel, self).verdict, { kind: 'untouched' }, dst);
    t.deepEqual(tracePacket(fromKernel, self).verdict, tracePacket(fromFlags, self).verdict, dst);
  }
  t.log(`${checked} packets traced both ways`);
});
