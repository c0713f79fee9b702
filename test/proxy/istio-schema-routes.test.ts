/**
 * The widening case, with curl in a pod namespace and the proxy between it and the httpbin.org
 * stand-in: a route gated on a header (or a query parameter) must not serve requests without
 * it. Before the matchers were implemented, `headers:` parsed as an empty match, and an empty
 * match takes every request.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { isRoot, kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import { HTTPBIN } from '../../src/lab/world/addresses.js';
import { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { installIstioRules } from './helpers/rules.js';
import { parseLogLine } from './helpers/access-log-line.js';
import * as seed from '../../src/lab/seed-resources.js';

let world: World;
let proxy: ProxyProcess;

const gated = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-canary}
spec:
  hosts: [httpbin.org]
  http:
  - name: canary
    match:
    - headers: {x-canary: {exact: "yes"}}
    - queryParams: {canary: {exact: "1"}}
    route: [{destination: {host: httpbin.org}}]
`;

test.before(async () => {
  if (!isRoot) return;
  world = await World.create({ prefix: 'hdr' });
  const configFile = `${world.dir}/mesh.yaml`;
  writeFileSync(configFile, seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.httpbinServiceEntry, gated));
  await installIstioRules(world.pod.name, ['-i', '*']);
  proxy = await ProxyProcess.start(world.pod.name, ['--config', configFile, '--uid', '1337', '--gid', '1337', '--metrics-port', '0']);
});

test.after.always(async () => {
  await proxy?.stop();
  await world?.destroy();
});

async function curlStatus(args: string[]): Promise<string> {
  const r = await world.inPod(['curl', '-sS', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', ...args], { reject: false });
  return String(r.stdout);
}

kernelTest('a header-gated route serves only requests with the header (or the query parameter); others get 404 NR', async (t) => {
  const mark = proxy.accessLog.length;
  t.is(await curlStatus([`http://${HTTPBIN.host}/headers`]), '404', 'no header: no route');
  t.is(await curlStatus(['-H', 'x-canary: no', `http://${HTTPBIN.host}/headers`]), '404', 'wrong value: no route');
  t.is(await curlStatus(['-H', 'X-Canary: yes', `http://${HTTPBIN.host}/headers`]), '200');
  t.is(await curlStatus([`http://${HTTPBIN.host}/get?canary=1`]), '200', 'the second match block is OR-ed');
  const refused = parseLogLine(await proxy.nextAccessLog(/"GET \/headers HTTP\/1\.1" 404/, mark));
  t.is(refused.flags, 'NR');
  const served = parseLogLine(await proxy.nextAccessLog(/"GET \/headers HTTP\/1\.1" 200/, mark));
  t.is(served.cluster, 'outbound|80||httpbin.org');
});
