import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { field, parseJsonOutput } from './json-output.js';
import { runCli, shown } from './run-cli.js';
import type { DiscoveryOptions, DiscoveryResult } from './types.js';

/**
 * OpenShift 4: `oc get network.config.openshift.io cluster -o json`. status holds what the
 * network operator applied (clusterNetwork[].cidr, serviceNetwork[]); spec, what was asked for.
 * status is preferred and spec used while the operator has not reported yet.
 */
export async function discoverOpenshift(options: DiscoveryOptions): Promise<DiscoveryResult> {
  const args = [...(options.context ? ['--context', options.context] : []), 'get', 'network.config.openshift.io', 'cluster', '-o', 'json'];
  const cmd = shown('oc', args);
  const stdout = await runCli('oc', args, {
    timeoutMs: options.timeoutMs,
    env: options.env,
    notFoundFix: 'this does not look like an OpenShift 4 cluster (no network.config.openshift.io/cluster); check `oc whoami --show-server` or pick another --platform',
  });
  const json = parseJsonOutput(stdout, cmd);
  const notes: string[] = [];
  let from = 'status';
  let clusterNetwork = field(json, 'status', 'clusterNetwork');
  let serviceNetwork = field(json, 'status', 'serviceNetwork');
  if (!Array.isArray(clusterNetwork) || clusterNetwork.length === 0) {
    from = 'spec';
    clusterNetwork = field(json, 'spec', 'clusterNetwork');
    serviceNetwork = field(json, 'spec', 'serviceNetwork');
    notes.push('the network operator has not reported status yet: using the requested spec');
  }
  if (!Array.isArray(clusterNetwork) || !Array.isArray(serviceNetwork)) {
    throw new DiscoveryError(
      `${cmd}: expected ${from}.clusterNetwork and ${from}.serviceNetwork lists`,
      'the output is malformed or from an unsupported OpenShift version; run the command by hand to check',
    );
  }
  const findings = [
    ...findingsFrom(
      clusterNetwork.map((n) => field(n, 'cidr')),
      'pod',
      `${cmd}: ${from}.clusterNetwork[].cidr`,
    ),
    ...findingsFrom(serviceNetwork, 'service', `${cmd}: ${from}.serviceNetwork`),
  ];
  return { platform: 'openshift', findings, notes };
}
