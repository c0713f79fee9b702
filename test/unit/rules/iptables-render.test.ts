/**
 * Table-driven golden tests: a base configuration plus one change per case (the table shared
 * with the nftables goldens, test/helpers/istio-golden-cases.ts), rendered to the dry-run text
 * and compared with test/golden/iptables/NAME.rules. Regenerate after an intended change with
 * UPDATE_GOLDEN=1 and review the diff.
 */
import test from 'ava';
import { join } from 'node:path';
import { emptyIptablesState, planIptablesInstall } from '../../../src/kernel/iptables-backend.linux.js';
import type { Ruleset } from '../../../src/rules/ir.js';
import { buildIstioRuleset } from '../../../src/rules/istio-ruleset.js';
import { renderRuleSpec } from '../../../src/rules/render/iptables.js';
import { fakeSystem } from '../../helpers/fake-system.js';
import { optionsFrom } from '../../helpers/istio-config.js';
import { ISTIO_GOLDEN_CASES, assertGolden, caseOptions } from '../../helpers/istio-golden-cases.js';

const GOLDEN_DIR = join(import.meta.dirname, '..', '..', 'golden', 'iptables');

/** The --dry-run text for a kernel that holds none of our rules. */
const renderDryRun = (ruleset: Ruleset) => planIptablesInstall(emptyIptablesState(), ruleset, { reconcile: false, forceApply: false }).text();

for (const c of ISTIO_GOLDEN_CASES) {
  test(`renders ${c.name}`, async (t) => {
    const { config } = await caseOptions(c);
    assertGolden(t, join(GOLDEN_DIR, `${c.name}.rules`), renderDryRun(buildIstioRuleset(config)), import.meta.filename);
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
