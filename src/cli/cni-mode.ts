/**
 * --cni-mode / $CNI_MODE, as istio-iptables defines it (tools/istio-iptables/pkg/cmd/root.go,
 * dependencies/implementation_linux.go): the rules are applied from the node's filesystem into
 * the pod's network namespace, as istio-cni does. The node-wide xtables lock is then both useless
 * and harmful (contention with kube-proxy), so legacy iptables lock the pod's namespace file
 * instead: $XTABLES_LOCKFILE, which iptables >= 1.8.6 reads (istio bind-mounts the file over
 * /run/xtables.lock for older ones; interpose does not, they keep the node-wide lock).
 * iptables-nft takes no lock, so nothing changes for it.
 */
import { namespacePath } from '../kernel/executor.js';
import type { RunOptions } from '../config/intercept-config.js';

/** Sets up the environment the iptables commands inherit; returns what to tell the user. */
export function applyCniMode(
  run: RunOptions,
  env: NodeJS.ProcessEnv = process.env,
): { level: 'warn' | 'debug'; message: string } | undefined {
  if (!run.cniMode) return undefined;
  if (run.networkNamespace === undefined) {
    return { level: 'warn', message: '--cni-mode has no effect without --network-namespace (it scopes the xtables lock to the pod namespace it names)' };
  }
  env.XTABLES_LOCKFILE = namespacePath(run.networkNamespace);
  return { level: 'debug', message: `--cni-mode: legacy iptables lock ${env.XTABLES_LOCKFILE} (XTABLES_LOCKFILE), not /run/xtables.lock` };
}
