import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { parseJsonOutput, requireObject } from './json-output.js';
import { runCli, shown } from './run-cli.js';
import type { DiscoveryOptions, DiscoveryResult } from './types.js';

/** IBM Cloud Kubernetes Service: `ibmcloud ks cluster get --cluster NAME --output json` (podSubnet, serviceSubnet). */
export async function discoverIks(options: DiscoveryOptions): Promise<DiscoveryResult> {
  if (!options.cluster) {
    throw new DiscoveryError('--platform iks needs --cluster NAME', '`ibmcloud ks cluster ls` shows the clusters you can see');
  }
  const args = ['ks', 'cluster', 'get', '--cluster', options.cluster, '--output', 'json'];
  const cmd = shown('ibmcloud', args);
  const stdout = await runCli('ibmcloud', args, {
    timeoutMs: options.timeoutMs,
    env: options.env,
    notFoundFix: `check --cluster ${options.cluster}; \`ibmcloud ks cluster ls\` shows the clusters in the targeted account and region`,
  });
  const cluster = requireObject(parseJsonOutput(stdout, cmd), cmd);
  const findings = [
    ...findingsFrom(cluster.podSubnet, 'pod', `${cmd}: podSubnet`),
    ...findingsFrom(cluster.serviceSubnet, 'service', `${cmd}: serviceSubnet`),
  ];
  if (findings.length === 0) {
    throw new DiscoveryError(`${cmd}: the output has neither podSubnet nor serviceSubnet`, 'run the command by hand to check; an old ks plug-in may need `ibmcloud plugin update container-service`');
  }
  return { platform: 'iks', findings, notes: [] };
}
