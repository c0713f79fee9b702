/**
 * Gateway tls.mode SIMPLE: the second seed's gateway terminating TLS with a certificate read
 * from `credentialName` (a directory with tls.crt and tls.key, relative to the --config
 * directory), then routing the HTTP inside by Host. curl runs in the pod namespace and
 * verifies the gateway's certificate; before this, only PASSTHROUGH was accepted.
 */
import test from 'ava';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import { HTTPBIN } from '../../src/lab/world/addresses.js';
import { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { createTestCa, type TestCa } from '../../src/lab/world/test-ca.js';
import { installIstioRules } from './helpers/rules.js';
import { parseLogLine } from './helpers/access-log-line.js';
import * as seed from '../../src/lab/seed-resources.js';

let world: World;
let proxy: ProxyProcess;
let configFile: string;
let ca: TestCa;

const gateway = (credentialName: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [${HTTPBIN.host}]
    tls: {mode: SIMPLE, credentialName: ${credentialName}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-through-gateway}
spec:
  hosts: [${HTTPBIN.host}]
  gateways: [istio-egressgateway]
  http:
  - route: [{destination: {host: ${HTTPBIN.host}, port: {number: 80}}}]
`;

test.before(async () => {
  if (!isRoot) return;
  world = await World.create({ prefix: 'gwtls' });
  const dir = join(world.dir, 'gw-ca');
  mkdirSync(dir);
  ca = await createTestCa(dir, [HTTPBIN.host]);
  // As `kubectl create secret tls httpbin-credential` mounts it, next to the config.
  const secret = join(world.dir, 'httpbin-credential');
  mkdirSync(secret);
  copyFileSync(ca.servers[HTTPBIN.host]!.cert, join(secret, 'tls.crt'));
  copyFileSync(ca.servers[HTTPBIN.host]!.key, join(secret, 'tls.key'));
  chmodSync(join(secret, 'tls.key'), 0o644);
  configFile = `${world.dir}/mesh.yaml`;
  writeFileSync(configFile, seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, gateway('httpbin-credential')));
  await installIstioRules(world.pod.name, ['-i', '*']);
  proxy = await ProxyProcess.start(world.pod.name, ['--config', configFile, '--uid', '1337', '--gid', '1337', '--metrics-port', '0']);
});

test.after.always(async () => {
  await proxy?.stop();
  await world?.destroy();
});

kernelTest('an HTTPS server with tls.mode SIMPLE terminates TLS with the credentialName certificate and routes by Host', async (t) => {
  const mark = proxy.accessLog.length;
  const r = await world.inPod(
    ['curl', '-sS', '-m', '10', '--cacert', ca.caCert, '--resolve', `${HTTPBIN.host}:443:127.0.0.1`, '-w', '\n%{http_code}', `https://${HTTPBIN.host}/headers`],
    { reject: false },
  );
  t.is(r.exitCode, 0, r.stderr);
  t.regex(String(r.stdout), /"Host": "httpbin\.org"[\s\S]*\n200$/);
  const line = parseLogLine(await proxy.nextAccessLog(/"GET \/headers HTTP\/1\.1" 200/, mark));
  t.is(line.cluster, 'outbound|80||httpbin.org');
  t.is(line.upstreamHost, `${HTTPBIN.address}:80`);
});

kernelTest('a credentialName without tls.crt refuses the config, naming the field; the running one stays', async (t) => {
  writeFileSync(configFile, seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, gateway('missing-credential')));
  t.false(await proxy.reload());
  t.regex(proxy.logs.at(-1)!, /Gateway default\/istio-egressgateway spec\.servers\[0\]\.tls\.credentialName: \\"missing-credential\/tls\.crt\\".*readable PEM file \(ENOENT/);
});
