/**
 * What every command that takes istio-iptables' flags starts from: flags and environment
 * variables → raw settings (with `@FILE` lists read) → validated options, the ruleset they
 * describe, and the executor for the network namespace they name.
 */
import { resolveSettings, type RawSettings } from '../config/istio-flags.js';
import { readBoundedFile } from '../config/bounded-file.js';
import { expandListFiles } from '../config/list-files.js';
import { buildIstioOptions, type IstioOptions } from '../config/istio-options.js';
import type { SystemLookups } from '../config/system-lookups.js';
import { NamespacedExecutor, type Executor, type SystemExecutor } from '../kernel/executor.js';
import { LinuxSystemLookups } from '../kernel/system-lookups.linux.js';
import type { Ruleset } from '../rules/ir.js';
import { buildIstioRuleset } from '../rules/istio-ruleset.js';

/** The option values commander parsed for a command that takes istio-iptables' flags. */
export type IstioFlagValues = Readonly<Record<string, string | boolean | undefined>>;

export function settingsFromCommandLine(opts: IstioFlagValues): RawSettings {
  return expandListFiles(resolveSettings(opts, process.env), readBoundedFile);
}

/** Runs commands in network namespace NS (a name or a /proc/PID/ns/net path), or in this one when none. */
export function executorIn(system: SystemExecutor, ns: string | undefined): Executor {
  return ns ? new NamespacedExecutor(system, ns) : system;
}

export interface IstioCommandLine extends IstioOptions {
  readonly ruleset: Ruleset;
  /** Where the rules go: the namespace --network-namespace names, else this one. */
  readonly executor: Executor;
}

/** The options, ruleset and executor the flags describe; bad input is a ValidationError. */
export async function istioFromCommandLine(
  opts: IstioFlagValues,
  system: SystemExecutor,
  lookups: SystemLookups = new LinuxSystemLookups(system),
): Promise<IstioCommandLine> {
  const options = await buildIstioOptions(settingsFromCommandLine(opts), lookups);
  return { ...options, ruleset: buildIstioRuleset(options.config), executor: executorIn(system, options.run.networkNamespace) };
}
