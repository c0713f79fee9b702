/**
 * The kubeconfig the plugin reads pods with, made from the installer pod's service account
 * (token, ca.crt, namespace under /var/run/secrets/kubernetes.io/serviceaccount) and the API
 * address Kubernetes puts in every pod's environment (KUBERNETES_SERVICE_HOST/PORT), as
 * istio-cni writes its ZZZ-istio-cni-kubeconfig. The runtime runs the plugin on the host, where
 * the pod's token file is not visible, so the token and CA are embedded; `--watch` rewrites the
 * file when the kubelet rotates the token. Written as JSON (a kubeconfig may be YAML or JSON):
 * the plugin then parses it without loading a YAML parser.
 */
import { join } from 'node:path';
import { FileRefusedError, readBoundedFile } from '../../config/bounded-file.js';
import { InterceptError } from '../../errors/intercept-error.js';
import { ValidationError } from '../../errors/validation-error.js';

export const KUBECONFIG_FILE = 'interpose-cni.kubeconfig';

/** A token, a CA bundle or a namespace name: kilobytes. */
const SECRET_MAX_BYTES = 1 << 20;

function readSecret(dir: string, name: string): string {
  try {
    // Bounded: a FIFO there blocked install for good (deaf to SIGTERM), /dev/zero ate the memory.
    return readBoundedFile(join(dir, name), SECRET_MAX_BYTES);
  } catch (err) {
    const reason = err instanceof FileRefusedError ? err.reason : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    throw new InterceptError(
      `cannot read ${join(dir, name)} (--service-account-dir): ${reason}; ` +
        'the installer needs its pod\'s service account token, ca.crt and namespace',
    );
  }
}

export function serviceAccountKubeconfig(saDir: string, env: NodeJS.ProcessEnv): string {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new ValidationError('KUBERNETES_SERVICE_HOST', host, 'the API server address Kubernetes sets in every pod');
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new ValidationError('KUBERNETES_SERVICE_PORT', port, 'a port 1-65535');
  const token = readSecret(saDir, 'token').trim();
  const ca = readSecret(saDir, 'ca.crt');
  const namespace = readSecret(saDir, 'namespace').trim();
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
    users: [{ name: 'interpose-cni', user: { token } }],
    contexts: [{ name: 'interpose-cni', context: { cluster: 'local', user: 'interpose-cni', namespace } }],
    'current-context': 'interpose-cni',
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}
