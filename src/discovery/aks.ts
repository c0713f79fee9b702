import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { field, parseJsonOutput, requireObject } from './json-output.js';
import { runCli, shown } from './run-cli.js';
import type { CidrFinding, DiscoveryOptions, DiscoveryResult } from './types.js';

/**
 * AKS: `az aks show --resource-group G --name N` gives networkProfile.podCidr(s) and
 * serviceCidr(s). With kubenet or Azure CNI Overlay, pods use podCidr. With classic Azure CNI
 * (networkPlugin "azure", no overlay) pods take VNet addresses and podCidr is null: the pod
 * subnet (agentPoolProfiles[].podSubnetId, `az network vnet subnet show`) or else the whole VNet
 * of the node subnet (`az network vnet show`, or the managed VNet in the node resource group via
 * `az network vnet list`) is the pod range.
 */
export async function discoverAks(options: DiscoveryOptions): Promise<DiscoveryResult> {
  if (!options.cluster || !options.resourceGroup) {
    throw new DiscoveryError(
      '--platform aks needs --cluster NAME and --resource-group GROUP',
      '`az aks list --output table` shows both',
    );
  }
  const run = (args: string[], notFoundFix: string) =>
    runCli('az', args, { timeoutMs: options.timeoutMs, env: options.env, notFoundFix });

  const showArgs = ['aks', 'show', '--resource-group', options.resourceGroup, '--name', options.cluster, '--output', 'json'];
  const showCmd = shown('az', showArgs);
  const aks = parseJsonOutput(
    await run(showArgs, `check --cluster ${options.cluster} and --resource-group ${options.resourceGroup}; \`az aks list --output table\` shows them`),
    showCmd,
  );
  const net = requireObject(aks, showCmd, 'networkProfile');

  const findings: CidrFinding[] = [];
  const notes: string[] = [];
  const podCidrs = Array.isArray(net.podCidrs) && net.podCidrs.length ? net.podCidrs : net.podCidr;
  const serviceCidrs = Array.isArray(net.serviceCidrs) && net.serviceCidrs.length ? net.serviceCidrs : net.serviceCidr;
  findings.push(...findingsFrom(podCidrs, 'pod', `${showCmd}: networkProfile.${Array.isArray(net.podCidrs) ? 'podCidrs' : 'podCidr'}`));
  findings.push(
    ...findingsFrom(serviceCidrs, 'service', `${showCmd}: networkProfile.${Array.isArray(net.serviceCidrs) ? 'serviceCidrs' : 'serviceCidr'}`),
  );

  const azureCni = net.networkPlugin === 'azure' && net.networkPluginMode !== 'overlay';
  if (azureCni) {
    findings.push(...(await vnetRanges(aks, options, run, notes)));
  }
  if (findings.length === 0) {
    throw new DiscoveryError(
      `${showCmd}: networkProfile has no pod or service CIDRs`,
      'the output is malformed or from an unsupported az version; run the command by hand to check',
    );
  }
  return { platform: 'aks', findings, notes };
}

type Run = (args: string[], notFoundFix: string) => Promise<string>;

/** The address ranges classic Azure CNI pods are given, with a note saying which source. */
async function vnetRanges(aks: unknown, options: DiscoveryOptions, run: Run, notes: string[]): Promise<CidrFinding[]> {
  const pools = field(aks, 'agentPoolProfiles');
  const poolList = Array.isArray(pools) ? pools : [];
  const ids = (key: string) => [...new Set(poolList.map((p) => field(p, key)).filter((v): v is string => typeof v === 'string' && v !== ''))];

  const podSubnets = ids('podSubnetId');
  if (podSubnets.length) {
    const out: CidrFinding[] = [];
    for (const id of podSubnets) {
      const args = ['network', 'vnet', 'subnet', 'show', '--ids', id, '--output', 'json'];
      const cmd = shown('az', args);
      const subnet = requireObject(parseJsonOutput(await run(args, `the pod subnet ${id} is gone or not visible to this account`), cmd), cmd);
      const prefixes = Array.isArray(subnet.addressPrefixes) && subnet.addressPrefixes.length ? subnet.addressPrefixes : subnet.addressPrefix;
      out.push(...findingsFrom(prefixes, 'pod', `${cmd}: addressPrefix(es)`));
    }
    notes.push('Azure CNI with dedicated pod subnets: pods take addresses from those subnets, listed as pod ranges');
    return out;
  }

  const nodeSubnets = ids('vnetSubnetId');
  if (nodeSubnets.length) {
    const vnets = [...new Set(nodeSubnets.map((id) => id.replace(/\/subnets\/[^/]+$/i, '')))];
    const out: CidrFinding[] = [];
    for (const id of vnets) {
      const args = ['network', 'vnet', 'show', '--ids', id, '--output', 'json'];
      const cmd = shown('az', args);
      const vnet = parseJsonOutput(await run(args, `the VNet ${id} is gone or not visible to this account`), cmd);
      out.push(...findingsFrom(field(vnet, 'addressSpace', 'addressPrefixes'), 'pod', `${cmd}: addressSpace.addressPrefixes`));
    }
    notes.push('Azure CNI: pods take addresses from the cluster VNet, so its address prefixes are listed as pod ranges (they also cover nodes)');
    return out;
  }

  const nodeGroup = field(aks, 'nodeResourceGroup');
  if (typeof nodeGroup !== 'string' || nodeGroup === '') {
    throw new DiscoveryError('az aks show: Azure CNI cluster without vnetSubnetId or nodeResourceGroup', 'run `az aks show` by hand to check the cluster');
  }
  const args = ['network', 'vnet', 'list', '--resource-group', nodeGroup, '--output', 'json'];
  const cmd = shown('az', args);
  const list = parseJsonOutput(await run(args, `the node resource group ${nodeGroup} is not visible to this account`), cmd);
  const out: CidrFinding[] = [];
  for (const vnet of Array.isArray(list) ? list : []) {
    out.push(...findingsFrom(field(vnet, 'addressSpace', 'addressPrefixes'), 'pod', `${cmd}: [].addressSpace.addressPrefixes`));
  }
  notes.push(`Azure CNI with the managed VNet in ${nodeGroup}: its address prefixes are listed as pod ranges (they also cover nodes)`);
  return out;
}
