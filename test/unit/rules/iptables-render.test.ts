/**
 * Table-driven golden tests: a base configuration plus one change per case, rendered to the
 * dry-run text and compared with test/golden/iptables/NAME.rules. Regenerate after an
 * intended change with UPDATE_GOLDEN=1 and review the diff.
 */
import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emptyIptablesState, planIptablesInstall } from '../../../src/kernel/iptables-backend.linux.js';
import type { Ruleset } from '../../../src/rules/ir.js';
import { buildIstioRuleset } from '../../../src/rules/istio-ruleset.js';
import { renderRuleSpec } from '../../../src/rules/render/iptables.js';
import { fakeSystem } from '../../helpers/fake-system.js';
import { ISTIO_BASE, optionsFrom } from '../../helpers/istio-config.js';

const GOLDEN_DIR = join(import.meta.dirname, '..', '..', 'golden', 'iptables');
const update = process.env.UPDATE_GOLDEN === '1';

/** The --dry-run text for a kernel that holds none of our rules. */
const renderDryRun = (ruleset: Ruleset) => planIptablesInstall(emptyIptablesState(), ruleset, { reconcile: false, forceApply: false }).text();

const dns = fakeSystem({ resolvConf: 'nameserver 192.0.2.53\nnameserver 2001:db8::53\n' });

const cases: Array<{ name: string; args: string[]; env?: Record<string, string>; dns?: boolean }> = [
  { name: 'defaults', args: [] },
  { name: 'capture-all-outbound-except-ranges', args: ['-i', '*', '-x', '198.51.100.0/24,203.0.113.0/25'] },
  { name: 'include-ranges-dual-stack', args: ['-i', '192.0.2.0/24,2001:db8:1::/48', '--enable-ipv6'] },
  { name: 'inbound-all-with-excludes', args: ['-b', '*', '-d', '15090,15021,15020'] },
  { name: 'inbound-list', args: ['-b', '8080,9090'] },
  { name: 'tproxy-dual-stack', args: ['-m', 'TPROXY', '-b', '*', '-d', '22', '--enable-ipv6'] },
  { name: 'dns-servers-dual-stack', args: ['--redirect-dns', '--enable-ipv6'], dns: true },
  { name: 'dns-capture-all', args: ['--redirect-dns', '--capture-all-dns'] },
  { name: 'outbound-ports', args: ['-q', '3306,5432', '-o', '25,465'] },
  { name: 'kubevirt-wildcard', args: ['-k', 'vm0,vm1', '-i', '*'] },
  { name: 'exclude-interfaces', args: ['-c', 'eth9,wg0'] },
  { name: 'drop-invalid', args: ['--drop-invalid'] },
  { name: 'owner-groups-include', args: [], env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' } },
  { name: 'loopback-include-range', args: ['-i', '127.0.0.0/8'] },
  { name: 'several-proxy-owners', args: ['-u', '1337,1338', '-g', '1337,2000', '--redirect-dns'], dns: true },
];

for (const c of cases) {
  test(`renders ${c.name}`, async (t) => {
    const { config } = await optionsFrom([...ISTIO_BASE, ...c.args], c.env ?? {}, c.dns ? dns : fakeSystem());
    const text = renderDryRun(buildIstioRuleset(config));
    const file = join(GOLDEN_DIR, `${c.name}.rules`);
    if (update) {
      mkdirSync(GOLDEN_DIR, { recursive: true });
      writeFileSync(file, text);
    }
    if (!existsSync(file)) {
      t.fail(`missing golden file ${file}: run UPDATE_GOLDEN=1 npx ava ${import.meta.filename} and review it`);
      return;
    }
    t.is(text, readFileSync(file, 'utf8'));
  });
}

test('a port match without a protocol is a programming error, caught at render', (t) => {
  t.throws(
    () => renderRuleSpec({ matches: [{ kind: 'destinationPort', port: 80 }], target: { kind: 'return' } }, 4),
    { message: /needs a protocol/ },
  );
});

test('IPv4-compatible and mapped IPv6 addresses render as ip6tables-save prints them', async (t) => {
  const system = fakeSystem({ resolvConf: 'nameserver ::127.0.0.53\n' });
  const { config } = await optionsFrom(['--redirect-dns', '--enable-ipv6', '-x', '::ffff:192.0.2.0/120'], {}, system);
  const text = renderDryRun(buildIstioRuleset(config));
  t.regex(text, /-d ::127\.0\.0\.53\/128 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053/);
  t.regex(text, /-A ISTIO_OUTPUT -d ::ffff:192\.0\.2\.0\/120 -j RETURN/);
});
