import { DiscoveryError } from './discovery-error.js';
import { kubectlJson, listItems } from './kubectl.js';
import { field } from './json-output.js';
import type { DiscoveryOptions, Platform } from './types.js';

/** The platform auto-detection settled on, the options it could fill in, and why. */
export interface Detection {
  readonly platform: Platform;
  readonly options: Partial<DiscoveryOptions>;
  readonly reason: string;
}

interface NodeSigns {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly providerID: string;
}

/**
 * Works out the platform from the current kube context: its name and API server URL
 * (`kubectl config view --minify`) and the first node's labels, annotations and providerID
 * (`kubectl get nodes`). Cloud platforms also get the cluster name and location from the
 * context where the platform's own get-credentials command encodes them.
 */
export async function detectPlatform(options: DiscoveryOptions): Promise<Detection> {
  const view = await kubectlJson(options, ['config', 'view', '--minify']);
  const contextName = String(options.context ?? field(view.json, 'current-context') ?? '');
  const server = String(field(view.json, 'clusters', 0, 'cluster', 'server') ?? '');
  if (contextName === '') {
    throw new DiscoveryError('kubectl has no current context', 'pass --context NAME, or name the platform with --platform');
  }
  const nodesOut = await kubectlJson(options, ['get', 'nodes']);
  const nodes = listItems(nodesOut.json, nodesOut.cmd).map(signsOf);
  const seen = `context ${contextName}${server ? `, API server ${server}` : ''}`;
  const node = nodes[0];
  const hasLabel = (key: string) => nodes.find((n) => key in n.labels);
  const hasAnnotation = (key: string) => nodes.find((n) => key in n.annotations);
  const labelSign = (n: NodeSigns, key: string) => `node ${n.name} has label ${key}=${n.labels[key]}`;

  let n: NodeSigns | undefined;
  if ((n = hasLabel('node.openshift.io/os_id'))) {
    return { platform: 'openshift', options: {}, reason: `${labelSign(n, 'node.openshift.io/os_id')} (${seen})` };
  }
  if ((n = hasLabel('cloud.google.com/gke-nodepool')) || /^gke_/.test(contextName)) {
    // gcloud's get-credentials names contexts gke_PROJECT_LOCATION_CLUSTER.
    const m = /^gke_([^_]+)_([^_]+)_(.+)$/.exec(contextName);
    const why = n ? labelSign(n, 'cloud.google.com/gke-nodepool') : `context ${contextName} is named by gcloud`;
    if (!m) return { platform: 'gke', options: {}, reason: `${why}; the context name does not give the cluster, so pass --cluster and --zone/--region` };
    const [, project, location, cluster] = m;
    const zonal = /-[a-z]$/.test(location!);
    return {
      platform: 'gke',
      options: { project, cluster, ...(zonal ? { zone: location } : { region: location }) },
      reason: `${why}; context ${contextName} gives project ${project}, ${zonal ? 'zone' : 'region'} ${location}, cluster ${cluster}`,
    };
  }
  if ((n = hasLabel('eks.amazonaws.com/nodegroup') ?? hasLabel('eks.amazonaws.com/compute-type')) || /\.eks\.amazonaws\.com/.test(server)) {
    const why = n
      ? labelSign(n, 'eks.amazonaws.com/nodegroup' in n.labels ? 'eks.amazonaws.com/nodegroup' : 'eks.amazonaws.com/compute-type')
      : `API server ${server} is an EKS endpoint`;
    // aws eks update-kubeconfig names contexts by the cluster ARN.
    const m = /^arn:aws[\w-]*:eks:([^:]+):\d+:cluster\/(.+)$/.exec(contextName);
    if (!m) return { platform: 'eks', options: {}, reason: `${why}; the context name is not a cluster ARN, so pass --cluster and --region` };
    return { platform: 'eks', options: { region: m[1], cluster: m[2] }, reason: `${why}; context ${contextName} gives region ${m[1]}, cluster ${m[2]}` };
  }
  if ((n = hasLabel('kubernetes.azure.com/cluster')) || /\.azmk8s\.io/.test(server)) {
    const why = n ? labelSign(n, 'kubernetes.azure.com/cluster') : `API server ${server} is an AKS endpoint`;
    // az aks get-credentials names the context after the cluster; the node resource group is
    // MC_<group>_<cluster>_<location> unless it was customised.
    const cluster = contextName.replace(/-admin$/, '');
    const nodeGroup = n?.labels['kubernetes.azure.com/cluster'] ?? '';
    const location = n?.labels['topology.kubernetes.io/region'] ?? '';
    const suffix = `_${cluster}_${location}`;
    const group =
      options.resourceGroup ??
      (nodeGroup.startsWith('MC_') && location && nodeGroup.endsWith(suffix) ? nodeGroup.slice(3, -suffix.length) : undefined);
    if (!group) return { platform: 'aks', options: { cluster }, reason: `${why}; the resource group cannot be derived, so pass --resource-group` };
    return {
      platform: 'aks',
      options: { cluster, resourceGroup: group },
      reason: `${why}; context ${contextName} gives cluster ${cluster}, node resource group ${nodeGroup} gives resource group ${group}`,
    };
  }
  if ((n = hasLabel('ibm-cloud.kubernetes.io/worker-id')) || nodes.some((x) => x.providerID.startsWith('ibm://'))) {
    const why = n ? labelSign(n, 'ibm-cloud.kubernetes.io/worker-id') : 'a node has an ibm:// providerID';
    // ibmcloud ks cluster config names contexts CLUSTER/CLUSTER_ID.
    const cluster = contextName.split('/')[0]!;
    return { platform: 'iks', options: { cluster }, reason: `${why}; context ${contextName} gives cluster ${cluster}` };
  }
  if ((n = hasAnnotation('k3s.io/node-args'))) {
    return { platform: 'k3s', options: {}, reason: `node ${n.name} has annotation k3s.io/node-args (${seen})` };
  }
  if ((n = nodes.find((x) => x.labels['node.kubernetes.io/instance-type'] === 'k3s'))) {
    return { platform: 'k3s', options: {}, reason: `${labelSign(n, 'node.kubernetes.io/instance-type')} (${seen})` };
  }
  if ((n = hasLabel('minikube.k8s.io/name'))) {
    return { platform: 'minikube', options: {}, reason: `${labelSign(n, 'minikube.k8s.io/name')} (${seen})` };
  }
  if (contextName === 'docker-desktop' || nodes.some((x) => x.name === 'docker-desktop')) {
    return { platform: 'docker-desktop', options: {}, reason: `context or node named docker-desktop (${seen})` };
  }
  if (nodes.some((x) => x.providerID.startsWith('kind://')) || /^kind-/.test(contextName)) {
    const why = nodes.some((x) => x.providerID.startsWith('kind://')) ? 'a node has a kind:// providerID' : `context ${contextName} is named by kind`;
    return { platform: 'kind', options: {}, reason: `${why} (${seen})` };
  }
  if ((n = hasAnnotation('kubeadm.alpha.kubernetes.io/cri-socket'))) {
    return { platform: 'kubeadm', options: {}, reason: `node ${n.name} has annotation kubeadm.alpha.kubernetes.io/cri-socket (${seen})` };
  }
  throw new DiscoveryError(
    `cannot tell the platform from ${seen}${node ? ` and node ${node.name} (providerID ${node.providerID || 'none'})` : ' (no nodes visible)'}`,
    'name it with --platform (gke, eks, aks, iks, icp, openshift, kubeadm, kind, k3s, minikube, docker-desktop); IBM Cloud Private is never auto-detected: use --platform icp --config cluster/config.yaml',
  );
}

function signsOf(node: unknown): NodeSigns {
  const strings = (v: unknown): Record<string, string> =>
    v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === 'string')) : {};
  return {
    name: String(field(node, 'metadata', 'name') ?? '?'),
    labels: strings(field(node, 'metadata', 'labels')),
    annotations: strings(field(node, 'metadata', 'annotations')),
    providerID: String(field(node, 'spec', 'providerID') ?? ''),
  };
}
