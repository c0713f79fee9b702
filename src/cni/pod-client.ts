/**
 * Reads one pod from the Kubernetes API: one GET of /api/v1/namespaces/NS/pods/NAME over
 * node:https with the kubeconfig's CA and credentials (kubeconfig.ts). Each attempt has a
 * deadline and failed connections and 5xx/429 answers are retried a few times with a short
 * back-off: every pod creation on the node waits for ADD, so the whole read is bounded too.
 * The error names the API server, so "ADD failed" says where.
 *
 * Not @kubernetes/client-node: loading it cost ~0.3-0.7 s of every ADD (docs/cni.md, "Start-up
 * cost"), for one GET whose answer is three fields.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { shortened } from '../errors/value-text.js';
import { CNI_ERROR, CniError } from './cni-error.js';
import type { PodRef } from './cni-environment.js';
import { loadKubeconfig, type ApiAccess } from './kubeconfig.js';
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
  const access = await loadKubeconfig(kubeconfig);
  const server = access.server;
  const what = `pod ${shortened(`${pod.namespace}/${pod.name}`)}`;
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`;
  let lastError = '';
  for (let attempt = 1; attempt <= options.attempts; attempt++) {
    try {
      const r = await get(access, path, options.timeoutMs);
      if (r.status === 200) {
        let pod: unknown;
        try {
          pod = JSON.parse(r.body);
        } catch {
          throw new CniError(CNI_ERROR.tryAgainLater, `the Kubernetes API server ${server} answered the read of ${what} with something that is not JSON`, r.body.slice(0, 500));
        }
        const info = podInfo(pod);
        if (typeof info === 'string') {
          throw new CniError(CNI_ERROR.tryAgainLater, `the Kubernetes API server ${server} answered the read of ${what} with a pod whose ${info}`, r.body.slice(0, 500));
        }
        return info;
      }
      if (r.status === 404) throw new CniError(CNI_ERROR.unknownContainer, `${what} does not exist on the Kubernetes API server ${server}`);
      if (r.status >= 400 && r.status < 500 && r.status !== 429) {
        throw new CniError(CNI_ERROR.tryAgainLater, `the Kubernetes API server ${server} refused to read ${what}: HTTP ${r.status}`, r.body.slice(0, 500));
      }
      lastError = `HTTP ${r.status}`;
    } catch (err) {
      if (err instanceof CniError) throw err;
      lastError = describe(err);
    }
    if (attempt < options.attempts) await sleep(options.backoffMs * attempt);
  }
  throw new CniError(
    CNI_ERROR.tryAgainLater,
    `cannot reach the Kubernetes API server ${server} to read ${what} (${options.attempts} attempts, ${options.timeoutMs} ms each): ${lastError}`,
  );
}

/** A pod object is a few KiB; a misbehaving server must not fill the plugin's memory. */
const MAX_BODY = 4 << 20;

function get(access: ApiAccess, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${access.server}${path}`);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'interpose-cni' };
    if (access.token) headers.authorization = `Bearer ${access.token}`;
    const common = { method: 'GET', headers, agent: false as const, signal: AbortSignal.timeout(timeoutMs) };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, {
            ...common,
            ...(access.ca ? { ca: access.ca } : {}),
            ...(access.clientCert ? { cert: access.clientCert } : {}),
            ...(access.clientKey ? { key: access.clientKey } : {}),
            ...(access.tlsServerName ? { servername: access.tlsServerName } : {}),
            rejectUnauthorized: !access.insecureSkipTlsVerify,
          })
        : httpRequest(url, common);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        length += c.length;
        if (length > MAX_BODY) req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err) => reject(err.name === 'AbortError' ? new DeadlineError(`no answer within ${timeoutMs} ms`) : err));
    req.end();
  });
}

/**
 * The three things read from a pod, or what is wrong with its shape. The API server is trusted
 * to send a pod, but a proxy or a broken server in between must not become an internal error
 * (a number where a string belongs crashed `.toLowerCase()` in the interception decision).
 */
function podInfo(pod: unknown): PodInfo | string {
  const metadata = field(pod, 'metadata');
  const annotations = field(metadata, 'annotations') ?? {};
  if (!isStringMap(annotations)) return 'metadata.annotations is not a map of strings';
  const spec = field(pod, 'spec');
  const hostNetwork = field(spec, 'hostNetwork');
  if (hostNetwork !== undefined && typeof hostNetwork !== 'boolean') return 'spec.hostNetwork is not a boolean';
  const containers = field(spec, 'containers') ?? [];
  if (!Array.isArray(containers)) return 'spec.containers is not a list';
  const proxy: unknown = containers.find((c) => field(c, 'name') === 'istio-proxy');
  const env = field(proxy, 'env') ?? [];
  if (!Array.isArray(env)) return 'istio-proxy container\'s env is not a list';
  // A null-prototype map: a variable named __proto__ is a variable, not the map's prototype.
  const proxyEnv: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const e of env) {
    const name = field(e, 'name');
    const value = field(e, 'value');
    if (typeof name === 'string' && name !== '' && typeof value === 'string') proxyEnv[name] = value;
  }
  return { annotations, hostNetwork: hostNetwork === true, proxyEnv };
}

/** `o[key]` when `o` is a mapping and holds `key` itself (not through its prototype). */
function field(o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null && !Array.isArray(o) && Object.hasOwn(o, key) ? (o as Record<string, unknown>)[key] : undefined;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

class DeadlineError extends Error {}

/** The reason without the client's stack or request dump: a code (ECONNREFUSED) where there is one. */
function describe(err: unknown): string {
  if (err instanceof DeadlineError) return err.message;
  const e = err as { code?: unknown; cause?: { code?: unknown; message?: string }; message?: string };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  const status = typeof e.code === 'number' ? `HTTP ${e.code}` : undefined;
  const text = (e.cause?.message ?? e.message ?? String(err)).split('\n')[0]!.slice(0, 200);
  return [status ?? code, text].filter(Boolean).join(': ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
