/**
 * `interpose verify <istio-iptables flags>`: does the kernel hold exactly what these flags
 * would install? Prints the differences (missing, extra, changed rules) and exits 0 only when
 * there are none — a drift check for readiness probes. Reads only; changes nothing.
 *
 * The comparison is the backend's own, the one `interpose istio-iptables` uses to detect drift
 * (kernel/verify-kernel.linux.ts), so verify and apply cannot disagree.
 */
import { settingsFromCommandLine } from './cli-settings.js';
import { Command } from 'commander';
import { buildIstioOptions } from '../config/istio-options.js';
import { InterceptError } from '../errors/intercept-error.js';
import { NamespacedExecutor, SystemExecutor, type Executor } from '../kernel/executor.js';
import { LinuxSystemLookups } from '../kernel/system-lookups.linux.js';
import { compareKernel } from '../kernel/verify-kernel.linux.js';
import { buildIstioRuleset } from '../rules/istio-ruleset.js';
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

  const r = await compareKernel(executor, ruleset, run);
  for (const w of r.warnings) warn(w);
  if (r.differences.length > 0) {
    process.stdout.write(r.differences.map((d) => `${d}\n`).join(''));
    throw new VerifyMismatchError(`${r.differences.length} difference(s) between the kernel (${where}) and this configuration (${r.backend} backend)`);
  }
  info(`the kernel (${where}) holds exactly what this configuration installs (${r.backend} backend, ${r.ruleCount} rules)`);
}
