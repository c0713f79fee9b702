/**
 * Destinations the kernel rewrites before OUTPUT: the unspecified address (a connection to
 * self, by lo) and IPv4-mapped IPv6 addresses (sent as IPv4). The trace follows the packet the
 * rules really see, and says why it differs from the address given. The kernel's own word on
 * these is in test/kernel/trace-differential.test.ts.
 */
import test from 'ava';
import { buildIstioRuleset } from '../../../src/rules/istio-ruleset.js';
import { formatTrace, traceJson } from '../../../src/trace/format.js';
import { programFromRulesetIptables, programFromRulesetNft } from '../../../src/trace/from-ruleset.js';
import { buildPacket, type PacketOptions } from '../../../src/trace/packet.js';
import type { TraceProgram } from '../../../src/trace/program.js';
import { tracePacket } from '../../../src/trace/walker.js';
import { ISTIO_BASE, optionsFrom } from '../../helpers/istio-config.js';

/** Captures everything outbound except 192.0.2.0/24 (IPv4) and 2001:db8:1::/48 (IPv6). */
async function programs(extra: string[] = []): Promise<TraceProgram[]> {
  const { config } = await optionsFrom([...ISTIO_BASE, '-i', '*', '-x', '192.0.2.0/24,2001:db8:1::/48', '-b', '*', '--enable-ipv6', ...extra]);
  const rs = buildIstioRuleset(config);
  return [programFromRulesetIptables(rs), programFromRulesetNft(rs)];
}

function verdict(program: TraceProgram, o: PacketOptions): string {
  const v = tracePacket(program, buildPacket(o).packet).verdict;
  return v.kind === 'untouched' || v.kind === 'drop' ? v.kind : `${v.kind}:${v.port}`;
}

for (const mode of ['REDIRECT', 'TPROXY']) {
  test(`a connection to 0.0.0.0 or [::] goes to the local application by lo, not to the proxy (${mode})`, async (t) => {
    for (const program of await programs(['-m', mode])) {
      for (const dst of ['0.0.0.0', '::', '::ffff:0.0.0.0']) {
        for (const uid of [1000, 1337, 0]) {
          t.is(verdict(program, { dst, dport: 8080, uid }), 'untouched', `${program.source}: uid ${uid} -> ${dst}`);
        }
      }
    }
  });
}

test('the unspecified address becomes 127.0.0.1 / ::1 (or the socket\'s own IPv4 address) leaving by lo; the output says why', (t) => {
  const v4 = buildPacket({ dst: '0.0.0.0', dport: 80 }).packet;
  t.is(v4.dst.toString(), '127.0.0.1');
  t.is(v4.src.toString(), '127.0.0.1');
  t.is(v4.outInterface, 'lo');
  t.regex(v4.dstRewrite?.reason ?? '', /sends a connection to the unspecified address 0\.0\.0\.0 to 127\.0\.0\.1 by lo, before OUTPUT/);

  const bound = buildPacket({ dst: '0.0.0.0', dport: 80, src: '192.0.2.9' }).packet;
  t.is(bound.dst.toString(), '192.0.2.9', 'IPv4 connects to the socket\'s own address');
  t.is(bound.outInterface, 'lo');

  const v6 = buildPacket({ dst: '::', dport: 80, out: 'lo' }).packet;
  t.is(v6.dst.toString(), '::1');
  t.is(v6.family, 6);

  const text = formatTrace(tracePacket({ baseChains: [], source: 'none' }, v4), v4, 'none', []);
  t.regex(text, /^packet: {2}outbound tcp 127\.0\.0\.1:40000 -> 127\.0\.0\.1:80 .*\n {9}\(given --dst 0\.0\.0\.0: the kernel sends a connection to the unspecified address/);
  const json = traceJson(tracePacket({ baseChains: [], source: 'none' }, v4), v4, 'none', []) as { packet: Record<string, unknown> };
  t.is(json.packet.dst, '127.0.0.1');
  t.is(json.packet.dstGiven, '0.0.0.0');
});

test('an IPv4-mapped destination is traced as IPv4 under the IPv4 rules, and the output says so', async (t) => {
  for (const program of await programs()) {
    // 192.0.2.6 is excluded by the IPv4 list; IPv6 rules would capture ::ffff:192.0.2.6.
    t.is(verdict(program, { dst: '::ffff:192.0.2.6', dport: 443, uid: 1000 }), 'untouched', program.source);
    t.is(verdict(program, { dst: '::ffff:198.51.100.6', dport: 443, uid: 1000 }), 'redirect:15001', program.source);
    t.is(verdict(program, { dst: '::ffff:127.0.0.1', dport: 443, uid: 1000 }), 'untouched', `${program.source}: loopback`);
  }
  // Only IPv4 rules: a mapped destination is still captured.
  const { config } = await optionsFrom([...ISTIO_BASE, '-i', '*']);
  const v4only = programFromRulesetIptables(buildIstioRuleset(config));
  t.is(verdict(v4only, { dst: '::ffff:198.51.100.6', dport: 443, uid: 1000 }), 'redirect:15001');

  const { packet } = buildPacket({ dst: '::ffff:192.0.2.6', dport: 443, src: '::ffff:192.0.2.1' });
  t.is(packet.family, 4);
  t.is(packet.dst.toString(), '192.0.2.6');
  t.is(packet.src.toString(), '192.0.2.1');
  t.is(packet.outInterface, 'eth0', 'routed like any IPv4 address');
  t.regex(packet.dstRewrite?.reason ?? '', /::ffff:192\.0\.2\.6 is an IPv4-mapped address: an IPv6 socket sends IPv4 to 192\.0\.2\.6, so the IPv4 rules decide/);
});

test('contradicting options are refused, naming the option', (t) => {
  t.throws(() => buildPacket({ dst: '0.0.0.0', dport: 80, out: 'eth0' }), { message: /--out.*eth0.*lo, or no --out/ });
  t.throws(() => buildPacket({ dst: '::ffff:192.0.2.6', dport: 80, src: '2001:db8::1' }), { message: /--src.*an IPv4 address, as the kernel sends --dst ::ffff:192\.0\.2\.6 \(to 192\.0\.2\.6\)/ });
  t.throws(() => buildPacket({ dst: '0.0.0.0', dport: 80, in: 'eth0' }), { message: /--dst.*martians/ });
  t.throws(() => buildPacket({ dst: '::ffff:192.0.2.6', dport: 80, in: 'eth0' }), { message: /--dst.*use --dst 192\.0\.2\.6/ });
});
