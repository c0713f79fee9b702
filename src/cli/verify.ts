/**
 * `interpose verify <istio-iptables flags>`: does the kernel hold exactly what these flags
 * would install? Prints the differences (missing, extra, changed rules) and exits 0 only when
 * there are none — a drift check for readiness probes. Reads only; changes nothing.
 *
 * The comparison is the one `interpose istio-iptables` uses to detect drift
 * (kernel/iptables-plan.ts, kernel/nftables-plan.ts), so verify and apply cannot disagree.
 */
import { settingsFromCommandLine } from './cli-settings.js';
import { Command } from 'commander';
import { buildIstioOptions } from '../config/istio-options.js';
import { InterceptError } from '../errors/intercept-error.js';
import { NamespacedExecutor, SystemExecutor, type Executor } from '../kernel/executor.js';
import { chooseIptables } from '../kernel/iptables-binaries.linux.js';
import { desiredOwned } from '../kernel/iptables-plan.js';
import { IptablesBackend } from '../kernel/iptables-backend.linux.js';
import { FileOwnershipStore } from '../kernel/ownership-record.linux.js';
import { parseIptablesSave } from '../kernel/iptables-save-parser.js';
import { parseNftListing } from '../kernel/nft-listing-parser.js';
import { diffNftTables } from '../kernel/nftables-plan.js';
import { findNft } from '../kernel/nftables-backend.linux.js';
import { LinuxSystemLookups } from '../kernel/system-lookups.linux.js';
import { buildIstioRuleset } from '../rules/istio-ruleset.js';
import type { Ruleset } from '../rules/ir.js';
import { OWNED_NFT_TABLES, renderNftTables } from '../rules/render/nftables.js';
import { info, warn } from './log.js';
import { helpText } from './help-layout.js';
import { addIstioFlagOptions } from './istio-flag-option.js';

/** The kernel differs from the configuration (exit 3, so scripts can tell it from bad input). */
export class VerifyMismatchError extends InterceptError {
  override name = 'VerifyMismatchError';
  override readonly exitCode = 3;
}

export function verifyCommand(): Command {
  const cmd = new Command('verify')
    .description(
      'Compare the rules the kernel holds with what these istio-iptables flags would install; print missing, ' +
        'extra and changed rules. Exit 0 when identical, 3 when they differ, 1 on bad input. Changes nothing.',
    )
    .summary('compare the rules the kernel holds with what istio-iptables flags would install')
    .allowExcessArguments(false);
  addIstioFlagOptions(cmd, 'read');
  cmd.addHelpText(
    'after',
    helpText(
      '\nExamples (e.g. from a readiness probe):\n' +
        '  interpose verify -p 15001 -z 15006 -u 1337 -g 1337 -i "*" -x 10.96.0.0/12 -b "*"\n' +
        '  interpose verify --native-nftables --network-namespace pod1 -i 10.96.0.0/12\n',
    ),
  );
  cmd.action(async (opts: Record<string, string | boolean | undefined>) => {
    await runVerify(opts);
  });
  return cmd;
}

async function runVerify(opts: Record<string, string | boolean | undefined>): Promise<void> {
  const system = new SystemExecutor();
  const { config, run } = await buildIstioOptions(settingsFromCommandLine(opts), new LinuxSystemLookups(system));
  const ruleset = buildIstioRuleset(config);
  const executor: Executor = run.networkNamespace ? new NamespacedExecutor(system, run.networkNamespace) : system;
  const where = run.networkNamespace ? `network namespace ${run.networkNamespace}` : 'this network namespace';

  const iptables = await iptablesDifferences(executor, ruleset, run.nativeNftables, run.forceIptablesBinary, run.networkNamespace);
  const nft = await nftDifferences(executor, ruleset, run.nativeNftables);
  const differences = [...iptables.differences, ...nft.differences];
  const backend = run.nativeNftables ? 'nftables' : `iptables-${iptables.variant ?? '?'}`;
  if (differences.length > 0) {
    process.stdout.write(differences.map((d) => `${d}\n`).join(''));
    throw new VerifyMismatchError(`${differences.length} difference(s) between the kernel (${where}) and this configuration (${backend} backend)`);
  }
  info(`the kernel (${where}) holds exactly what this configuration installs (${backend} backend, ${iptables.count + nft.count} rules)`);
}

/**
 * Differences in the iptables tables: ours vs wanted, or any of ours when nftables is wanted.
 * The backend's own compare() decides, with its record of what earlier runs installed.
 */
async function iptablesDifferences(
  executor: Executor,
  ruleset: Ruleset,
  nftWanted: boolean,
  forced: Parameters<typeof chooseIptables>[1],
  networkNamespace: string | undefined,
): Promise<{ differences: string[]; variant?: string; count: number }> {
  const bin = await chooseIptables(executor, forced).catch((err: unknown) => {
    if (nftWanted) return undefined;
    throw err;
  });
  if (!bin) return { differences: [], count: 0 };
  const backend = new IptablesBackend(executor, bin, new FileOwnershipStore(networkNamespace));
  const cmp = await backend.compare(nftWanted ? { families: [] } : ruleset);
  if (nftWanted) {
    const differences = cmp.anyCurrent ? [`iptables-${bin.variant} holds ISTIO_* rules, but this configuration uses the nftables backend`] : [];
    return { differences, variant: bin.variant, count: 0 };
  }
  let count = 0;
  for (const family of ruleset.families) {
    const known = desiredOwned(family);
    for (const t of known.values()) {
      for (const rules of t.chains.values()) count += rules.length;
      for (const rules of t.builtin.values()) count += rules.length;
    }
    const state = cmp.states.find((st) => st.family === family.family);
    if (!state) continue;
    for (const w of strayInterfaceReturns(state.saved, known, cmp.differences)) warn(`IPv${family.family} ${w}`);
  }
  return { differences: [...cmp.differences], variant: bin.variant, count };
}

/**
 * `-i IFACE -j RETURN` / `-o IFACE -j RETURN` in a nat or mangle PREROUTING/OUTPUT chain that
 * this configuration does not install. They look exactly like the exclude-interface rules
 * istio-init and interpose write, but nothing marks them as ours (they jump to no ISTIO_*
 * chain), so the drift comparison cannot claim them: a leftover from an earlier configuration
 * keeps that interface uncaptured. Reported as a warning, since another tool may own them.
 */
function strayInterfaceReturns(
  saved: ReturnType<typeof parseIptablesSave>,
  known: Map<string, { builtin: Map<string, string[]> }>,
  reported: readonly string[],
): string[] {
  const out: string[] = [];
  for (const table of ['nat', 'mangle']) {
    for (const r of saved.get(table)?.rules ?? []) {
      if (r.chain !== 'PREROUTING' && r.chain !== 'OUTPUT') continue;
      if (!/^-[io] \S+ -j RETURN$/.test(r.spec)) continue;
      if (known.get(table)?.builtin.get(r.chain)?.includes(r.spec)) continue;
      // Already reported as a difference (the ownership record knew it was ours).
      if (reported.some((d) => d.endsWith(`-A ${r.chain} ${r.spec}`))) continue;
      out.push(`${table} ${r.chain}: "-A ${r.chain} ${r.spec}" is not in this configuration but looks like an exclude-interface rule (-c/-k) left by an earlier one; that interface bypasses interception`);
    }
  }
  return out;
}

/** Differences in interpose's inet tables: ours vs wanted, or any of them when iptables is wanted. */
async function nftDifferences(executor: Executor, ruleset: Ruleset, nftWanted: boolean): Promise<{ differences: string[]; count: number }> {
  const nft = findNft();
  const tables = await executor.run([nft, 'list', 'tables', 'inet']).catch(() => undefined);
  if (!tables || tables.exitCode !== 0) {
    if (nftWanted) throw new InterceptError(`cannot list nftables tables (${tables?.stderr.trim() ?? 'nft not found'}); install the Debian package "nftables" and run as root`);
    return { differences: [], count: 0 };
  }
  const present = new Set([...tables.stdout.matchAll(/^table inet (\S+)$/gm)].map((m) => m[1]!));
  const ours = OWNED_NFT_TABLES.filter((n) => present.has(n));
  if (!nftWanted) {
    return { differences: ours.map((n) => `nftables: table inet ${n} exists, but this configuration uses the iptables backend`), count: 0 };
  }
  let listing = '';
  for (const name of ours) {
    const l = await executor.run([nft, '-y', 'list', 'table', 'inet', name]);
    if (l.exitCode !== 0) throw new InterceptError(`${nft} list table inet ${name} failed: ${l.stderr.trim()}`);
    listing += l.stdout;
  }
  const desired = renderNftTables(ruleset);
  const count = desired.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
  return { differences: diffNftTables(parseNftListing(listing), desired), count };
}
