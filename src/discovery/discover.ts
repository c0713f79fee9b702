import { discoverAks } from './aks.js';
import { apiserverFlagsDiscoverer } from './apiserver-flags.js';
import { detectPlatform } from './auto.js';
import { discoverEks } from './eks.js';
import { discoverGke } from './gke.js';
import { discoverIcp } from './icp.js';
import { discoverIks } from './iks.js';
import { discoverK3s } from './k3s.js';
import { kubeadmDiscoverer } from './kubeadm.js';
import { discoverOpenshift } from './openshift.js';
import type { DiscoveryOptions, DiscoveryResult, Platform, PlatformDiscoverer } from './types.js';

/** One module per platform. */
export const DISCOVERERS: Record<Platform, PlatformDiscoverer> = {
  gke: discoverGke,
  eks: discoverEks,
  aks: discoverAks,
  iks: discoverIks,
  icp: discoverIcp,
  openshift: discoverOpenshift,
  kubeadm: kubeadmDiscoverer('kubeadm'),
  kind: kubeadmDiscoverer('kind'),
  k3s: discoverK3s,
  minikube: apiserverFlagsDiscoverer('minikube'),
  'docker-desktop': apiserverFlagsDiscoverer('docker-desktop'),
};

/**
 * Discovers a cluster's pod and service ranges. With platform "auto" the kube context decides
 * the platform (and, for clouds, fills in cluster and location the user did not give); what the
 * user passed explicitly always wins over what detection derived.
 */
export async function discover(platform: Platform | 'auto', options: DiscoveryOptions): Promise<DiscoveryResult> {
  if (platform !== 'auto') return DISCOVERERS[platform](options);
  const detection = await detectPlatform(options);
  const merged: DiscoveryOptions = { ...detection.options, ...definedOnly(options) } as DiscoveryOptions;
  const result = await DISCOVERERS[detection.platform](merged);
  return { ...result, detection: detection.reason };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
