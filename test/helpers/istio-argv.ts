import { istioIptablesCommand } from '../../src/cli/istio-iptables.js';
import { resolveSettings } from '../../src/config/istio-flags.js';
import { buildIstioOptions, type IstioOptions } from '../../src/config/istio-options.js';
import type { SystemLookups } from '../../src/config/system-lookups.js';

/** Lookups that touch nothing: no users or groups by name, no resolv.conf, no IPv6. */
const NO_SYSTEM: SystemLookups = {
  lookupUser: async () => undefined,
  lookupGroup: async () => undefined,
  readResolvConf: async () => '',
  hasGlobalIPv6: async () => false,
  networkNamespaceExists: async () => true,
};

/**
 * Parses argv exactly as `interpose istio-iptables ARGV` would (its commander options, then
 * the flag/env resolution and validation), without applying anything. Throws what the
 * command would report for an unknown flag or a bad value.
 */
export async function parseIstioIptablesArgv(argv: readonly string[]): Promise<IstioOptions> {
  let opts: Record<string, string | boolean | undefined> = {};
  const cmd = istioIptablesCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .action((o: Record<string, string | boolean | undefined>) => {
      opts = o;
    });
  await cmd.parseAsync([...argv], { from: 'user' });
  return buildIstioOptions(resolveSettings(opts, {}), NO_SYSTEM);
}
