import { Command } from 'commander';
import { ValidationError } from '../errors/index.js';
import { discover } from '../discovery/discover.js';
import { FORMATS, formatDiscovery, type Format } from '../discovery/format.js';
import { PLATFORMS, type Platform } from '../discovery/types.js';

interface DiscoverFlags {
  platform: string;
  cluster?: string;
  zone?: string;
  region?: string;
  project?: string;
  resourceGroup?: string;
  context?: string;
  config?: string;
  vpcCni?: boolean;
  format: string;
  timeout: string;
}

/** `interpose discover`: a cluster's pod and service CIDRs and how to intercept only them. */
export function discoverCommand(): Command {
  return new Command('discover')
    .summary("find a cluster's pod and service CIDRs (Istio includeIPRanges)")
    .description(
      "find a cluster's pod and service CIDRs and print them as Istio's includeIPRanges " +
        '(Helm value, pod annotation) and as interpose -i',
    )
    .option('--platform <name>', `auto | ${PLATFORMS.join(' | ')}`, 'auto')
    .option('--cluster <name>', 'cluster name (gke, eks, aks, iks; kind: context kind-NAME; minikube: the profile)')
    .option('--zone <zone>', 'GKE zone of a zonal cluster')
    .option('--region <region>', 'GKE region of a regional cluster, or the AWS region (eks)')
    .option('--project <id>', 'GCP project (gke)')
    .option('--resource-group <group>', 'Azure resource group (aks)')
    .option('--context <name>', 'kube context (auto, kubeadm, kind, k3s, minikube, docker-desktop, openshift; eks: where to look for the aws-node DaemonSet)')
    .option('--config <file>', 'ICP cluster/config.yaml, or the k3s config.yaml (default /etc/rancher/k3s/config.yaml)')
    .option('--vpc-cni', 'eks: the Amazon VPC CNI is in use: list the VPC CIDRs as pod ranges without asking (the add-on list or the aws-node DaemonSet)')
    .option('--format <format>', FORMATS.join(' | '), 'text')
    .option('--timeout <seconds>', 'how long each platform CLI may take', '30')
    .action(async (flags: DiscoverFlags) => {
      const platform = flags.platform as Platform | 'auto';
      if (platform !== 'auto' && !PLATFORMS.includes(platform)) {
        throw new ValidationError('--platform', flags.platform, `one of auto, ${PLATFORMS.join(', ')}`);
      }
      if (!FORMATS.includes(flags.format as Format)) {
        throw new ValidationError('--format', flags.format, `one of ${FORMATS.join(', ')}`);
      }
      const seconds = Number(flags.timeout);
      if (!/^\d+(\.\d+)?$/.test(flags.timeout) || !(seconds > 0) || seconds > 3600) {
        throw new ValidationError('--timeout', flags.timeout, 'a number of seconds greater than 0 and at most 3600');
      }
      if (flags.zone && flags.region && (platform === 'gke' || platform === 'auto')) {
        throw new ValidationError('--zone/--region', `${flags.zone} and ${flags.region}`, 'only one: --zone for a zonal GKE cluster, --region for a regional one');
      }
      const result = await discover(platform, {
        cluster: flags.cluster,
        zone: flags.zone,
        region: flags.region,
        project: flags.project,
        resourceGroup: flags.resourceGroup,
        context: flags.context,
        configFile: flags.config,
        vpcCni: flags.vpcCni,
        timeoutMs: Math.round(seconds * 1000),
      });
      process.stdout.write(formatDiscovery(result, flags.format as Format));
    });
}
