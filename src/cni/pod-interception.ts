/**
 * Which pods get rules and which flags, as istio-cni decides: pods in an excluded namespace
 * (decided from CNI_ARGS alone), host-network pods, pods the injector did not touch (no
 * sidecar.istio.io/status), pods opted out with sidecar.istio.io/inject: "false" and pods
 * with interception mode NONE are left alone; for the rest the traffic.sidecar.istio.io/*
 * annotations give istio-iptables' flags through the same mapping `interpose
 * annotations-to-flags` uses. Pure: no I/O.
 */
import { annotationsToFlags } from '../config/annotations.js';
import { ValidationError } from '../errors/validation-error.js';
import { CNI_ERROR, CniError } from './cni-error.js';
import type { PodInfo } from './pod-client.js';

export const STATUS_ANNOTATION = 'sidecar.istio.io/status';
export const INJECT_ANNOTATION = 'sidecar.istio.io/inject';
/** The istio-proxy variable istio-cni turns DNS capture on with. */
export const DNS_CAPTURE_ENV = 'ISTIO_META_DNS_CAPTURE';

export type Interception = { readonly intercept: false; readonly reason: string } | { readonly intercept: true; readonly argv: readonly string[] };

export function podInterception(pod: PodInfo): Interception {
  if (pod.hostNetwork) return { intercept: false, reason: 'host-network pod' };
  if (pod.annotations[STATUS_ANNOTATION] === undefined) return { intercept: false, reason: `no ${STATUS_ANNOTATION} annotation (no sidecar injected)` };
  if ((pod.annotations[INJECT_ANNOTATION] ?? '').toLowerCase() === 'false') return { intercept: false, reason: `${INJECT_ANNOTATION}: "false"` };
  let argv: readonly string[];
  try {
    argv = annotationsToFlags(pod.annotations).argv;
  } catch (err) {
    if (err instanceof ValidationError) throw new CniError(CNI_ERROR.badAnnotation, err.message);
    throw err;
  }
  if (argv.length === 0) return { intercept: false, reason: 'interception mode NONE' };
  // The pod's resolv.conf is not visible from the node at ADD time, so DNS capture takes all
  // port-53 traffic rather than the nameservers of a file the plugin cannot read.
  const dns = ['true', '1'].includes((pod.proxyEnv[DNS_CAPTURE_ENV] ?? '').toLowerCase()) ? ['--redirect-dns', '--capture-all-dns'] : [];
  return { intercept: true, argv: [...argv, ...dns] };
}
