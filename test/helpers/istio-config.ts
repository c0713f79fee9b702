/** Builds InterceptConfig/Ruleset from an istio-iptables argv, exactly as the CLI does. */
import { Command } from 'commander';
import { buildIstioOptions, type IstioOptions } from '../../src/config/istio-options.js';
import { resolveSettings } from '../../src/config/istio-flags.js';
import type { SystemLookups } from '../../src/config/system-lookups.js';
import { istioIptablesCommand } from '../../src/cli/istio-iptables.js';
import { fakeSystem } from './fake-system.js';

/** Parses argv with the real command definition (without running its action). */
export function parseArgv(argv: string[]): Record<string, string | boolean | undefined> {
  const cmd: Command = istioIptablesCommand().exitOverride();
  cmd.action(() => undefined);
  cmd.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  cmd.parse(argv, { from: 'user' });
  return cmd.opts();
}

export function optionsFrom(
  argv: string[],
  env: Record<string, string> = {},
  system: SystemLookups = fakeSystem(),
): Promise<IstioOptions> {
  return buildIstioOptions(resolveSettings(parseArgv(argv), env), system);
}

/** Istio's base flags from its own tests. */
export const ISTIO_BASE = ['-p', '15001', '-z', '15006', '-e', '15008', '-u', '1337', '-g', '1337', '-t', '1337', '-r', '133'];
