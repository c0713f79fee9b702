/**
 * The IR walk, one rule kind at a time: each test builds a tiny ruleset by hand, traces packets
 * that should and should not match, and checks the verdict and the deciding rule.
 */
import test from 'ava';
import type { IpFamily } from '../../../src/net/cidr.js';
import type { Match, Rule, Ruleset, TableName, Target } from '../../../src/rules/ir.js';
import { RETURN, cidr, dport, dst, gidOwner, inIf, jump, markIs, outIf, proto, rule, sport, src, uidOwner } from '../../../src/rules/match.js';
import { programFromRulesetIptables, programFromRulesetNft } from '../../../src/trace/from-ruleset.js';
import { buildPacket, type PacketOptions } from '../../../src/trace/packet.js';
import type { TraceProgram } from '../../../src/trace/program.js';
import { tracePacket } from '../../../src/trace/walker.js';
import { cidrRange } from '../../../src/trace/address-range.js';

const REDIRECT: Target = { kind: 'redirect', toPort: 15001 };

/** A one-family ruleset: `chains` maps chain names to rules; built-in names become base chains. */
function ruleset(family: IpFamily, tables: Partial<Record<TableName, Record<string, Rule[]>>>): Ruleset {
  const builtins = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
  return {
    families: [
      {
        family,
        tables: Object.entries(tables).map(([table, chains]) => ({
          table: table as TableName,
          chains: Object.entries(chains!)
            .filter(([name]) => !builtins.has(name))
            .map(([name, rules]) => ({ name, rules })),
          builtin: Object.entries(chains!)
            .filter(([name]) => builtins.has(name))
            .map(([chain, rules]) => ({ chain, head: [], tail: rules })),
        })),
      },
    ],
  };
}

/** nat OUTPUT → ISTIO_OUTPUT holding `rules`, then REDIRECT chain. */
function natOutput(family: IpFamily, ...rules: Rule[]): TraceProgram {
  return programFromRulesetIptables(
    ruleset(family, { nat: { OUTPUT: [rule(jump('ISTIO_OUTPUT'))], ISTIO_OUTPUT: rules, ISTIO_REDIRECT: [rule(REDIRECT, proto('tcp'))] } }),
  );
}

function verdictOf(program: TraceProgram, o: PacketOptions): string {
  const r = tracePacket(program, buildPacket(o).packet);
  return r.verdict.kind === 'untouched' || r.verdict.kind === 'drop' ? r.verdict.kind : `${r.verdict.kind}:${r.verdict.port}`;
}

const out = (o: Partial<PacketOptions> = {}): PacketOptions => ({ dst: '203.0.113.5', dport: 443, uid: 1000, out: 'eth0', ...o });

test('destination CIDR, and its negation', (t) => {
  const p = natOutput(4, rule(jump('ISTIO_REDIRECT'), dst(cidr('203.0.113.0/24'))));
  t.is(verdictOf(p, out()), 'redirect:15001');
  t.is(verdictOf(p, out({ dst: '198.51.100.5' })), 'untouched');
  const n = natOutput(4, rule(jump('ISTIO_REDIRECT'), dst(cidr('203.0.113.0/24'), true)));
  t.is(verdictOf(n, out()), 'untouched');
  t.is(verdictOf(n, out({ dst: '198.51.100.5' })), 'redirect:15001');
});

test('source CIDR; a rule of the other family never matches', (t) => {
  const p = natOutput(4, rule(jump('ISTIO_REDIRECT'), src(cidr('192.0.2.0/28'))));
  t.is(verdictOf(p, out({ src: '192.0.2.9' })), 'redirect:15001');
  t.is(verdictOf(p, out({ src: '192.0.2.99' })), 'untouched');
  // IPv4-only rules: an IPv6 packet meets no table at all (iptables is per family).
  t.is(verdictOf(p, out({ dst: '2001:db8::5', src: '2001:db8::9' })), 'untouched');
});

test('IPv6 CIDRs', (t) => {
  const p = natOutput(6, rule(jump('ISTIO_REDIRECT'), dst(cidr('2001:db8:100::/48'))));
  t.is(verdictOf(p, out({ dst: '2001:db8:100:7::1' })), 'redirect:15001');
  t.is(verdictOf(p, out({ dst: '2001:db8:101::1' })), 'untouched');
});

test('interfaces: exact names and the "+" wildcard, which the nftables backend installs as nft\'s "*"', (t) => {
  const rs = ruleset(4, {
    nat: { OUTPUT: [rule(RETURN, outIf('veth+')), rule(jump('ISTIO_REDIRECT'))], ISTIO_REDIRECT: [rule(REDIRECT, proto('tcp'))] },
  });
  const ipt = programFromRulesetIptables(rs);
  t.is(verdictOf(ipt, out({ out: 'veth12' })), 'untouched');
  t.is(verdictOf(ipt, out({ out: 'eth0' })), 'redirect:15001');
  const nft = programFromRulesetNft(rs);
  t.is(verdictOf(nft, out({ out: 'veth12' })), 'untouched', 'nft: "veth+" is rendered (and traced) as "veth*"');
  t.is(verdictOf(nft, out({ out: 'eth0' })), 'redirect:15001');

  const inbound = programFromRulesetIptables(
    ruleset(4, { nat: { PREROUTING: [rule(RETURN, inIf('eth1')), rule(jump('ISTIO_IN'), proto('tcp'))], ISTIO_IN: [rule({ kind: 'redirect', toPort: 15006 }, proto('tcp'))] } }),
  );
  t.is(verdictOf(inbound, { dst: '192.0.2.10', dport: 80, in: 'eth1' }), 'untouched');
  t.is(verdictOf(inbound, { dst: '192.0.2.10', dport: 80, in: 'eth0' }), 'redirect:15006');
});

test('protocol, destination and source ports, multiport (and negations)', (t) => {
  const p = natOutput(
    4,
    rule(RETURN, proto('tcp'), dport(5000)),
    rule(RETURN, proto('udp'), sport(40001)),
    rule(RETURN, proto('tcp'), { kind: 'destinationPorts', ports: [25, 465] }),
    rule(jump('ISTIO_REDIRECT'), proto('tcp'), { kind: 'destinationPorts', ports: [53, 15008], negate: true }),
  );
  t.is(verdictOf(p, out({ dport: 5000 })), 'untouched');
  t.is(verdictOf(p, out({ dport: 465 })), 'untouched');
  t.is(verdictOf(p, out({ dport: 15008 })), 'untouched');
  t.is(verdictOf(p, out({ dport: 8080 })), 'redirect:15001');
  t.is(verdictOf(p, out({ dport: 8080, proto: 'udp', sport: 40001 })), 'untouched');
  const d = natOutput(4, rule(jump('ISTIO_REDIRECT'), proto('tcp'), dport(8080, true)));
  t.is(verdictOf(d, out({ dport: 8080 })), 'untouched');
  t.is(verdictOf(d, out({ dport: 8081 })), 'redirect:15001');
});

test('owner uid and gid, and their negations', (t) => {
  const p = natOutput(4, rule(RETURN, uidOwner(1337)), rule(RETURN, gidOwner(2000)), rule(jump('ISTIO_REDIRECT')));
  t.is(verdictOf(p, out({ uid: 1337, gid: 9 })), 'untouched');
  t.is(verdictOf(p, out({ uid: 9, gid: 2000 })), 'untouched');
  t.is(verdictOf(p, out({ uid: 9, gid: 9 })), 'redirect:15001');
  const n = natOutput(4, rule(RETURN, outIf('lo'), uidOwner(1337, true)), rule(jump('ISTIO_REDIRECT')));
  t.is(verdictOf(n, out({ uid: 5, dst: '127.0.0.1', out: 'lo' })), 'untouched');
  t.is(verdictOf(n, out({ uid: 1337, dst: '127.0.0.1', out: 'lo' })), 'redirect:15001');
  // Several negated gids in one rule: RETURN only for a packet whose gid is none of them.
  const g = natOutput(4, rule(RETURN, gidOwner(2000, true), gidOwner(3000, true)), rule(jump('ISTIO_REDIRECT')));
  t.is(verdictOf(g, out({ gid: 3000 })), 'redirect:15001');
  t.is(verdictOf(g, out({ gid: 4000 })), 'untouched');
});

test('conntrack state: nat only for NEW; ESTABLISHED follows the mangle DIVERT path', (t) => {
  const established: Match = { kind: 'conntrackState', states: ['RELATED', 'ESTABLISHED'] };
  const p = programFromRulesetIptables(
    ruleset(4, {
      mangle: {
        PREROUTING: [rule(jump('ISTIO_INBOUND'), proto('tcp'))],
        ISTIO_INBOUND: [rule(jump('ISTIO_DIVERT'), proto('tcp'), established), rule(jump('ISTIO_TPROXY'), proto('tcp'))],
        ISTIO_DIVERT: [rule({ kind: 'setMark', mark: 0x539 }), rule({ kind: 'accept' })],
        ISTIO_TPROXY: [rule({ kind: 'tproxy', onPort: 15006, mark: 0x539, mask: 0xffffffff }, proto('tcp'), dst(cidr('127.0.0.1/32'), true))],
      },
      nat: { PREROUTING: [rule({ kind: 'redirect', toPort: 9999 }, proto('tcp'))] },
    }),
  );
  const first = tracePacket(p, buildPacket({ dst: '192.0.2.10', dport: 80, in: 'eth0' }).packet);
  t.deepEqual(first.verdict, { kind: 'tproxy', port: 15006, mark: 0x539 });
  t.true(first.notes.some((n) => /assumes a NEW connection/.test(n)), 'a verdict involving nat says it assumes NEW');
  const later = tracePacket(p, buildPacket({ dst: '192.0.2.10', dport: 80, in: 'eth0', state: 'ESTABLISHED' }).packet);
  t.is(later.verdict.kind, 'untouched');
  t.is(later.final.mark, 0x539, 'DIVERT marks it for the policy route');
  t.true(later.steps.some((s) => s.kind === 'skip' && /first packet/.test(s.why)), 'nat is skipped, and the path says why');
});

test('marks, connection marks and their save/restore', (t) => {
  const p = programFromRulesetIptables(
    ruleset(4, {
      mangle: {
        OUTPUT: [
          rule(RETURN, outIf('lo'), proto('tcp'), markIs(0x539)),
          rule({ kind: 'setMark', mark: 0x53a }, outIf('lo'), proto('tcp'), uidOwner(1337)),
          rule({ kind: 'connmarkRestore' }, proto('tcp'), { kind: 'connmark', value: 0x539 }),
        ],
        PREROUTING: [rule({ kind: 'connmarkSave' }, proto('tcp'), markIs(0x53a))],
      },
    }),
  );
  const marked = tracePacket(p, buildPacket({ dst: '127.0.0.1', dport: 80, uid: 1337 }).packet);
  t.is(marked.final.mark, 0x53a);
  t.is(marked.final.ctMark, 0x53a, 'saved to the connection when it loops back through PREROUTING');
  const preMarked = tracePacket(p, buildPacket({ dst: '127.0.0.1', dport: 80, uid: 1337, mark: 0x539 }).packet);
  t.is(preMarked.final.mark, 0x539, 'the RETURN on mark 0x539 skips the re-marking');
  t.is(verdictOf(p, { dst: '127.0.0.1', dport: 80, uid: 1 }), 'untouched');
});

test('drop, and the conntrack zone target', (t) => {
  const p = programFromRulesetIptables(
    ruleset(4, {
      raw: { OUTPUT: [rule({ kind: 'ctZone', zone: 2 }, proto('udp'), dport(53))] },
      mangle: { PREROUTING: [rule(jump('ISTIO_DROP'), { kind: 'conntrackState', states: ['INVALID'] })], ISTIO_DROP: [rule({ kind: 'drop' })] },
    }),
  );
  t.is(verdictOf(p, { dst: '192.0.2.10', dport: 80, in: 'eth0', state: 'INVALID' }), 'drop');
  t.is(verdictOf(p, { dst: '192.0.2.10', dport: 80, in: 'eth0' }), 'untouched');
  t.is(tracePacket(p, buildPacket({ dst: '192.0.2.53', dport: 53, proto: 'udp' }).packet).final.ctZone, 2);
});

test('DNS redirect is told apart from a proxy redirect', (t) => {
  const p = natOutput(4, rule(jump('ISTIO_OUTPUT_DNS')), rule(jump('ISTIO_REDIRECT')));
  const withDns = programFromRulesetIptables(
    ruleset(4, {
      nat: {
        OUTPUT: [rule(jump('ISTIO_OUTPUT'))],
        ISTIO_OUTPUT: [rule(jump('ISTIO_OUTPUT_DNS')), rule(jump('ISTIO_REDIRECT'))],
        ISTIO_OUTPUT_DNS: [rule({ kind: 'redirect', toPort: 15053 }, proto('udp'), dport(53))],
        ISTIO_REDIRECT: [rule(REDIRECT, proto('tcp'))],
      },
    }),
  );
  t.is(verdictOf(withDns, out({ dport: 53, proto: 'udp' })), 'dns-redirect:15053');
  t.is(verdictOf(withDns, out({ dport: 53, proto: 'tcp' })), 'redirect:15001');
  const missing = tracePacket(p, buildPacket(out()).packet);
  t.deepEqual(missing.verdict, { kind: 'redirect', port: 15001 }, 'a jump to a chain that does not exist is skipped');
  t.true(missing.notes.some((n) => /ISTIO_OUTPUT_DNS .*not in the rules read/.test(n)));
});

test('a redirected packet loops back through lo: PREROUTING sees the new destination, nat does not run again', (t) => {
  const p = programFromRulesetIptables(
    ruleset(4, {
      nat: { OUTPUT: [rule(REDIRECT, proto('tcp'))], PREROUTING: [rule({ kind: 'redirect', toPort: 1 }, proto('tcp'))] },
      mangle: { PREROUTING: [rule({ kind: 'setMark', mark: 7 }, inIf('lo'), dst(cidr('127.0.0.1/32')), proto('tcp'), dport(15001))] },
    }),
  );
  const r = tracePacket(p, buildPacket(out()).packet);
  t.deepEqual(r.verdict, { kind: 'redirect', port: 15001 });
  t.is(r.final.destination, '127.0.0.1:15001');
  t.is(r.final.mark, 7);
});

test('the deciding rule is named, with the jumps that led there; a bypass lists the rules that missed', (t) => {
  const p = natOutput(4, rule(RETURN, dst(cidr('198.51.100.0/24'))), rule(jump('ISTIO_REDIRECT'), dst(cidr('10.0.0.0/8'))));
  const hit = tracePacket(p, buildPacket(out({ dst: '10.1.2.3' })).packet);
  t.deepEqual(hit.decidedBy[0]?.via, ['-A OUTPUT -j ISTIO_OUTPUT', '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT']);
  t.is(hit.decidedBy[0]?.rule, '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
  const ret = tracePacket(p, buildPacket(out({ dst: '198.51.100.7' })).packet);
  t.is(ret.decidedBy[0]?.rule, '-A ISTIO_OUTPUT -d 198.51.100.0/24 -j RETURN');
  const miss = tracePacket(p, buildPacket(out()).packet);
  t.is(miss.verdict.kind, 'untouched');
  t.is(miss.decidedBy[0]?.rule, undefined);
  t.deepEqual(miss.decidedBy[0]?.missed, [{ rule: '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT', why: 'destination 203.0.113.5 is not in 10.0.0.0/8' }]);
});

test('nft syntax: inet rules limited to one family, shown as nft prints them', (t) => {
  const p = programFromRulesetNft(
    ruleset(4, { nat: { OUTPUT: [rule(jump('ISTIO_OUTPUT'))], ISTIO_OUTPUT: [rule(jump('ISTIO_REDIRECT'), dst(cidr('10.0.0.0/8')))], ISTIO_REDIRECT: [rule(REDIRECT, proto('tcp'))] } }),
  );
  const r = tracePacket(p, buildPacket(out({ dst: '10.0.0.1' })).packet);
  t.is(r.decidedBy[0]?.rule, 'meta l4proto tcp counter redirect to :15001');
  t.deepEqual(r.decidedBy[0]?.via, ['counter jump istio-output', 'ip daddr 10.0.0.0/8 counter jump istio-redirect']);
  t.is(verdictOf(p, out({ dst: '2001:db8::1' })), 'untouched');
});

test('address sets (nft @set) match by range', (t) => {
  const table = {
    label: 'inet t',
    role: 'nat' as const,
    syntax: 'nft' as const,
    families: [4, 6] as IpFamily[],
    chains: new Map([
      [
        'output',
        [
          {
            matches: [{ kind: 'addressSet' as const, field: 'destination' as const, family: 4 as const, name: 's', ranges: [cidrRange(cidr('10.0.0.0/8')), { family: 4 as const, start: 0xc0000200n, end: 0xc0000210n }] }],
            target: REDIRECT,
            text: 'ip daddr @s counter redirect to :15001',
          },
        ],
      ],
    ]),
  };
  const p: TraceProgram = { source: 't', baseChains: [{ table, chain: 'output', hook: 'output', type: 'nat', priority: -100 }] };
  t.is(verdictOf(p, out({ dst: '10.9.9.9' })), 'redirect:15001');
  t.is(verdictOf(p, out({ dst: '192.0.2.16' })), 'redirect:15001');
  t.is(verdictOf(p, out({ dst: '192.0.2.17' })), 'untouched');
});

test('bad packet options name the option, the value and what is accepted', (t) => {
  const cases: Array<[PacketOptions, RegExp]> = [
    [{ dst: '300.1.1.1', dport: 80 }, /--dst: "300.1.1.1".*IPv4 or IPv6 address/],
    [{ dst: '192.0.2.1', dport: 0 }, /--dport: 0.*port from 1 to 65535/],
    [{ dst: '192.0.2.1', dport: 80, proto: 'sctp' }, /--proto: "sctp".*tcp or udp/],
    [{ dst: '192.0.2.1', dport: 80, uid: 'bob' }, /--uid: "bob".*numeric uid/],
    [{ dst: '192.0.2.1', dport: 80, in: 'eth0', out: 'eth1' }, /--in\/--out/],
    [{ dst: '192.0.2.1', dport: 80, src: '2001:db8::1' }, /--src.*IPv4 address/],
    [{ dst: '192.0.2.1', dport: 80, state: 'OPEN' }, /--state: "OPEN".*NEW, ESTABLISHED/],
    [{ dst: '192.0.2.1', dport: 80, direction: 'sideways' }, /--direction.*outbound or inbound/],
    [{ dst: '192.0.2.1', dport: 80, in: 'eth0', uid: 5 }, /--uid.*inbound/],
  ];
  for (const [o, re] of cases) t.throws(() => buildPacket(o), { message: re }, JSON.stringify(o));
});
