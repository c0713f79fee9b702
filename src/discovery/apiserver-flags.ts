import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { flagValue, kubectlJson, listItems } from './kubectl.js';
import { field } from './json-output.js';
import type { CidrFinding, DiscoveryOptions, DiscoveryResult } from './types.js';

/** The argv (command + args) of the first container of the first pod matching a component label. */
async function componentArgv(options: DiscoveryOptions, component: string): Promise<{ argv: string[]; cmd: string } | undefined> {
  const { json, cmd } = await kubectlJson(options, ['-n', 'kube-system', 'get', 'pods', '-l', `component=${component}`]);
  const items = listItems(json, cmd);
  if (items.length === 0) return undefined;
  const container = field(items[0], 'spec', 'containers', 0);
  const parts = [field(container, 'command'), field(container, 'args')];
  const argv = parts.flatMap((p) => (Array.isArray(p) ? p.filter((s): s is string => typeof s === 'string') : []));
  return { argv, cmd };
}

/**
 * minikube and Docker Desktop run the control plane as static pods: the service range is the
 * kube-apiserver's --service-cluster-ip-range and the pod range the kube-controller-manager's
 * --cluster-cidr, both read from the pods' command lines.
 */
export function apiserverFlagsDiscoverer(platform: 'minikube' | 'docker-desktop') {
  return async (given: DiscoveryOptions): Promise<DiscoveryResult> => {
    // A minikube profile's context has the profile's name, so --cluster PROFILE selects it.
    const options =
      platform === 'minikube' && given.context === undefined && given.cluster !== undefined
        ? { ...given, context: given.cluster }
        : given;
    const apiserver = await componentArgv(options, 'kube-apiserver');
    if (!apiserver) {
      throw new DiscoveryError(
        'no kube-apiserver pod (label component=kube-apiserver) in kube-system',
        `this cluster does not run its API server as a visible static pod, so it is not ${platform}; check --context or pick another --platform`,
      );
    }
    const findings: CidrFinding[] = [];
    const notes: string[] = [];
    const serviceRange = flagValue(apiserver.argv, '--service-cluster-ip-range');
    if (serviceRange === undefined) {
      throw new DiscoveryError(
        `${apiserver.cmd}: kube-apiserver has no --service-cluster-ip-range flag`,
        'run the command by hand to check the API server flags',
      );
    }
    findings.push(...findingsFrom(serviceRange, 'service', `${apiserver.cmd}: kube-apiserver --service-cluster-ip-range`));

    const manager = await componentArgv(options, 'kube-controller-manager');
    const clusterCidr = manager ? flagValue(manager.argv, '--cluster-cidr') : undefined;
    if (manager && clusterCidr !== undefined) {
      findings.push(...findingsFrom(clusterCidr, 'pod', `${manager.cmd}: kube-controller-manager --cluster-cidr`));
    } else {
      notes.push(
        manager
          ? 'kube-controller-manager has no --cluster-cidr: the CNI plugin chose the pod range; only the service range is listed'
          : 'no kube-controller-manager pod found: only the service range is listed',
      );
    }
    return { platform, findings, notes };
  };
}
