/**
 * The CNI_* variables a runtime sets for one plugin call (CNI spec, "Parameters"), checked per
 * command: ADD needs the container, namespace and interface; DEL accepts an empty CNI_NETNS
 * (the spec allows it: the namespace may be gone); VERSION, STATUS and GC need none of them.
 */
import { CNI_ERROR, CniError } from './cni-error.js';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** The pod a Kubernetes runtime (containerd, CRI-O) names in CNI_ARGS. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly infraContainerId?: string;
  readonly uid?: string;
}

export interface CniEnvironment {
  readonly command: CniCommand;
  readonly containerId: string;
  /** The namespace path; '' when the runtime passed none (DEL only). */
  readonly netns: string;
  readonly ifname: string;
  /** Undefined when CNI_ARGS names no pod (not a Kubernetes runtime). */
  readonly pod?: PodRef;
}

const MAX_ARGS = 16 * 1024;

export function readCniEnvironment(env: Readonly<Record<string, string | undefined>>): CniEnvironment {
  const command = env.CNI_COMMAND ?? '';
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CNI_ERROR.invalidEnvironment, `CNI_COMMAND ${JSON.stringify(command.slice(0, 40))} is not one of ${CNI_COMMANDS.join(', ')}`);
  }
  const cmd = command as CniCommand;
  const per = cmd === 'ADD' || cmd === 'DEL' || cmd === 'CHECK';
  const need = (name: string, optional = false): string => {
    const v = env[name] ?? '';
    if (per && !optional && v === '') throw new CniError(CNI_ERROR.invalidEnvironment, `${name} is not set; ${cmd} needs it`);
    return v;
  };
  const containerId = need('CNI_CONTAINERID');
  // The spec's rule for container ids: alphanumerics plus _ . - after the first.
  if (per && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId)) {
    throw new CniError(CNI_ERROR.invalidEnvironment, `CNI_CONTAINERID ${JSON.stringify(containerId.slice(0, 80))} is not a container id (letters, digits, _ . -)`);
  }
  const netns = need('CNI_NETNS', cmd === 'DEL');
  if (netns !== '' && !netns.startsWith('/')) {
    throw new CniError(CNI_ERROR.invalidEnvironment, `CNI_NETNS ${JSON.stringify(netns.slice(0, 80))} must be an absolute path`);
  }
  const ifname = need('CNI_IFNAME');
  const pod = parseCniArgs(env.CNI_ARGS ?? '');
  return { command: cmd, containerId, netns, ifname, ...(pod ? { pod } : {}) };
}

/**
 * `K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;IgnoreUnknown=1`: the pod, or undefined unless both
 * namespace and name are given — istio-cni takes such a sandbox for "not a Kubernetes pod" and
 * leaves it alone, and so does this plugin (podman 4.3, for one, passes only K8S_POD_NAME). Unknown keys are refused unless IgnoreUnknown is set, as the
 * reference plugins (libcni's types.LoadArgs) do.
 */
export function parseCniArgs(text: string): PodRef | undefined {
  if (text.length > MAX_ARGS) throw new CniError(CNI_ERROR.invalidEnvironment, `CNI_ARGS is longer than ${MAX_ARGS} characters`);
  const values = new Map<string, string>();
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_ERROR.invalidEnvironment, `CNI_ARGS item ${JSON.stringify(pair.slice(0, 80))} is not KEY=VALUE`);
    values.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const known = ['K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID', 'IgnoreUnknown'];
  const ignore = ['1', 'true', 'True'].includes(values.get('IgnoreUnknown') ?? '');
  const unknown = [...values.keys()].find((k) => !known.includes(k));
  if (unknown && !ignore) {
    throw new CniError(CNI_ERROR.invalidEnvironment, `CNI_ARGS key ${JSON.stringify(unknown.slice(0, 80))} is unknown (set IgnoreUnknown=1 to allow it)`);
  }
  const namespace = values.get('K8S_POD_NAMESPACE') ?? '';
  const name = values.get('K8S_POD_NAME') ?? '';
  if (namespace === '' || name === '') return undefined;
  const infra = values.get('K8S_POD_INFRA_CONTAINER_ID');
  const uid = values.get('K8S_POD_UID');
  return { namespace, name, ...(infra ? { infraContainerId: infra } : {}), ...(uid ? { uid } : {}) };
}
