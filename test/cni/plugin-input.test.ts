/**
 * interpose-cni's input checks: the configuration's keys and values, CNI_* and CNI_ARGS, and
 * which pods get rules. Pure functions, plus the built plugin for what reaches stdout and log_file.
 */
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCniArgs, readCniEnvironment } from '../../src/cni/cni-environment.js';
import { CniError } from '../../src/cni/cni-error.js';
import { parsePluginConfig } from '../../src/cni/plugin-config.js';
import { podInterception } from '../../src/cni/pod-interception.js';
import { PLUGIN } from './helpers/cni-network.js';
import { INJECTED } from './helpers/kube-stand-in.js';

const base = { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'interpose-cni' };
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return { code: err.code, msg: err.message };
    throw err;
  }
  return undefined;
};

test('the configuration accepts its own keys and the spec\'s, with istio-cni defaults', (t) => {
  const c = parsePluginConfig(JSON.stringify({ ...base, kubeconfig: '/k', log_file: '/l', args: {}, capabilities: {}, dns: {}, ipam: {} }));
  t.deepEqual(c.excludeNamespaces, ['kube-system']);
  t.is(c.nativeNftables, false);
  t.is(c.logLevel, 'info');
  t.is(c.kubeconfig, '/k');
});

test('an unknown key is code 2 naming it; bad values are code 7 naming the key', (t) => {
  t.is(code(() => parsePluginConfig(JSON.stringify({ ...base, exclude_namespace: ['x'] })))!.code, 2);
  t.regex(code(() => parsePluginConfig(JSON.stringify({ ...base, exclude_namespace: ['x'] })))!.msg, /unsupported key "exclude_namespace"/);
  t.regex(code(() => parsePluginConfig(JSON.stringify({ ...base, native_nftables: 'yes' })))!.msg, /"native_nftables".*"yes".*true or false/);
  t.is(code(() => parsePluginConfig(JSON.stringify({ ...base, plugin_log_level: 'loud' })))!.code, 7);
  t.is(code(() => parsePluginConfig(JSON.stringify({ ...base, exclude_namespaces: 'kube-system' })))!.code, 7);
  t.is(code(() => parsePluginConfig(JSON.stringify({ ...base, cniVersion: '0.3.1' })))!.code, 1);
  t.is(code(() => parsePluginConfig('{'))!.code, 6);
  t.is(code(() => parsePluginConfig('[]'))!.code, 6);
});

test('CNI_ARGS: the pod, IgnoreUnknown, and refusals', (t) => {
  t.deepEqual(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u1;FOO=bar'), {
    namespace: 'shop',
    name: 'web',
    infraContainerId: 'abc',
    uid: 'u1',
  });
  t.is(parseCniArgs(''), undefined);
  t.regex(code(() => parseCniArgs('K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;FOO=1'))!.msg, /"FOO" is unknown/);
  // Half a pod name is not a Kubernetes pod (istio-cni leaves it alone): podman passes only K8S_POD_NAME.
  t.is(parseCniArgs('K8S_POD_NAMESPACE=a'), undefined);
  t.is(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=interpose-pod-1'), undefined);
  t.is(code(() => parseCniArgs('x'.repeat(20_000)))!.code, 4);
});

test('CNI_* per command: DEL takes an empty CNI_NETNS, ADD does not', (t) => {
  const env = { CNI_CONTAINERID: 'abc', CNI_IFNAME: 'eth0', CNI_NETNS: '' };
  t.is(readCniEnvironment({ ...env, CNI_COMMAND: 'DEL' }).netns, '');
  t.regex(code(() => readCniEnvironment({ ...env, CNI_COMMAND: 'ADD' }))!.msg, /CNI_NETNS is not set/);
  t.regex(code(() => readCniEnvironment({ ...env, CNI_COMMAND: 'ADD', CNI_NETNS: 'relative' }))!.msg, /absolute path/);
  t.regex(code(() => readCniEnvironment({ ...env, CNI_COMMAND: 'PUT' }))!.msg, /CNI_COMMAND "PUT"/);
  t.is(readCniEnvironment({ CNI_COMMAND: 'STATUS' }).command, 'STATUS');
});

test('which pods get rules, as istio-cni decides', (t) => {
  const pod = (annotations: Record<string, string>, extra: object = {}) => ({ annotations, hostNetwork: false, proxyEnv: {}, ...extra });
  t.false(podInterception(pod({})).intercept);
  t.false(podInterception(pod({ ...INJECTED, 'sidecar.istio.io/inject': 'false' })).intercept);
  t.false(podInterception(pod({ ...INJECTED, 'sidecar.istio.io/interceptionMode': 'NONE' })).intercept);
  t.false(podInterception(pod(INJECTED, { hostNetwork: true })).intercept);
  const yes = podInterception(pod({ ...INJECTED, 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432' }));
  t.true(yes.intercept);
  t.true(yes.intercept && yes.argv.join(' ').includes('-o 5432'));
  t.false(yes.intercept && yes.argv.includes('--redirect-dns'));
  const dns = podInterception(pod(INJECTED, { proxyEnv: { ISTIO_META_DNS_CAPTURE: 'true' } }));
  t.true(dns.intercept && dns.argv.includes('--redirect-dns') && dns.argv.includes('--capture-all-dns'));
});

test('the plugin prints CNI errors as JSON, exits 1, and appends them to log_file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-cni-input-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'cni.log');
  const run = (input: string, env: Record<string, string> = {}) =>
    execa('node', [PLUGIN], { input, reject: false, env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'eth0', ...env } });
  const bad = await run(JSON.stringify({ ...base, log_file: log, kubeconfigs: '/x' }));
  t.is(bad.exitCode, 1);
  t.like(JSON.parse(String(bad.stdout)), { cniVersion: '1.0.0', code: 2 });
  t.regex(readFileSync(log, 'utf8'), /error .*ADD failed \(code 2\): unsupported key "kubeconfigs"/);
  const huge = await run(`{"cniVersion":"1.0.0","x":"${'a'.repeat(2 << 20)}"}`);
  t.is(JSON.parse(String(huge.stdout)).code, 6);
  t.is(String(huge.stderr), '');
  const noPrev = await run(JSON.stringify({ ...base, log_file: log }));
  t.regex(JSON.parse(String(noPrev.stdout)).msg, /chained plugin: ADD got no prevResult/);
  const version = await run('{"cniVersion":"1.1.0"}', { CNI_COMMAND: 'VERSION' });
  t.deepEqual(JSON.parse(String(version.stdout)), { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  const status = await run(JSON.stringify({ ...base, cniVersion: '1.0.0' }), { CNI_COMMAND: 'STATUS' });
  t.is(JSON.parse(String(status.stdout)).code, 1, 'STATUS needs 1.1.0');
  const status11 = await run(JSON.stringify({ ...base, cniVersion: '1.1.0' }), { CNI_COMMAND: 'STATUS' });
  t.is(status11.exitCode, 0, String(status11.stdout));
});
