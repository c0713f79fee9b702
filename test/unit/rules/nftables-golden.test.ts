/**
 * Table-driven golden tests for the nftables renderer: the same base configuration and cases as
 * the iptables goldens (test/helpers/istio-golden-cases.ts), plus the cases only nft renders
 * differently, each rendered to the nft script of the tables it installs and compared with
 * test/golden/nftables/NAME.nft. Regenerate after an intended change with UPDATE_GOLDEN=1 and
 * review the diff.
 */
import test from 'ava';
import { join } from 'node:path';
import { buildIstioRuleset } from '../../../src/rules/istio-ruleset.js';
import { SET_THRESHOLD } from '../../../src/rules/nft-sets.js';
import { renderNftScript, renderNftTables } from '../../../src/rules/render/nftables.js';
import { ISTIO_GOLDEN_CASES, assertGolden, caseOptions, type IstioGoldenCase } from '../../helpers/istio-golden-cases.js';

const GOLDEN_DIR = join(import.meta.dirname, '..', '..', 'golden', 'nftables');

/** A list one CIDR longer than the set threshold, in 198.51.100.0/24: rendered as an interval set. */
const manyRanges = Array.from({ length: SET_THRESHOLD + 1 }, (_, i) => `198.51.100.${i * 16}/28`).join(',');

const NFT_ONLY_CASES: readonly IstioGoldenCase[] = [
  // iptables' `eth+` wildcard is `eth*` in nft, which takes `+` literally.
  { name: 'exclude-interface-wildcard', args: ['-c', 'eth+,wg0'] },
  // Past SET_THRESHOLD a run of address rules becomes one rule on an interval set (merged: the
  // nine /28s are one contiguous range, 198.51.100.0-198.51.100.143).
  { name: 'exclude-ranges-become-a-set', args: ['-i', '*', '-x', manyRanges] },
];

for (const c of [...ISTIO_GOLDEN_CASES, ...NFT_ONLY_CASES]) {
  test(`renders ${c.name}`, async (t) => {
    const { config } = await caseOptions(c);
    const script = renderNftScript(renderNftTables(buildIstioRuleset(config)), []);
    assertGolden(t, join(GOLDEN_DIR, `${c.name}.nft`), script, import.meta.filename);
  });
}
