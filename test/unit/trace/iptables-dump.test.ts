/**
 * iptables-save text back into the IR: every rule interpose renders parses back to the same
 * rule (pure round trip over a spread of configurations), foreign rules are kept as "not
 * understood", and a dump traces like the configuration it came from.
 */
import test from 'ava';
import { buildIstioRuleset } from '../../../src/rules/istio-ruleset.js';
import type { Ruleset } from '../../../src/rules/ir.js';
import { familyRulesetFromSave, parseIptablesDump, parseRuleSpec, programFromIptablesSave } from '../../../src/trace/iptables-dump.js';
import { programFromRulesetIptables } from '../../../src/trace/from-ruleset.js';
import { buildPacket } from '../../../src/trace/packet.js';
import { tracePacket } from '../../../src/trace/walker.js';
import { fakeSystem } from '../../helpers/fake-system.js';
import { ISTIO_BASE, optionsFrom } from '../../helpers/istio-config.js';
import { CONFIGS, normalFamily, saveText } from './trace-fixtures.js';

async function rulesetFor(args: string[], env: Record<string, string> = {}): Promise<Ruleset> {
  const { config } = await optionsFrom([...ISTIO_BASE, ...args], env, fakeSystem({ resolvConf: 'nameserver 192.0.2.53\n' }));
  return buildIstioRuleset(config);
}

for (const c of CONFIGS) {
  test(`render → save text → parse gives the same IR: ${c.name}`, async (t) => {
    const ruleset = await rulesetFor(c.args, c.env);
    for (const f of ruleset.families) {
      t.deepEqual(normalFamily(familyRulesetFromSave(saveText(f), f.family)), normalFamily(f), `IPv${f.family}`);
    }
  });
}

test('each iptables-save form interpose writes parses to its IR node', (t) => {
  const chains = new Set(['ISTIO_X']);
  const cases: Array<[string, unknown]> = [
    ['! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_X', [['destination', true], ['outInterface', undefined], ['protocol', undefined], ['destinationPort', true], ['ownerUid', undefined]]],
    ['-p tcp -m multiport ! --dports 53,15008 -m owner ! --gid-owner 7 -j RETURN', [['protocol', undefined], ['destinationPorts', true], ['ownerGid', true]]],
    ['-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_X', [['protocol', undefined], ['conntrackState', undefined]]],
    ['-p tcp -m mark ! --mark 0x53a -j RETURN', [['protocol', undefined], ['mark', true]]],
    ['-p tcp -m connmark --mark 0x539 -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff', [['protocol', undefined], ['connmark', undefined]]],
  ];
  for (const [spec, want] of cases) {
    const r = parseRuleSpec(spec, 4, chains);
    t.deepEqual(r.matches.map((m) => [m.kind, 'negate' in m ? m.negate : undefined]), want, spec);
  }
  const targets: Array<[string, unknown]> = [
    ['-j REDIRECT --to-ports 15001', { kind: 'redirect', toPort: 15001 }],
    ['-p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff', { kind: 'tproxy', onPort: 15006, mark: 0x539, mask: 0xffffffff }],
    ['-j MARK --set-xmark 0x539/0xffffffff', { kind: 'setMark', mark: 0x539 }],
    ['-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff', { kind: 'connmarkSave' }],
    ['-j CT --zone 2', { kind: 'ctZone', zone: 2 }],
    ['-j ACCEPT', { kind: 'accept' }],
    ['-j DROP', { kind: 'drop' }],
    ['-j ISTIO_X', { kind: 'jump', chain: 'ISTIO_X' }],
  ];
  for (const [spec, want] of targets) t.deepEqual(parseRuleSpec(spec, 4, chains).target, want, spec);
});

test('foreign rules are kept and marked not understood; the trace walks past them and says so', (t) => {
  const text = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':DOCKER - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    ':ISTIO_REDIRECT - [0:0]',
    '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
    '-A OUTPUT -j ISTIO_OUTPUT',
    '-A DOCKER -i docker0 -j RETURN',
    '-A ISTIO_OUTPUT -m comment --comment "a note" -d 203.0.113.0/24 -j ISTIO_REDIRECT',
    '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    'COMMIT',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    '-A INPUT -j DROP',
    'COMMIT',
  ].join('\n');
  const tables = parseIptablesDump(text, 4);
  t.deepEqual(tables.map((x) => x.table), ['nat'], 'only raw, mangle and nat are traced');
  const output = tables[0]!.chains.find((c) => c.name === 'OUTPUT')!.rules;
  t.regex(output[0]!.unparsed ?? '', /-m addrtype/);
  const program = programFromIptablesSave([{ family: 4, text }], 'test');
  const r = tracePacket(program, buildPacket({ dst: '203.0.113.9', dport: 80, uid: 1000, out: 'eth0' }).packet);
  t.deepEqual(r.verdict, { kind: 'redirect', port: 15001 });
  t.true(r.notes.some((n) => /does not understand.*addrtype/.test(n)));
  t.throws(() => familyRulesetFromSave(text, 4), { message: /not an interpose rule/ });
});

test('a parsed dump traces exactly like the configuration it came from', async (t) => {
  const ruleset = await rulesetFor(['-m', 'TPROXY', '-b', '*', '-d', '22', '-i', '192.0.2.0/24', '-x', '192.0.2.7/32', '--redirect-dns', '--enable-ipv6']);
  const fromConfig = programFromRulesetIptables(ruleset);
  const fromDump = programFromIptablesSave(ruleset.families.map((f) => ({ family: f.family, text: saveText(f) })), 'dump');
  const packets = [
    { dst: '192.0.2.9', dport: 80, uid: 1000, out: 'eth0' },
    { dst: '192.0.2.7', dport: 80, uid: 1000, out: 'eth0' },
    { dst: '192.0.2.53', dport: 53, uid: 1000, out: 'eth0', proto: 'udp' },
    { dst: '192.0.2.9', dport: 80, uid: 1337, out: 'eth0' },
    { dst: '192.0.2.10', dport: 8080, in: 'eth0' },
    { dst: '192.0.2.10', dport: 22, in: 'eth0' },
    { dst: '2001:db8::10', dport: 8080, in: 'eth0' },
    { dst: '192.0.2.10', dport: 8080, in: 'eth0', state: 'ESTABLISHED' },
    { dst: '100.64.0.1', dport: 8080, uid: 1337, out: 'lo' },
  ];
  for (const o of packets) {
    const p = buildPacket(o).packet;
    const a = tracePacket(fromConfig, p);
    const b = tracePacket(fromDump, p);
    t.deepEqual(b.verdict, a.verdict, JSON.stringify(o));
    t.deepEqual(b.decidedBy, a.decidedBy, JSON.stringify(o));
  }
});
