/**
 * `nft -j` documents back into typed rules: each statement form the nftables renderer writes
 * (in the JSON shapes nft 1.0.6 prints), named and anonymous sets, ranges, and the rule text
 * paired from `nft -a list` by handle.
 */
import test from 'ava';
import { inetTablesFromNftJson, parseNftExpr, parseNftJson, programFromNftJson } from '../../../src/trace/nft-json.js';
import { buildPacket, type PacketOptions } from '../../../src/trace/packet.js';
import { tracePacket } from '../../../src/trace/walker.js';

const T = { family: 'inet', table: 'istio-proxy-nat' };
const match = (left: unknown, right: unknown, op = '==') => ({ match: { op, left, right } });
const meta = (key: string) => ({ meta: { key } });
const payload = (protocol: string, field: string) => ({ payload: { protocol, field } });
const counter = { counter: { packets: 0, bytes: 0 } };

const DOC = {
  nftables: [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'inet', name: 'istio-proxy-nat', handle: 1 } },
    { set: { ...T, name: 'istio-output-istio-redirect-v4', type: 'ipv4_addr', handle: 9, flags: ['interval'], elem: [{ prefix: { addr: '10.0.0.0', len: 8 } }, { range: ['192.0.2.10', '192.0.2.20'] }, '198.51.100.7'] } },
    { chain: { ...T, name: 'output', handle: 2, type: 'nat', hook: 'output', prio: -100, policy: 'accept' } },
    { chain: { ...T, name: 'istio-output', handle: 6 } },
    { chain: { ...T, name: 'istio-redirect', handle: 4 } },
    { chain: { ...T, name: 'istio-in-redirect', handle: 5 } },
    { rule: { ...T, chain: 'output', handle: 20, expr: [match(meta('oifname'), 'wg*'), counter, { return: null }] } },
    { rule: { ...T, chain: 'output', handle: 21, expr: [counter, { jump: { target: 'istio-output' } }] } },
    { rule: { ...T, chain: 'istio-output', handle: 30, expr: [match(payload('tcp', 'dport'), 5000), counter, { return: null }] } },
    {
      rule: {
        ...T,
        chain: 'istio-output',
        handle: 31,
        expr: [match(meta('oifname'), 'lo'), match(payload('ip', 'daddr'), '127.0.0.1', '!='), match(payload('tcp', 'dport'), { set: [53, 15008] }, '!='), match(meta('skuid'), 1337), counter, { jump: { target: 'istio-in-redirect' } }],
      },
    },
    { rule: { ...T, chain: 'istio-output', handle: 32, expr: [match(meta('skgid'), 1337), counter, { return: null }] } },
    { rule: { ...T, chain: 'istio-output', handle: 33, expr: [match(meta('nfproto'), 'ipv6'), match(meta('skuid'), 7), counter, { return: null }] } },
    { rule: { ...T, chain: 'istio-output', handle: 34, expr: [match(payload('ip', 'daddr'), '@istio-output-istio-redirect-v4'), counter, { jump: { target: 'istio-redirect' } }] } },
    { rule: { ...T, chain: 'istio-output', handle: 35, expr: [match(payload('ip6', 'daddr'), { prefix: { addr: '2001:db8::', len: 32 } }), counter, { jump: { target: 'istio-redirect' } }] } },
    { rule: { ...T, chain: 'istio-output', handle: 36, expr: [match(meta('cpu'), 1), counter, { return: null }] } },
    { rule: { ...T, chain: 'istio-redirect', handle: 40, expr: [match(meta('l4proto'), 'tcp'), counter, { redirect: { port: 15001 } }] } },
    { rule: { ...T, chain: 'istio-in-redirect', handle: 41, expr: [match(meta('l4proto'), 'tcp'), counter, { redirect: { port: 15006 } }] } },
    { table: { family: 'inet', name: 'someone-else', handle: 3 } },
    { chain: { family: 'inet', table: 'someone-else', name: 'output', handle: 1, type: 'nat', hook: 'output', prio: -200, policy: 'accept' } },
    { rule: { family: 'inet', table: 'someone-else', chain: 'output', handle: 2, expr: [{ drop: null }] } },
  ],
};

const LISTING = `table inet istio-proxy-nat { # handle 1
\tchain istio-output { # handle 6
\t\ttcp dport 5000 counter packets 3 bytes 180 return # handle 30
\t}
}
`;

function verdict(o: PacketOptions): string {
  const r = tracePacket(programFromNftJson([DOC], LISTING, 'test'), buildPacket(o).packet);
  return r.verdict.kind === 'untouched' || r.verdict.kind === 'drop' ? r.verdict.kind : `${r.verdict.kind}:${r.verdict.port}`;
}
const out = (o: Partial<PacketOptions>): PacketOptions => ({ dst: '203.0.113.5', dport: 443, uid: 1000, out: 'eth0', ...o });

test('only interpose tables are read; rule text comes from the listing when it has the handle', (t) => {
  const tables = parseNftJson([DOC], LISTING);
  t.deepEqual(tables.map((x) => x.name), ['istio-proxy-nat']);
  const chain = tables[0]!.chains.find((c) => c.name === 'istio-output')!;
  t.is(chain.rules[0]!.text, 'tcp dport 5000 counter return', 'from the listing, counters normalised');
  t.is(chain.rules[2]!.text, 'meta skgid 1337 counter return', 'rebuilt from the IR when the listing lacks it');
  t.regex(chain.rules[6]!.unparsed ?? '', /meta cpu/);
});

test('statement forms parse to IR matches and targets', (t) => {
  const sets = new Map();
  const r = parseNftExpr(
    [match(meta('oifname'), 'lo'), match(payload('ip', 'daddr'), '127.0.0.1', '!='), match(payload('tcp', 'dport'), { set: [53, 15008] }, '!='), match(meta('skuid'), 1337), counter, { jump: { target: 'x' } }],
    sets,
  );
  t.deepEqual(r.matches.map((m) => m.kind), ['protocol', 'outInterface', 'destination', 'destinationPorts', 'ownerUid']);
  const tp = parseNftExpr([match(meta('l4proto'), 'tcp'), match(payload('ip', 'daddr'), '127.0.0.1', '!='), { tproxy: { family: 'ip', port: 15006 } }, { mangle: { key: meta('mark'), value: 1337 } }, counter, { accept: null }], sets);
  t.deepEqual(tp.target, { kind: 'tproxy', onPort: 15006, mark: 1337, mask: 0xffffffff });
  t.deepEqual(parseNftExpr([{ mangle: { key: { ct: { key: 'mark' } }, value: meta('mark') } }], sets).target, { kind: 'connmarkSave' });
  t.deepEqual(parseNftExpr([{ mangle: { key: meta('mark'), value: { ct: { key: 'mark' } } } }], sets).target, { kind: 'connmarkRestore' });
  t.deepEqual(parseNftExpr([{ mangle: { key: { ct: { key: 'zone' } }, value: 2 } }], sets).target, { kind: 'ctZone', zone: 2 });
  const ct = parseNftExpr([match({ ct: { key: 'state' } }, ['established', 'related'], 'in'), match({ ct: { key: 'mark' } }, 1337), match(meta('mark'), 1338, '!='), counter, { jump: { target: 'd' } }], sets);
  t.deepEqual(ct.matches, [
    { kind: 'conntrackState', states: ['ESTABLISHED', 'RELATED'] },
    { kind: 'connmark', value: 1337 },
    { kind: 'mark', value: 1338, negate: true },
  ]);
  t.throws(() => parseNftExpr([counter, { return: null }, { accept: null }], sets), { message: /several actions/ });
});

test('a dump traces: wildcard interfaces, port sets, owner, named set with prefix, range and single address', (t) => {
  t.is(verdict(out({ out: 'wg0' })), 'untouched', 'oifname "wg*" is a wildcard');
  t.is(verdict(out({ dst: '10.1.1.1' })), 'redirect:15001', 'named set, prefix element');
  t.is(verdict(out({ dst: '192.0.2.15' })), 'redirect:15001', 'named set, range element');
  t.is(verdict(out({ dst: '192.0.2.21' })), 'untouched');
  t.is(verdict(out({ dst: '198.51.100.7' })), 'redirect:15001', 'named set, single address');
  t.is(verdict(out({ dst: '10.1.1.1', dport: 5000 })), 'untouched');
  t.is(verdict(out({ dst: '10.1.1.1', gid: 1337 })), 'untouched');
  t.is(verdict(out({ dst: '100.64.0.1', out: 'lo', uid: 1337 })), 'redirect:15006');
  t.is(verdict(out({ dst: '100.64.0.1', out: 'lo', uid: 1337, dport: 53 })), 'untouched', 'dport != { 53, 15008 }');
  t.is(verdict(out({ dst: '2001:db8::1', uid: 7 })), 'untouched', 'meta nfproto ipv6 rule');
  t.is(verdict(out({ dst: '10.1.1.1', uid: 7 })), 'redirect:15001', 'the ipv6-only rule skips IPv4');
  t.is(verdict(out({ dst: '2001:db8::1' })), 'redirect:15001');
});

test('the dump as the IR inet view, for the round trip; sets cannot be expressed there', (t) => {
  const noSet = { nftables: DOC.nftables.filter((o) => !('rule' in o) || ((o.rule as { handle: number }).handle !== 34 && (o.rule as { handle: number }).handle !== 36)) };
  const tables = inetTablesFromNftJson([noSet]);
  const out = tables[0]!.chains.find((c) => c.name === 'ISTIO_OUTPUT')!;
  t.deepEqual(out.rules[1]!.rule.target, { kind: 'jump', chain: 'ISTIO_IN_REDIRECT' });
  t.is(out.rules[3]!.family, 6);
  t.throws(() => inetTablesFromNftJson([DOC]), { message: /not representable in the IR/ });
});
