/**
 * `interpose istio-iptables`: istio-init's command line, kernel-identical rules.
 * Flags, env vars and defaults come from src/config/istio-flags.ts.
 */
import { istioFromCommandLine, type IstioFlagValues } from './cli-settings.js';
import { Command } from 'commander';
import type { InterceptConfig, RunOptions } from '../config/intercept-config.js';
import { ISTIO_ENV_ONLY } from '../config/istio-flags.js';
import { applyRuleset, cleanupRules, type ApplyResult } from '../kernel/backend.js';
import { SystemExecutor, type Executor } from '../kernel/executor.js';
import { NFT_COMMIT_ENV } from '../kernel/nft-binary.linux.js';
import { openBackend, planDryRun } from '../kernel/open-backend.linux.js';
import { runRedirectValidation } from '../kernel/run-validation.linux.js';
import type { Ruleset } from '../rules/ir.js';
import { helpText } from './help-layout.js';
import { addIstioFlagOptions } from './istio-flag-option.js';
import { configureLogging, debug, info, warn } from './log.js';
import { logFlagsFor, logOptions, logSettingsFromOptions } from './log-flags.js';
import { applyCniMode } from './cni-mode.js';

export function istioIptablesCommand(): Command {
  const cmd = new Command('istio-iptables')
    .summary('install istio-init compatible redirect rules (iptables, or nftables with --native-nftables)')
    .description(
      'Install istio-init compatible traffic redirection rules (iptables, or nftables with --native-nftables), ' +
        'in this or a named network namespace. ' +
        'Every flag can also come from its environment variable; a flag wins over its variable.',
    )
    .allowExcessArguments(false);
  addIstioFlagOptions(cmd, 'apply');
  // pilot-agent's logging flags, which Istio's injector passes (see log-flags.ts).
  for (const option of logOptions()) cmd.addOption(option);
  cmd.addHelpText(
    'after',
    helpText(
      '\nEnvironment-only settings (as in istio-iptables):\n' +
        ISTIO_ENV_ONLY.map((s) => `  ${s.env[0]!.padEnd(38)} ${s.help}${s.defaultValue ? ` (default ${s.defaultValue})` : ''}`).join('\n') +
        '\n\ninterpose only:\n' +
        `  ${NFT_COMMIT_ENV.padEnd(38)} how --native-nftables commits: netlink (a batch sent from this process; the default ` +
        'when the native addon is built) or nft (through `nft -f -`)\n' +
        '\nExit codes: 0 applied or already in place; 1 bad input, drift (see --reconcile) or a failed apply ' +
        '(rolled back); 126 --run-validation failed.\n' +
        '\nExamples:\n' +
        '  interpose istio-iptables -p 15001 -z 15006 -u 1337 -g 1337 \\\n' +
        '      -i "*" -x 10.96.0.0/12 -b "*" -d 15090,15021\n' +
        '  interpose istio-iptables -i 203.0.113.0/24 --dry-run\n' +
        '  interpose istio-iptables --network-namespace pod1 --cleanup-only\n',
    ),
  );
  cmd.action(runIstioIptables);
  return cmd;
}

async function runIstioIptables(opts: IstioFlagValues): Promise<void> {
  const logging = logSettingsFromOptions(opts);
  configureLogging(logging);
  const system = new SystemExecutor();
  const { config, run, warnings, ruleset, executor } = await istioFromCommandLine(opts, system);
  for (const w of warnings) warn(w);
  const cni = applyCniMode(run);
  if (cni) (cni.level === 'warn' ? warn : debug)(cni.message);

  if (run.dryRun) {
    process.stdout.write(await dryRunText(executor, ruleset, config, run));
    return;
  }
  /** `--run-validation` after whatever was applied (not after --cleanup-only). */
  const validate = async () => {
    if (!run.runValidation) return;
    info(`validating the redirect as uid ${config.proxyUids[0]} (probe port ${run.probePort}, timeout ${run.probeTimeoutMs} ms)`);
    await runRedirectValidation({
      networkNamespace: run.networkNamespace,
      uid: config.proxyUids[0]!,
      gid: config.proxyGids[0]!,
      outboundPort: config.proxyPort,
      inboundPort: config.inboundCapturePort,
      probePort: run.probePort,
      timeoutMs: run.probeTimeoutMs,
      ipv6: ruleset.families.some((f) => f.family === 6),
      executor: system,
      childFlags: logFlagsFor(logging),
      log: { info, warn },
    });
    info('redirect validated: a probe connection arrived redirected with its original destination');
  };
  if (run.skipRuleApply) {
    info('--skip-rule-apply: no rules applied');
    await validate();
    return;
  }

  const backend = await openBackend(executor, run);
  const where = run.networkNamespace ? `network namespace ${run.networkNamespace}` : 'the current network namespace';
  if (run.cleanupOnly) {
    info(`backend ${backend.name}; cleaning up in ${where}`);
    const r = await cleanupRules(backend, ruleset, routesOf(config));
    if (r.recovered) warn(r.recovered);
    info(`removed ${r.removes}` + (r.removedRoutes.length ? `, routes: ${r.removedRoutes.join(', ')}` : ''));
    return;
  }
  const families = ruleset.families.map((f) => (f.family === 4 ? 'IPv4' : 'IPv6')).join('+');
  info(`backend ${backend.name}; applying ${families} rules in ${where}`);
  reportApply(await applyRuleset(backend, ruleset, { reconcile: run.reconcile, forceApply: run.forceApply }));
  await validate();
}

const routesOf = (config: InterceptConfig) => ({ mark: config.tproxyMark, table: config.tproxyRouteTable });

/** `--dry-run`: the transaction a real run would commit (kernel/open-backend.linux.ts). */
async function dryRunText(executor: Executor, ruleset: Ruleset, config: InterceptConfig, run: RunOptions): Promise<string> {
  const options = { reconcile: run.reconcile, forceApply: run.forceApply };
  const r = await planDryRun(executor, run, ruleset, options, run.cleanupOnly ? routesOf(config) : undefined);
  if (r.unreadable !== undefined) {
    warn(`--dry-run: cannot read the rules the kernel holds (${r.unreadable}); showing the transaction for a kernel that holds none of interpose's`);
  }
  return r.text;
}

function reportApply(result: ApplyResult): void {
  if (result.recovered) warn(result.recovered);
  switch (result.action) {
    case 'installed':
      info('rules installed');
      break;
    case 'unchanged':
      info('rules already in place; nothing changed');
      break;
    case 'reapplied':
      info('rules were already in place; reapplied (--force-apply)');
      break;
    case 'replaced':
      info(`replaced existing rules (--reconcile); differences were:\n  ${result.differences.join('\n  ')}`);
      break;
  }
}
