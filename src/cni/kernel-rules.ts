/**
 * The CNI plugin's one door to the rule machinery: istio-iptables flags + a pod's network
 * namespace → install, remove or compare, exactly as `interpose istio-iptables
 * --network-namespace NETNS --cni-mode FLAGS` would (same settings → options → ruleset →
 * backend path). Everything the plugin needs from src/kernel and src/rules goes through here,
 * so a change of that API touches this file only.
 */
import { Command, CommanderError } from 'commander';
import { applyCniMode } from '../cli/cni-mode.js';
import { istioFlagOption } from '../cli/istio-flag-option.js';
import type { InterceptConfig } from '../config/intercept-config.js';
import { ISTIO_FLAGS, resolveSettings } from '../config/istio-flags.js';
import { buildIstioOptions, type IstioOptions } from '../config/istio-options.js';
import { InterceptError } from '../errors/intercept-error.js';
import { applyRuleset, cleanupRules, type ApplyAction } from '../kernel/backend.js';
import { NamespacedExecutor, SystemExecutor } from '../kernel/executor.js';
import { findNft } from '../kernel/nft-binary.linux.js';
import { NftablesBackend, chooseNftTransaction } from '../kernel/nftables-backend.linux.js';
import { NetlinkTransaction } from '../kernel/nft-transaction.linux.js';
import { openBackend } from '../kernel/open-backend.linux.js';
import { LinuxSystemLookups } from '../kernel/system-lookups.linux.js';
import type { SystemLookups } from '../config/system-lookups.js';
import { compareKernel } from '../kernel/verify-kernel.linux.js';
import { buildIstioRuleset } from '../rules/istio-ruleset.js';

/** The pod's rules: the istio-iptables flags and where they go. */
export interface PodRules {
  readonly argv: readonly string[];
  readonly netns: string;
  readonly nativeNftables: boolean;
  /**
   * Whether the pod has a global IPv6 address (IPv6 rules too), as ADD found it in prevResult's
   * IPs; recorded so DEL and CHECK build the same ruleset. Undefined: ask the namespace, as
   * istio-iptables does (`ip -6 addr show scope global`).
   */
  readonly ipv6?: boolean;
}

/** The machine's lookups, except the namespace's IPv6 when ADD already knows it. */
function lookupsFor(rules: PodRules, system: SystemExecutor): SystemLookups {
  const linux = new LinuxSystemLookups(system);
  if (rules.ipv6 === undefined) return linux;
  const ipv6 = rules.ipv6;
  return {
    lookupUser: (n) => linux.lookupUser(n),
    lookupGroup: (n) => linux.lookupGroup(n),
    readResolvConf: (ns) => linux.readResolvConf(ns),
    hasGlobalIPv6: async () => ipv6,
    networkNamespaceExists: (ns) => linux.networkNamespaceExists(ns),
  };
}

/** The full istio-iptables command line these rules are, for logs and for reproducing by hand. */
export function commandLine(rules: PodRules): string[] {
  return [...rules.argv, '--network-namespace', rules.netns, '--cni-mode', ...(rules.nativeNftables ? ['--native-nftables'] : [])];
}

/**
 * Flags → validated options, as the istio-iptables command reads them, except that this
 * process's environment is not consulted: the runtime's CNI_* variables are not istio-init's,
 * and a stray ISTIO_* variable on the node must not change every pod's rules.
 */
async function optionsFor(rules: PodRules, system: SystemExecutor): Promise<IstioOptions> {
  const cmd = new Command('istio-iptables').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  for (const spec of ISTIO_FLAGS) cmd.addOption(istioFlagOption(spec));
  try {
    cmd.parse(commandLine(rules), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new InterceptError(`the pod's flags do not parse: ${err.message}`);
    throw err;
  }
  const settings = resolveSettings(cmd.opts(), {});
  return buildIstioOptions(settings, lookupsFor(rules, system));
}

const routesOf = (config: InterceptConfig) => ({ mark: config.tproxyMark, table: config.tproxyRouteTable });

async function open(rules: PodRules) {
  const system = new SystemExecutor();
  const { config, run } = await optionsFor(rules, system);
  applyCniMode(run);
  const executor = new NamespacedExecutor(system, rules.netns);
  return { config, run, executor, ruleset: buildIstioRuleset(config) };
}

/**
 * The backend, as istio-iptables opens it, except that with --native-nftables and the netlink
 * commit (the addon loads) the nft tool is not probed: nothing on that path runs nft, and the
 * probe was two processes (`nft --version`, `nft list tables`) on every ADD. A kernel without
 * nf_tables then fails the commit itself, with the errno.
 */
async function podBackend(executor: NamespacedExecutor, run: Parameters<typeof openBackend>[1]) {
  if (run.nativeNftables) {
    const transaction = chooseNftTransaction(executor);
    if (transaction instanceof NetlinkTransaction) return new NftablesBackend(executor, {}, findNft(), transaction);
  }
  return openBackend(executor, run);
}

/** Installs (or finds in place) the pod's rules; replaces rules of ours that differ. */
export async function installRules(rules: PodRules): Promise<{ action: ApplyAction; backend: string }> {
  const { run, executor, ruleset } = await open(rules);
  const backend = await podBackend(executor, run);
  const result = await applyRuleset(backend, ruleset, { reconcile: true, forceApply: false });
  return { action: result.action, backend: backend.name };
}

/** Removes every rule of ours from the namespace (whatever is left of them). */
export async function removeRules(rules: PodRules): Promise<string> {
  const { config, run, executor, ruleset } = await open(rules);
  const backend = await podBackend(executor, run);
  const r = await cleanupRules(backend, ruleset, routesOf(config));
  return r.removes + (r.removedRoutes.length ? `, routes: ${r.removedRoutes.join(', ')}` : '');
}

/** How the namespace differs from the pod's rules; empty when it holds exactly them. */
export async function compareRules(rules: PodRules): Promise<readonly string[]> {
  const { run, executor, ruleset } = await open(rules);
  return (await compareKernel(executor, ruleset, run)).differences;
}
