import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { field, parseJsonOutput, requireObject } from './json-output.js';
import { runCli, shown } from './run-cli.js';
import type { CidrFinding, DiscoveryOptions, DiscoveryResult } from './types.js';

/**
 * EKS: `aws eks describe-cluster --name NAME` gives the service range
 * (cluster.kubernetesNetworkConfig.serviceIpv4Cidr, or serviceIpv6Cidr when ipFamily is ipv6).
 * Pods have no range of their own with the Amazon VPC CNI: they take VPC addresses, so when the
 * vpc-cni add-on is installed (`aws eks list-addons`) or --vpc-cni says it is self-managed, the
 * VPC's associated CIDR blocks (`aws ec2 describe-vpcs`) are the pod ranges.
 */
export async function discoverEks(options: DiscoveryOptions): Promise<DiscoveryResult> {
  if (!options.cluster) {
    throw new DiscoveryError('--platform eks needs --cluster NAME', 'pass --cluster (and --region); `aws eks list-clusters` shows them');
  }
  const region = options.region ? ['--region', options.region] : [];
  const run = (args: string[]) =>
    runCli('aws', args, {
      timeoutMs: options.timeoutMs,
      env: options.env,
      notFoundFix: `check --cluster ${options.cluster} and --region; \`aws eks list-clusters${options.region ? ` --region ${options.region}` : ''}\` shows the clusters you can see`,
    });

  const describeArgs = ['eks', 'describe-cluster', '--name', options.cluster, ...region, '--output', 'json'];
  const describeCmd = shown('aws', describeArgs);
  const described = parseJsonOutput(await run(describeArgs), describeCmd);
  const cluster = requireObject(described, describeCmd, 'cluster');
  const net = requireObject(described, describeCmd, 'cluster', 'kubernetesNetworkConfig');
  const ipFamily = String(net.ipFamily ?? 'ipv4');

  const findings: CidrFinding[] = [];
  const notes: string[] = [];
  findings.push(...findingsFrom(net.serviceIpv4Cidr, 'service', `${describeCmd}: cluster.kubernetesNetworkConfig.serviceIpv4Cidr`));
  findings.push(...findingsFrom(net.serviceIpv6Cidr, 'service', `${describeCmd}: cluster.kubernetesNetworkConfig.serviceIpv6Cidr`));
  if (findings.length === 0) {
    throw new DiscoveryError(
      `${describeCmd}: kubernetesNetworkConfig has no serviceIpv4Cidr or serviceIpv6Cidr`,
      'the output is malformed or from an unsupported aws CLI version; run the command by hand to check',
    );
  }

  const addonsArgs = ['eks', 'list-addons', '--cluster-name', options.cluster, ...region, '--output', 'json'];
  const addonsCmd = shown('aws', addonsArgs);
  const addons = field(parseJsonOutput(await run(addonsArgs), addonsCmd), 'addons');
  const vpcCniAddon = Array.isArray(addons) && addons.includes('vpc-cni');
  if (!vpcCniAddon && !options.vpcCni) {
    notes.push(
      'the vpc-cni add-on is not installed as an EKS add-on, so no pod range is listed; if the cluster runs the self-managed Amazon VPC CNI (the aws-node DaemonSet), rerun with --vpc-cni to add the VPC CIDRs',
    );
    return { platform: 'eks', findings, notes };
  }

  const vpcId = field(cluster, 'resourcesVpcConfig', 'vpcId');
  if (typeof vpcId !== 'string' || vpcId === '') {
    throw new DiscoveryError(`${describeCmd}: cluster.resourcesVpcConfig.vpcId is missing`, 'run the command by hand to check the cluster');
  }
  const vpcArgs = ['ec2', 'describe-vpcs', '--vpc-ids', vpcId, ...region, '--output', 'json'];
  const vpcCmd = shown('aws', vpcArgs);
  const vpc = requireObject(parseJsonOutput(await run(vpcArgs), vpcCmd), vpcCmd, 'Vpcs', 0);
  const v4 = associated(vpc.CidrBlockAssociationSet, 'CidrBlock', 'CidrBlockState');
  findings.push(...findingsFrom(v4.length ? v4 : vpc.CidrBlock, 'pod', `${vpcCmd}: Vpcs[0].CidrBlockAssociationSet (VPC CNI pods use VPC addresses)`));
  if (ipFamily === 'ipv6') {
    const v6 = associated(vpc.Ipv6CidrBlockAssociationSet, 'Ipv6CidrBlock', 'Ipv6CidrBlockState');
    findings.push(...findingsFrom(v6, 'pod', `${vpcCmd}: Vpcs[0].Ipv6CidrBlockAssociationSet (IPv6 pods use VPC addresses)`));
  }
  notes.push(
    `pods use VPC addresses (Amazon VPC CNI${vpcCniAddon ? ' add-on' : ', --vpc-cni'}), so the VPC's CIDR blocks are listed as pod ranges; they also cover nodes and anything else in ${vpcId}`,
  );
  return { platform: 'eks', findings, notes };
}

/** The CIDRs of an association set whose state is "associated" (disassociated ones are gone). */
function associated(set: unknown, key: string, stateKey: string): string[] {
  if (!Array.isArray(set)) return [];
  return set
    .filter((a) => {
      const state = field(a, stateKey, 'State');
      return state === undefined || state === 'associated';
    })
    .map((a) => field(a, key))
    .filter((c): c is string => typeof c === 'string');
}
