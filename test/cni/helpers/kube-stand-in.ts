/**
 * A stand-in for the Kubernetes API server on loopback: serves the Pod objects a test puts in
 * it at /api/v1/namespaces/NS/pods/NAME (404 Status otherwise) and counts requests, so tests
 * can say whether the plugin asked. The plugin's client (src/cni/pod-client.ts) is the real one.
 */
import { createServer, type Server } from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PodSpecLike {
  annotations?: Record<string, string>;
  hostNetwork?: boolean;
  proxyEnv?: Record<string, string>;
}

export class KubeStandIn {
  readonly pods = new Map<string, object>();
  requests = 0;
  /** The Authorization header of each request. */
  readonly authorizations: string[] = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** PEM of the self-signed certificate the server presents (the kubeconfig's CA). */
    readonly certificate: string,
  ) {}

  static async start(): Promise<KubeStandIn> {
    let self: KubeStandIn | undefined;
    const { key, cert } = selfSignedCertificate();
    const server = createServer({ key, cert }, (req, res) => {
      self!.requests++;
      self!.authorizations.push(req.headers.authorization ?? '');
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/?]+)/.exec(req.url ?? '');
      const pod = m ? self!.pods.get(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`) : undefined;
      res.setHeader('content-type', 'application/json');
      if (!pod) {
        res.statusCode = 404;
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
        return;
      }
      res.end(JSON.stringify(pod));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    self = new KubeStandIn(server, `https://127.0.0.1:${port}`, cert);
    return self;
  }

  /** Adds a pod as the API would return it. */
  addPod(namespace: string, name: string, spec: PodSpecLike): void {
    this.pods.set(`${namespace}/${name}`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, annotations: spec.annotations ?? {} },
      spec: {
        hostNetwork: spec.hostNetwork ?? false,
        containers: [
          { name: 'app', image: 'app' },
          { name: 'istio-proxy', image: 'proxy', env: Object.entries(spec.proxyEnv ?? {}).map(([name, value]) => ({ name, value })) },
        ],
      },
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A key and certificate for 127.0.0.1, made by openssl for this run. */
function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-kube-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A kubeconfig naming `server`, trusting `ca` (PEM); a token the stand-in does not check. */
/**
 * A kubeconfig for the stand-in: JSON as `interpose cni install` writes it, or YAML as a
 * hand-written one is (the plugin loads its YAML parser only then).
 */
export function writeKubeconfig(dir: string, server: string, ca: string, format: 'json' | 'yaml' = 'json'): string {
  const file = join(dir, 'kubeconfig');
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: test\n  cluster:\n    server: ${server}\n    certificate-authority-data: ${Buffer.from(ca).toString('base64')}`,
    'users:',
    '- name: test\n  user:\n    token: test-token',
    'contexts:',
    '- name: test\n  context:\n    cluster: test\n    user: test',
    'current-context: test',
    '',
  ].join('\n');
  const json = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
    users: [{ name: 'test', user: { token: 'test-token' } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'test' } }],
    'current-context': 'test',
  };
  writeFileSync(file, format === 'yaml' ? yaml : `${JSON.stringify(json, null, 2)}\n`);
  return file;
}

/** Annotations the sidecar injector leaves on a pod it injected. */
export const INJECTED = { 'sidecar.istio.io/status': '{"initContainers":["istio-validation"],"containers":["istio-proxy"]}' };
