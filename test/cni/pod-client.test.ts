/**
 * The plugin's pod read (src/cni/pod-client.ts + kubeconfig.ts) against the stand-in API server
 * over TLS and small loopback servers: JSON and YAML kubeconfigs, the token sent, relative
 * paths, unsupported credentials, 404, 403, retries and the deadline. No root needed.
 */
import test from 'ava';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CniError } from '../../src/cni/cni-error.js';
import { readPod } from '../../src/cni/pod-client.js';
import { INJECTED, KubeStandIn, writeKubeconfig } from './helpers/kube-stand-in.js';

const FAST = { timeoutMs: 500, attempts: 2, backoffMs: 10 };
const pod = { namespace: 'shop', name: 'web' };

function tmp(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-cni-pod-client-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function plainServer(t: { teardown: (f: () => void) => void }, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler!);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const plainKubeconfig = (dir: string, server: string, user: object = { token: 't' }) => {
  const file = join(dir, 'kc');
  writeFileSync(file, JSON.stringify({ clusters: [{ name: 'c', cluster: { server } }], users: [{ name: 'u', user }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }));
  return file;
};

for (const format of ['json', 'yaml'] as const) {
  test(`reads the pod over TLS with a ${format} kubeconfig, sending its token`, async (t) => {
    const api = await KubeStandIn.start();
    t.teardown(() => api.close());
    api.addPod('shop', 'web', { annotations: INJECTED, proxyEnv: { ISTIO_META_DNS_CAPTURE: 'true' } });
    const info = await readPod(writeKubeconfig(tmp(t), api.url, api.certificate, format), pod, FAST);
    t.deepEqual(info, { annotations: INJECTED, hostNetwork: false, proxyEnv: { ISTIO_META_DNS_CAPTURE: 'true' } });
    t.deepEqual(api.authorizations, ['Bearer test-token']);
  });
}

test('a certificate-authority path is relative to the kubeconfig; a wrong CA fails TLS', async (t) => {
  const api = await KubeStandIn.start();
  t.teardown(() => api.close());
  api.addPod('shop', 'web', { annotations: INJECTED });
  const dir = tmp(t);
  writeFileSync(join(dir, 'ca.pem'), api.certificate);
  const file = join(dir, 'kc.yaml');
  writeFileSync(file, `clusters:\n- name: c\n  cluster: {server: "${api.url}", certificate-authority: ca.pem}\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n`);
  t.deepEqual((await readPod(file, pod, FAST)).annotations, INJECTED);
  writeFileSync(join(dir, 'ca.pem'), (await KubeStandIn.start().then(async (other) => (await other.close(), other.certificate))));
  const e = await t.throwsAsync<CniError>(readPod(file, pod, FAST));
  t.is(e?.code, 11);
});

test('404 is "does not exist" (code 3); 403 is refused at once (code 11, one request); 503 is retried', async (t) => {
  let requests = 0;
  const status = { code: 404 };
  const url = await plainServer(t, (_req, res) => {
    requests++;
    res.statusCode = status.code;
    res.end('{"kind":"Status"}');
  });
  const file = plainKubeconfig(tmp(t), url);
  t.is((await t.throwsAsync<CniError>(readPod(file, pod, FAST)))?.code, 3);
  requests = 0;
  status.code = 403;
  const forbidden = await t.throwsAsync<CniError>(readPod(file, pod, FAST));
  t.is(forbidden?.code, 11);
  t.regex(forbidden!.message, /refused to read pod shop\/web: HTTP 403/);
  t.is(requests, 1);
  requests = 0;
  status.code = 503;
  const unavailable = await t.throwsAsync<CniError>(readPod(file, pod, FAST));
  t.regex(unavailable!.message, /cannot reach the Kubernetes API server http:\/\/127\.0\.0\.1:\d+ .*2 attempts.*HTTP 503/);
  t.is(requests, 2);
});

test('a server that never answers hits the per-attempt deadline; a closed port is named', async (t) => {
  const url = await plainServer(t, () => undefined);
  const started = Date.now();
  const e = await t.throwsAsync<CniError>(readPod(plainKubeconfig(tmp(t), url), pod, { timeoutMs: 300, attempts: 2, backoffMs: 10 }));
  t.regex(e!.message, /no answer within 300 ms/);
  t.true(Date.now() - started < 5_000);
  const refused = await t.throwsAsync<CniError>(readPod(plainKubeconfig(tmp(t), 'https://127.0.0.1:9'), pod, FAST));
  t.regex(refused!.message, /https:\/\/127\.0\.0\.1:9 .*ECONNREFUSED/);
});

test('credential plugins and broken kubeconfigs are configuration errors naming the field (code 7)', async (t) => {
  const dir = tmp(t);
  const exec = await t.throwsAsync<CniError>(readPod(plainKubeconfig(dir, 'https://127.0.0.1:9', { exec: { command: 'aws' } }), pod, FAST));
  t.is(exec?.code, 7);
  t.regex(exec!.message, /"exec" is not supported/);
  writeFileSync(join(dir, 'bad'), 'clusters: [');
  t.regex((await t.throwsAsync<CniError>(readPod(join(dir, 'bad'), pod, FAST)))!.message, /kubeconfig .*bad .*neither JSON nor YAML/);
  t.regex((await t.throwsAsync<CniError>(readPod(join(dir, 'missing'), pod, FAST)))!.message, /missing .*cannot be read: ENOENT/);
});
