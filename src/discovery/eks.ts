import { CommandFailedError, InterceptError } from '../errors/index.js';
import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { field, parseJsonOutput, requireObject } from './json-output.js';
import { kubectlJson } from './kubectl.js';
import { runCli, shown } from './run-cli.js';
import type { CidrFinding, DiscoveryOptions, DiscoveryResult } from './types.js';

/**
 * EKS: `aws eks describe-cluster --name NAME` gives the service range
 * (cluster.kubernetesNetworkConfig.serviceIpv4Cidr, or serviceIpv6Cidr when ipFamily is ipv6).
 * Pods have no range of their own with the Amazon VPC CNI: they take VPC addresses, so when
 * the cluster runs it, the VPC's associated CIDR blocks (`aws ec2 describe-vpcs`) are the pod
 * ranges. It runs either as the managed vpc-cni add-on (`aws eks list-addons`) or self-managed,
 * as the aws-node DaemonSet in kube-system — the default on clusters that never installed the
 * add-on. Both probes are optional: the service range needs neither, so a probe that cannot be
 * asked (no eks:ListAddons permission, an old CLI, no kube context for this cluster) becomes a
 * note saying why, and --vpc-cni settles the question without asking.
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

  const vpcCni = options.vpcCni ? '--vpc-cni' : await detectVpcCni(options, run, region, cluster, notes);
  if (vpcCni === undefined) return { platform: 'eks', findings, notes };

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
    `pods use VPC addresses (Amazon VPC CNI: ${vpcCni}), so the VPC's CIDR blocks are listed as pod ranges; they also cover nodes and anything else in ${vpcId}`,
  );
  return { platform: 'eks', findings, notes };
}

/**
 * Whether the cluster runs the Amazon VPC CNI, and how that was learnt, or undefined when it
 * does not or nobody could tell — `notes` then says which, and how to add the VPC ranges by
 * hand. The add-on list is asked first (one aws call); then the aws-node DaemonSet, which both
 * the add-on and the self-managed install run, so its absence is conclusive.
 */
async function detectVpcCni(
  options: DiscoveryOptions,
  run: (args: string[]) => Promise<string>,
  region: readonly string[],
  cluster: Record<string, unknown>,
  notes: string[],
): Promise<string | undefined> {
  const addonsArgs = ['eks', 'list-addons', '--cluster-name', options.cluster!, ...region, '--output', 'json'];
  const addonsCmd = shown('aws', addonsArgs);
  let addonAsked = true;
  try {
    const addons = field(parseJsonOutput(await run(addonsArgs), addonsCmd), 'addons');
    if (Array.isArray(addons) && addons.includes('vpc-cni')) return 'the vpc-cni add-on';
  } catch (e) {
    addonAsked = false;
    notes.push(`could not ask whether the vpc-cni add-on is installed, so the aws-node DaemonSet decides (${addonsCmd}: ${failure(e)})`);
  }

  const daemonSet = await awsNodeDaemonSet(options, cluster);
  if (daemonSet.found) return addonAsked ? `self-managed: ${daemonSet.found}` : daemonSet.found;
  if (daemonSet.absent) {
    notes.push(`no pod range is listed: the cluster runs no Amazon VPC CNI (${daemonSet.absent}); pass the pod range of its CNI with -i`);
  } else {
    const addon = addonAsked ? 'the vpc-cni add-on is not installed as an EKS add-on, and ' : '';
    notes.push(`no pod range is listed: ${addon}${daemonSet.unknown}; if the cluster runs the Amazon VPC CNI, rerun with --vpc-cni to add the VPC CIDRs as pod ranges`);
  }
  return undefined;
}

/**
 * Looks for the self-managed VPC CNI (the aws-node DaemonSet in kube-system) through kubectl,
 * in --context or the current context — but only when that context's API server is this
 * cluster's endpoint: another cluster's answer would be wrong. Says what it found, that it is
 * absent, or why it could not tell.
 */
async function awsNodeDaemonSet(options: DiscoveryOptions, cluster: Record<string, unknown>): Promise<{ found?: string; absent?: string; unknown?: string }> {
  const endpoint = typeof cluster.endpoint === 'string' ? cluster.endpoint : undefined;
  let context: string;
  try {
    const view = await kubectlJson(options, ['config', 'view', '--minify']);
    context = String(options.context ?? field(view.json, 'current-context') ?? '');
    const server = String(field(view.json, 'clusters', 0, 'cluster', 'server') ?? '');
    if (endpoint === undefined || !sameEndpoint(server, endpoint)) {
      return { unknown: `could not look for the self-managed VPC CNI (the aws-node DaemonSet): kube context ${context || '(none)'} is ${server ? `for ${server}` : 'for no API server'}, not this cluster's endpoint ${endpoint ?? '(not in describe-cluster)'} (pass --context, or run \`aws eks update-kubeconfig --name ${options.cluster}\`)` };
    }
  } catch (e) {
    return { unknown: `could not look for the self-managed VPC CNI (the aws-node DaemonSet) without a kube context for this cluster (${failure(e)})` };
  }
  try {
    const { json, cmd } = await kubectlJson(options, ['get', 'daemonset', 'aws-node', '--namespace', 'kube-system']);
    const image = field(json, 'spec', 'template', 'spec', 'containers', 0, 'image');
    return { found: `the aws-node DaemonSet runs in kube-system (${cmd}${typeof image === 'string' ? `: ${image}` : ''})` };
  } catch (e) {
    if (e instanceof DiscoveryError && /^kubectl: not found/.test(e.message)) {
      return { absent: `no aws-node DaemonSet in kube-system (context ${context})` };
    }
    return { unknown: `could not look for the self-managed VPC CNI (the aws-node DaemonSet in kube-system, context ${context}): ${failure(e)}` };
  }
}

/** API server URLs compared as kubeconfig and describe-cluster write them (case, trailing slash). */
function sameEndpoint(a: string, b: string): boolean {
  const norm = (u: string) => u.trim().toLowerCase().replace(/\/+$/, '');
  return a !== '' && norm(a) === norm(b);
}

/**
 * One line saying why a CLI call failed: the stderr line that names the error (an old aws CLI
 * prints its usage first), else the first one; or the error's own first line.
 */
function failure(e: unknown): string {
  if (e instanceof CommandFailedError) {
    const lines = e.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const line = lines.find((l) => /error|denied|invalid|not authorized/i.test(l)) ?? lines[0] ?? '';
    return `${line.length > 200 ? `${line.slice(0, 200)}…` : line || 'no message'} (exit ${e.commandExitCode ?? 'none'})`;
  }
  if (e instanceof InterceptError) return e.message.split('\n')[0]!;
  throw e;
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
