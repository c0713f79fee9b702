/**
 * `interpose verify <istio-iptables flags>`: does the kernel hold exactly what these flags
 * would install? Prints the differences (missing, extra, changed rules) and exits 0 only when
 * there are none — a drift check for readiness probes. Reads only; changes nothing.
 *
 * The comparison is the backend's own, the one `interpose istio-iptables` uses to detect drift
 * (kernel/verify-kernel.linux.ts), so verify and apply cannot disagree.
 */
import { istioFromCommandLine, type IstioFlagValues } from './cli-settings.js';
import { Command } from 'commander';
import { InterceptError } from '../errors/intercept-error.js';
import { SystemExecutor } from '../kernel/executor.js';
import { compareKernel } from '../kernel/verify-kernel.linux.js';
import { differenceObject } from '../kernel/difference-object.js';
import { info, warn } from './log.js';
import { helpText } from './help-layout.js';
import { addIstioFlagOptions } from './istio-flag-option.js';

/** The kernel differs from the configuration (exit 3, so scripts can tell it from bad input). */
export class VerifyMismatchError extends InterceptError {
  override name = 'VerifyMismatchError';
  override readonly exitCode = 3;
}

/**
 * An apply or cleanup wrote its intent and never finished (exit 4): the kernel may hold one
 * family's new rules and the other's old ones. The next apply or cleanup undoes it first.
 */
export class InterruptedApplyError extends InterceptError {
  override name = 'InterruptedApplyError';
  override readonly exitCode = 4;
}

export function verifyCommand(): Command {
  const cmd = new Command('verify')
    .description(
      'Compare the rules the kernel holds with what these istio-iptables flags would install; print missing, ' +
        'extra and changed rules. Exit 0 when identical, 3 when they differ, 4 when an apply was interrupted ' +
        '(killed before it finished: rerun it), 1 on bad input. Changes nothing.',
    )
    .summary('compare the rules the kernel holds with what istio-iptables flags would install')
    .allowExcessArguments(false);
  addIstioFlagOptions(cmd, 'read');
  cmd.option('--json', 'print the result as one JSON object on stdout (ok, backend, differences, warnings, interruptedApply)');
  cmd.addHelpText(
    'after',
    helpText(
      '\nExamples (e.g. from a readiness probe):\n' +
        '  interpose verify -p 15001 -z 15006 -u 1337 -g 1337 -i "*" -x 10.96.0.0/12 -b "*"\n' +
        '  interpose verify --native-nftables --network-namespace pod1 -i 10.96.0.0/12\n',
    ),
  );
  cmd.action(runVerify);
  return cmd;
}

async function runVerify(opts: IstioFlagValues): Promise<void> {
  const { run, ruleset, executor } = await istioFromCommandLine(opts, new SystemExecutor());
  const where = run.networkNamespace ? `network namespace ${run.networkNamespace}` : 'this network namespace';

  const r = await compareKernel(executor, ruleset, run);
  const interrupted = r.interrupted
    ? `an interrupted ${r.interrupted.action} (pid ${r.interrupted.pid}, started ${r.interrupted.started}) never finished in the kernel (${where}): ` +
      'one family may hold new rules and the other old ones; rerun the apply (or --cleanup-only), which undoes it first'
    : undefined;
  const json = opts.json === true;
  if (json) {
    const out = {
      ok: r.differences.length === 0 && !r.interrupted,
      backend: r.backend,
      ruleCount: r.ruleCount,
      differences: r.differences.map(differenceObject),
      warnings: r.warnings,
      interruptedApply: r.interrupted ?? null,
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    for (const w of r.warnings) warn(w);
    process.stdout.write(r.differences.map((d) => `${d}\n`).join(''));
  }
  if (interrupted) throw new InterruptedApplyError(interrupted);
  if (r.differences.length > 0) {
    throw new VerifyMismatchError(`${r.differences.length} difference(s) between the kernel (${where}) and this configuration (${r.backend} backend)`);
  }
  if (json) return;
  info(`the kernel (${where}) holds exactly what this configuration installs (${r.backend} backend, ${r.ruleCount} rules)`);
}
