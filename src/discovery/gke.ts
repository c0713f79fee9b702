import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { field, parseJsonOutput, requireObject } from './json-output.js';
import { runCli, shown } from './run-cli.js';
import type { CidrFinding, DiscoveryOptions, DiscoveryResult } from './types.js';

/**
 * GKE: `gcloud container clusters describe NAME --zone|--region … --format json`.
 * Pods: clusterIpv4Cidr (ipAllocationPolicy.clusterIpv4CidrBlock on VPC-native clusters);
 * services: servicesIpv4Cidr. Dual-stack clusters (ipAllocationPolicy.stackType IPV4_IPV6) add
 * servicesIpv6CidrBlock and the subnet's IPv6 range (subnetIpv6CidrBlock), which pods draw from.
 */
export async function discoverGke(options: DiscoveryOptions): Promise<DiscoveryResult> {
  if (!options.cluster) {
    throw new DiscoveryError('--platform gke needs --cluster NAME', 'pass --cluster and --zone or --region; `gcloud container clusters list` shows them');
  }
  const args = ['container', 'clusters', 'describe', options.cluster];
  if (options.zone) args.push('--zone', options.zone);
  if (options.region) args.push('--region', options.region);
  if (options.project) args.push('--project', options.project);
  args.push('--format', 'json');
  const cmd = shown('gcloud', args);
  const stdout = await runCli('gcloud', args, {
    timeoutMs: options.timeoutMs,
    env: options.env,
    notFoundFix: `check --cluster ${options.cluster} and --zone/--region (and --project); \`gcloud container clusters list\` shows the clusters you can see`,
  });
  const json = parseJsonOutput(stdout, cmd);
  requireObject(json, cmd);

  const findings: CidrFinding[] = [];
  const notes: string[] = [];
  const policy = field(json, 'ipAllocationPolicy');
  const podV4 = field(json, 'clusterIpv4Cidr') ?? field(policy, 'clusterIpv4CidrBlock');
  const svcV4 = field(json, 'servicesIpv4Cidr') ?? field(policy, 'servicesIpv4CidrBlock');
  findings.push(...findingsFrom(podV4, 'pod', `${cmd}: clusterIpv4Cidr`));
  findings.push(...findingsFrom(svcV4, 'service', `${cmd}: servicesIpv4Cidr`));
  if (field(policy, 'stackType') === 'IPV4_IPV6') {
    findings.push(...findingsFrom(field(policy, 'subnetIpv6CidrBlock'), 'pod', `${cmd}: ipAllocationPolicy.subnetIpv6CidrBlock`));
    findings.push(...findingsFrom(field(policy, 'servicesIpv6CidrBlock'), 'service', `${cmd}: ipAllocationPolicy.servicesIpv6CidrBlock`));
    notes.push('dual-stack cluster: pods take IPv6 addresses from the subnet range, so all of it is listed');
  }
  if (findings.length === 0) {
    throw new DiscoveryError(
      `${cmd}: the output has neither clusterIpv4Cidr nor servicesIpv4Cidr`,
      'the output is malformed or from an unsupported gcloud version; run the command by hand to check',
    );
  }
  return { platform: 'gke', findings, notes };
}
