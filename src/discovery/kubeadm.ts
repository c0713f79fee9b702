import { yamlDocument } from '../config/yaml-input.js';
import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { kubectlJson } from './kubectl.js';
import { field } from './json-output.js';
import type { CidrFinding, DiscoveryOptions, DiscoveryResult } from './types.js';

/** kubeadm's default serviceSubnet when ClusterConfiguration leaves it out. */
const KUBEADM_DEFAULT_SERVICE_SUBNET = '10.96.0.0/12';

/**
 * kubeadm and kind: the kubeadm-config ConfigMap in kube-system, whose ClusterConfiguration
 * (a YAML document inside the ConfigMap) has networking.podSubnet and networking.serviceSubnet,
 * comma-separated when dual-stack. kind always writes both; plain kubeadm may leave podSubnet to
 * the CNI plugin, which is then said rather than guessed.
 */
export function kubeadmDiscoverer(platform: 'kubeadm' | 'kind') {
  return async (given: DiscoveryOptions): Promise<DiscoveryResult> => {
    // kind names its contexts kind-CLUSTER, so --cluster is enough to find one.
    const options =
      platform === 'kind' && given.context === undefined && given.cluster !== undefined
        ? { ...given, context: `kind-${given.cluster}` }
        : given;
    const { json, cmd } = await kubectlJson(
      options,
      ['-n', 'kube-system', 'get', 'configmap', 'kubeadm-config'],
      'no kubeadm-config ConfigMap in kube-system: the cluster was not set up by kubeadm (or kind); pick another --platform or --platform auto',
    );
    const text = field(json, 'data', 'ClusterConfiguration');
    if (typeof text !== 'string') {
      throw new DiscoveryError(`${cmd}: data.ClusterConfiguration is missing`, 'run the command by hand to check the ConfigMap');
    }
    let config: unknown;
    try {
      config = yamlDocument(text);
    } catch (cause) {
      throw new DiscoveryError(`${cmd}: data.ClusterConfiguration is not valid YAML: ${(cause as Error).message}`, 'run the command by hand to check the ConfigMap', { cause });
    }
    const source = `${cmd}: ClusterConfiguration networking`;
    const podSubnet = field(config, 'networking', 'podSubnet');
    const serviceSubnet = field(config, 'networking', 'serviceSubnet');
    const findings: CidrFinding[] = [...findingsFrom(podSubnet, 'pod', `${source}.podSubnet`)];
    const notes: string[] = [];
    if (podSubnet === undefined || podSubnet === '') {
      notes.push('ClusterConfiguration has no networking.podSubnet: the CNI plugin chose the pod range; read it from the CNI configuration (e.g. Calico IPPool, Flannel net-conf.json)');
    }
    if (serviceSubnet === undefined || serviceSubnet === '') {
      findings.push(...findingsFrom(KUBEADM_DEFAULT_SERVICE_SUBNET, 'service', "kubeadm's default serviceSubnet (not set in ClusterConfiguration)", true));
      notes.push(`networking.serviceSubnet is not set: kubeadm's default ${KUBEADM_DEFAULT_SERVICE_SUBNET} is assumed`);
    } else {
      findings.push(...findingsFrom(serviceSubnet, 'service', `${source}.serviceSubnet`));
    }
    return { platform, findings, notes };
  };
}
