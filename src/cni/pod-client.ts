/**
 * Reads one pod from the Kubernetes API with @kubernetes/client-node and the kubeconfig the
 * plugin configuration names. Each attempt has a deadline and failed connections are retried
 * a few times with a short back-off: every pod creation on the node waits for ADD, so the
 * whole read is bounded too. The error names the API server, so "ADD failed" says where.
 */
import { CNI_ERROR, CniError } from './cni-error.js';
import type { PodRef } from './cni-environment.js';

/** What the plugin needs of a pod. */
export interface PodInfo {
  readonly annotations: Readonly<Record<string, string>>;
  readonly hostNetwork: boolean;
  /** The istio-proxy container's environment (istio-cni reads ISTIO_META_DNS_CAPTURE there). */
  readonly proxyEnv: Readonly<Record<string, string>>;
}

export interface PodReadOptions {
  /** Per attempt. */
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly backoffMs: number;
}

export const DEFAULT_POD_READ: PodReadOptions = { timeoutMs: 5_000, attempts: 3, backoffMs: 200 };

export async function readPod(kubeconfig: string, pod: PodRef, options: PodReadOptions = DEFAULT_POD_READ): Promise<PodInfo> {
  // Loaded only when a pod has to be read: excluded namespaces and DEL never pay for it.
  const k8s = await import('./kube-client.js');
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromFile(kubeconfig);
  } catch (err) {
    throw new CniError(CNI_ERROR.invalidNetworkConfig, `cannot load the kubeconfig ${kubeconfig} named by "kubeconfig": ${(err as Error).message}`);
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new CniError(CNI_ERROR.invalidNetworkConfig, `the kubeconfig ${kubeconfig} names no current cluster`);
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const what = `pod ${pod.namespace}/${pod.name}`;
  let lastError = '';
  for (let attempt = 1; attempt <= options.attempts; attempt++) {
    try {
      const v1 = await withDeadline(api.readNamespacedPod({ name: pod.name, namespace: pod.namespace }), options.timeoutMs);
      return podInfo(v1);
    } catch (err) {
      const status = (err as { code?: unknown }).code;
      if (status === 404) {
        throw new CniError(CNI_ERROR.unknownContainer, `${what} does not exist on the Kubernetes API server ${server}`);
      }
      if (typeof status === 'number' && status >= 400 && status < 500 && status !== 429) {
        throw new CniError(CNI_ERROR.tryAgainLater, `the Kubernetes API server ${server} refused to read ${what}: HTTP ${status}`, bodyOf(err));
      }
      lastError = describe(err);
    }
    if (attempt < options.attempts) await sleep(options.backoffMs * attempt);
  }
  throw new CniError(
    CNI_ERROR.tryAgainLater,
    `cannot reach the Kubernetes API server ${server} to read ${what} (${options.attempts} attempts, ${options.timeoutMs} ms each): ${lastError}`,
  );
}

interface V1PodLike {
  metadata?: { annotations?: Record<string, string> };
  spec?: { hostNetwork?: boolean; containers?: Array<{ name?: string; env?: Array<{ name?: string; value?: string }> }> };
}

function podInfo(pod: V1PodLike): PodInfo {
  const proxy = pod.spec?.containers?.find((c) => c.name === 'istio-proxy');
  const proxyEnv: Record<string, string> = {};
  for (const e of proxy?.env ?? []) if (e.name && e.value !== undefined) proxyEnv[e.name] = e.value;
  return { annotations: pod.metadata?.annotations ?? {}, hostNetwork: pod.spec?.hostNetwork === true, proxyEnv };
}

class DeadlineError extends Error {}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The reason without the client's stack or request dump: a code (ECONNREFUSED) where there is one. */
function describe(err: unknown): string {
  if (err instanceof DeadlineError) return err.message;
  const e = err as { code?: unknown; cause?: { code?: unknown; message?: string }; message?: string };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  const status = typeof e.code === 'number' ? `HTTP ${e.code}` : undefined;
  const text = (e.cause?.message ?? e.message ?? String(err)).split('\n')[0]!.slice(0, 200);
  return [status ?? code, text].filter(Boolean).join(': ');
}

function bodyOf(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  return typeof body === 'string' ? body.slice(0, 500) : '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
