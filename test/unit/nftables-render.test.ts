/**
 * The nftables renderer: istio-nftables' tables, base chains and rule order from the merged
 * inet view; rules in the form `nft -y list` prints; long CIDR lists as interval sets. The
 * kernel side of "what nft lists equals what we render" is held by test/kernel/nftables-*.
 */
import test from 'ava';
import { parseCidr } from '../../src/net/cidr.js';
import type { FamilyRuleset, Ruleset } from '../../src/rules/ir.js';
import { buildIstioRuleset } from '../../src/rules/istio-ruleset.js';
import { RETURN, cidr, dst, jump, proto, rule } from '../../src/rules/match.js';
import { renderRestore } from '../../src/rules/render/iptables.js';
import {
  deriveInetView,
  nftRuleText,
  renderNftScript,
  renderNftTables,
  type NftTable,
} from '../../src/rules/render/nftables.js';
import { ISTIO_BASE, optionsFrom } from '../helpers/istio-config.js';

async function rulesetFor(args: string[], env: Record<string, string> = {}): Promise<Ruleset> {
  const { config } = await optionsFrom([...ISTIO_BASE, ...args], env);
  return buildIstioRuleset(config);
}

const chain = (tables: NftTable[], table: string, name: string) =>
  tables.find((t) => t.name === table)?.chains.find((c) => c.name === name);

test('default configuration: one nat table with an output base chain and istio-nftables rule forms', async (t) => {
  const tables = renderNftTables(await rulesetFor([]));
  t.deepEqual(tables.map((x) => x.name), ['istio-proxy-nat']);
  const nat = tables[0]!;
  t.deepEqual(nat.chains.map((c) => c.name), ['output', 'istio-inbound', 'istio-redirect', 'istio-in-redirect', 'istio-output']);
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'output')?.base, { type: 'nat', hook: 'output', priority: -100 });
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'istio-output')?.rules, [
    'oifname "lo" ip saddr 127.0.0.6 counter return',
    'oifname "lo" ip daddr != 127.0.0.1 tcp dport != 15008 meta skuid 1337 counter jump istio-in-redirect',
    'oifname "lo" meta skuid != 1337 counter return',
    'meta skuid 1337 counter return',
    'oifname "lo" ip daddr != 127.0.0.1 tcp dport != 15008 meta skgid 1337 counter jump istio-in-redirect',
    'oifname "lo" meta skgid != 1337 counter return',
    'meta skgid 1337 counter return',
    'ip daddr 127.0.0.1 counter return',
  ]);
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'istio-redirect')?.rules, ['meta l4proto tcp counter redirect to :15001']);
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'istio-inbound')?.rules, ['tcp dport 15008 counter return']);
});

test('dual-stack TPROXY: mangle chains with istio-nftables hooks, and the inserts counted in the merged chain', async (t) => {
  const tables = renderNftTables(await rulesetFor(['-m', 'TPROXY', '-b', '*', '--enable-ipv6']));
  t.deepEqual(tables.map((x) => x.name), ['istio-proxy-nat', 'istio-proxy-mangle']);
  t.deepEqual(chain(tables, 'istio-proxy-mangle', 'prerouting')?.base, { type: 'filter', hook: 'prerouting', priority: -150 });
  t.deepEqual(chain(tables, 'istio-proxy-mangle', 'output')?.base, { type: 'route', hook: 'output', priority: -150 });
  // istio-nftables inserts at index 0, 1 (IPv4), 1 (IPv6), 2 in one inet chain: the IPv6
  // passthrough rule lands above the IPv4 one, and the mark test between them.
  t.deepEqual(chain(tables, 'istio-proxy-mangle', 'istio-inbound')?.rules, [
    'meta l4proto tcp meta mark 0x00000539 counter return',
    'iifname "lo" meta l4proto tcp ip6 saddr ::6 counter return',
    'iifname "lo" meta l4proto tcp meta mark != 0x0000053a counter return',
    'iifname "lo" meta l4proto tcp ip saddr 127.0.0.6 counter return',
    'meta l4proto tcp ct state established,related counter jump istio-divert',
    'meta l4proto tcp counter jump istio-tproxy',
  ]);
  t.deepEqual(chain(tables, 'istio-proxy-mangle', 'istio-tproxy')?.rules, [
    'meta l4proto tcp ip daddr != 127.0.0.1 tproxy ip to :15006 meta mark set 0x00000539 counter accept',
    'meta l4proto tcp ip6 daddr != ::1 tproxy ip6 to :15006 meta mark set 0x00000539 counter accept',
  ]);
});

test('ct state goes ahead of the port, as istio-nftables writes it; iptables keeps its own order', async (t) => {
  const ruleset = await rulesetFor(['-m', 'TPROXY', '-b', '8080']);
  t.true(chain(renderNftTables(ruleset), 'istio-proxy-mangle', 'istio-inbound')!.rules.includes(
    'ct state established,related tcp dport 8080 counter jump istio-divert',
  ));
  t.regex(renderRestore(ruleset.families[0]!), /-A ISTIO_INBOUND -p tcp -m tcp --dport 8080 -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT/);
});

test('--drop-invalid: istio-nftables drops invalid TCP only, istio-iptables every invalid packet', async (t) => {
  const ruleset = await rulesetFor(['--drop-invalid']);
  t.deepEqual(chain(renderNftTables(ruleset), 'istio-proxy-mangle', 'prerouting')?.rules, [
    'meta l4proto tcp ct state invalid counter jump istio-drop',
  ]);
  t.regex(renderRestore(ruleset.families[0]!), /^-A PREROUTING -m conntrack --ctstate INVALID -j ISTIO_DROP$/m);
});

test('DNS capture: one shared jump in the inet table even when only IPv4 has servers', async (t) => {
  const { config } = await optionsFrom([...ISTIO_BASE, '--redirect-dns', '--enable-ipv6'], {}, fakeWithResolv('nameserver 192.0.2.53\n'));
  const ruleset = buildIstioRuleset(config);
  const tables = renderNftTables(ruleset);
  t.is(chain(tables, 'istio-proxy-nat', 'istio-output')!.rules.filter((r) => r.includes('jump istio-output-dns')).length, 1);
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'istio-output-dns')?.rules, [
    'ip daddr 192.0.2.53 tcp dport 53 counter redirect to :15053',
    'ip daddr 192.0.2.53 udp dport 53 counter redirect to :15053',
  ]);
  t.deepEqual(chain(tables, 'istio-proxy-raw', 'prerouting')?.rules, ['counter jump istio-inbound']);
  t.true(chain(tables, 'istio-proxy-raw', 'istio-output-dns')!.rules.includes('udp dport 53 ip daddr 192.0.2.53 counter ct zone set 2'));
  t.deepEqual(chain(tables, 'istio-proxy-raw', 'istio-inbound')?.rules, ['udp sport 53 ip saddr 192.0.2.53 counter ct zone set 1']);
  // iptables still jumps only where a family has servers.
  t.regex(renderRestore(ruleset.families[0]!), /-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS/);
  t.notRegex(renderRestore(ruleset.families[1]!), /-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS/);
});

function fakeWithResolv(resolvConf: string) {
  return {
    lookupUser: async (name: string) => ({ root: 0 })[name],
    lookupGroup: async (name: string) => ({ root: 0 })[name],
    readResolvConf: async () => resolvConf,
    hasGlobalIPv6: async () => false,
    networkNamespaceExists: async () => true,
  };
}

const manyV4 = Array.from({ length: 16 }, (_, i) => `198.51.100.${i * 16}/28`);
const manyV6 = Array.from({ length: 10 }, (_, i) => `2001:db8:${i}::/48`);

test('a long exclude list becomes one interval set per family, merged; a short one stays one rule per CIDR', async (t) => {
  const tables = renderNftTables(await rulesetFor(['-i', '*', '-x', [...manyV4, ...manyV6, '203.0.113.0/24'].join(','), '--enable-ipv6']));
  const nat = tables[0]!;
  // The loopback returns sit in the same run of returns, so they join the sets too.
  t.deepEqual(
    nat.sets.map((s) => ({ name: s.name, family: s.family, elements: s.elements, intervals: s.intervals.count })),
    [
      { name: 'istio-output-return-v4', family: 4, elements: ['127.0.0.1', '198.51.100.0/24', '203.0.113.0/24'], intervals: 3 },
      { name: 'istio-output-return-v6', family: 6, elements: ['::1', '2001:db8::-2001:db8:9:ffff:ffff:ffff:ffff:ffff'], intervals: 2 },
    ],
  );
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'istio-output')!.rules.slice(-3), [
    'ip daddr @istio-output-return-v4 counter return',
    'ip6 daddr @istio-output-return-v6 counter return',
    'counter jump istio-redirect',
  ]);

  const short = renderNftTables(await rulesetFor(['-x', manyV4.slice(0, 3).join(',')]));
  t.deepEqual(short[0]!.sets, []);
  t.deepEqual(chain(short, 'istio-proxy-nat', 'istio-output')!.rules.slice(-3), [
    'ip daddr 198.51.100.0/28 counter return',
    'ip daddr 198.51.100.16/28 counter return',
    'ip daddr 198.51.100.32/28 counter return',
  ]);

  const linear = renderNftTables(await rulesetFor(['-x', manyV4.join(',')]), { setThreshold: Infinity });
  t.deepEqual(linear[0]!.sets, [], 'setThreshold Infinity keeps one rule per CIDR');
});

test('include lists with kube-virt interfaces group per interface, where istio inserted them', async (t) => {
  const tables = renderNftTables(await rulesetFor(['-k', 'eth1,eth2', '-i', manyV4.join(',')]));
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'prerouting')?.rules, [
    'iifname "eth2" ip daddr @prerouting-istio-redirect-v4 counter jump istio-redirect',
    'iifname "eth1" ip daddr @prerouting-istio-redirect-v4-2 counter jump istio-redirect',
    'iifname "eth2" counter return',
    'iifname "eth1" counter return',
  ]);
  const sets = tables[0]!.sets.map((s) => s.elements);
  t.deepEqual(sets, [['198.51.100.0/24'], ['198.51.100.0/24'], ['198.51.100.0/24']]);
});

test('rule text for matches the builders do not use yet', (t) => {
  const c = (s: string) => parseCidr(s)!;
  t.is(nftRuleText(rule(RETURN, dst(c('2001:db8::/32'), true))), 'ip6 daddr != 2001:db8::/32 counter return');
  t.is(nftRuleText(rule(jump('ISTIO_X'), proto('udp')), 6), 'meta nfproto ipv6 meta l4proto udp counter jump istio-x');
  t.is(
    nftRuleText(rule(RETURN, proto('tcp'), { kind: 'destinationPorts', ports: [443, 80, 80] })),
    'tcp dport { 80, 443 } counter return',
  );
  t.throws(() => nftRuleText(rule({ kind: 'tproxy', onPort: 1, mark: 1, mask: 0xff }, dst(cidr('192.0.2.0/24')))), {
    message: /full mask/,
  });
});

test('a hand-made ruleset without an inet view: shared chains once, different ones per family', (t) => {
  const same = [rule(jump('ISTIO_OUTPUT'))];
  const families: FamilyRuleset[] = [4, 6].map((family) => ({
    family: family as 4 | 6,
    tables: [
      {
        table: 'nat',
        chains: [{ name: 'ISTIO_OUTPUT', rules: [rule(RETURN, proto('tcp'), { kind: 'destinationPort', port: family === 4 ? 1 : 2 })] }],
        builtin: [{ chain: 'OUTPUT', head: [], tail: same }],
      },
    ],
  }));
  const view = deriveInetView(families);
  const tables = renderNftTables({ families, inet: view });
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'output')?.rules, ['counter jump istio-output']);
  t.deepEqual(chain(tables, 'istio-proxy-nat', 'istio-output')?.rules, [
    'meta nfproto ipv4 tcp dport 1 counter return',
    'meta nfproto ipv6 tcp dport 2 counter return',
  ]);
  t.deepEqual(renderNftTables({ families }), tables, 'the renderer derives the same view itself');
});

test('the transaction deletes and recreates each table it names, in one script', async (t) => {
  const tables = renderNftTables(await rulesetFor(['--drop-invalid']));
  const script = renderNftScript(tables, ['istio-proxy-nat', 'istio-proxy-mangle', 'istio-proxy-raw']);
  t.true(
    script.startsWith(
      'add table inet istio-proxy-nat\ndelete table inet istio-proxy-nat\n' +
        'add table inet istio-proxy-mangle\ndelete table inet istio-proxy-mangle\n' +
        'add table inet istio-proxy-raw\ndelete table inet istio-proxy-raw\n' +
        'table inet istio-proxy-nat {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n',
    ),
    script,
  );
  t.notRegex(script, /table inet istio-proxy-raw \{/, 'a stale table is only deleted');
});
