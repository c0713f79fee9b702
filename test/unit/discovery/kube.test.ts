import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discover } from '../../../src/discovery/discover.js';
import { includeRanges } from '../../../src/discovery/cidrs.js';
import { FIXTURES, fakeClis } from '../../helpers/fake-cli.js';

const opts = (env: NodeJS.ProcessEnv, more: object = {}) => ({ timeoutMs: 10_000, env, ...more });

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'interpose-discovery-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('openshift: status.clusterNetwork and status.serviceNetwork', async (t) => {
  const fake = await fakeClis(t, {
    oc: [{ args: 'get network.config.openshift.io cluster -o json', stdoutFixture: 'openshift-network.json' }],
  });
  const r = await discover('openshift', opts(fake.env));
  t.deepEqual(includeRanges(r.findings), ['10.128.0.0/14', '172.30.0.0/16']);
  t.regex(r.findings[0]!.source, /status\.clusterNetwork/);
});

test('openshift dual-stack before the operator reports: spec is used and said', async (t) => {
  const fake = await fakeClis(t, {
    oc: [{ args: '--context ocp get network.config.openshift.io cluster -o json', stdoutFixture: 'openshift-network-dual-stack.json' }],
  });
  const r = await discover('openshift', opts(fake.env, { context: 'ocp' }));
  t.deepEqual(includeRanges(r.findings), ['10.128.0.0/14', 'fd01::/48', '172.30.0.0/16', 'fd02::/112']);
  t.true(r.notes.some((n) => /spec/.test(n)));
});

const kubeadmArgs = '-n kube-system get configmap kubeadm-config -o json';

test('kind dual-stack: comma-separated podSubnet and serviceSubnet from kubeadm-config', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: [{ args: `--context kind-kind ${kubeadmArgs}`, stdoutFixture: 'kind-kubeadm-config-dual-stack.json' }],
  });
  const r = await discover('kind', opts(fake.env, { context: 'kind-kind' }));
  t.is(r.platform, 'kind');
  t.deepEqual(includeRanges(r.findings), ['10.244.0.0/16', 'fd00:10:244::/56', '10.96.0.0/16', 'fd00:10:96::/112']);
});

test('kubeadm IPv4 and IPv6-only clusters', async (t) => {
  const v4 = await fakeClis(t, { kubectl: [{ args: kubeadmArgs, stdoutFixture: 'kubeadm-config-ipv4.json' }] });
  t.deepEqual(includeRanges((await discover('kubeadm', opts(v4.env))).findings), ['192.168.0.0/16', '10.96.0.0/12']);
  const v6 = await fakeClis(t, { kubectl: [{ args: kubeadmArgs, stdoutFixture: 'kubeadm-config-ipv6.json' }] });
  const r6 = await discover('kubeadm', opts(v6.env));
  t.deepEqual(includeRanges(r6.findings), ['fd00:10:244::/56', 'fd00:10:96::/112']);
  t.true(r6.findings.every((f) => f.family === 6));
});

test('kubeadm without podSubnet: says the CNI chose it, and marks the default serviceSubnet', async (t) => {
  const fake = await fakeClis(t, { kubectl: [{ args: kubeadmArgs, stdoutFixture: 'kubeadm-config-no-pod-subnet.json' }] });
  const r = await discover('kubeadm', opts(fake.env));
  t.deepEqual(includeRanges(r.findings), ['10.96.0.0/12']);
  t.true(r.findings[0]!.assumedDefault);
  t.true(r.notes.some((n) => /no networking\.podSubnet/.test(n)));
});

const podsArgs = (c: string) => `-n kube-system get pods -l component=${c} -o json`;

test('minikube: --service-cluster-ip-range and --cluster-cidr from the static pods', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: [
      { args: `--context minikube ${podsArgs('kube-apiserver')}`, stdoutFixture: 'minikube-apiserver.json' },
      { args: `--context minikube ${podsArgs('kube-controller-manager')}`, stdoutFixture: 'minikube-controller-manager.json' },
    ],
  });
  const r = await discover('minikube', opts(fake.env, { context: 'minikube' }));
  t.deepEqual(includeRanges(r.findings), ['10.244.0.0/16', '10.96.0.0/12']);
  t.regex(r.findings.find((f) => f.role === 'pod')!.source, /--cluster-cidr/);
});

test('docker-desktop: dual-stack service range; no --cluster-cidr is said, not guessed', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: [
      { args: podsArgs('kube-apiserver'), stdoutFixture: 'docker-desktop-apiserver.json' },
      { args: podsArgs('kube-controller-manager'), stdoutFixture: 'docker-desktop-controller-manager.json' },
    ],
  });
  const r = await discover('docker-desktop', opts(fake.env));
  t.deepEqual(includeRanges(r.findings), ['10.96.0.0/12', 'fd00:10:96::/112']);
  t.true(r.notes.some((n) => /no --cluster-cidr/.test(n)));
});

test('minikube with no API server pod: a clear error', async (t) => {
  const fake = await fakeClis(t, { kubectl: [{ args: podsArgs('kube-apiserver'), stdoutFixture: 'empty-list.json' }] });
  const err = await t.throwsAsync(discover('minikube', opts(fake.env)));
  t.regex(err!.message, /no kube-apiserver pod/);
});

test('k3s: server flags from the k3s.io/node-args annotation, dual-stack', async (t) => {
  const proc = await tempDir(t);
  const fake = await fakeClis(t, { kubectl: [{ args: 'get nodes -o json', stdoutFixture: 'nodes-k3s.json' }] });
  const missing = await t.throwsAsync(discover('k3s', opts(fake.env, { procRoot: proc, configFile: join(proc, 'absent.yaml') })));
  // An explicit --config that does not exist is an error …
  t.regex(missing!.message, /cannot read the k3s config/);
  // … while the default location may simply be absent.
  const ok = await discover('k3s', { timeoutMs: 10_000, env: fake.env, procRoot: proc });
  t.deepEqual(includeRanges(ok.findings), ['10.52.0.0/16', '2001:db8:42::/56', '10.53.0.0/16', '2001:db8:43::/112']);
  t.false(ok.findings.some((f) => f.assumedDefault));
  t.regex(ok.findings[0]!.source, /k3s\.io\/node-args --cluster-cidr/);
});

test('k3s: config file, then a local server process, then the defaults, each said', async (t) => {
  const proc = await tempDir(t);
  await mkdir(join(proc, '4242'));
  await writeFile(join(proc, '4242', 'cmdline'), ['/usr/local/bin/k3s', 'server', '--service-cidr', '10.63.0.0/16', ''].join('\0'));
  await mkdir(join(proc, '17'));
  await writeFile(join(proc, '17', 'cmdline'), ['/usr/sbin/sshd', '-D', ''].join('\0'));
  // kubectl answers, but the node-args carry no CIDR flags.
  const fake = await fakeClis(t, { kubectl: [{ args: 'get nodes -o json', stdoutFixture: 'nodes-k3s-plain.json' }] });
  const r = await discover('k3s', opts(fake.env, { procRoot: proc, configFile: join(FIXTURES, 'k3s-config.yaml') }));
  t.deepEqual(includeRanges(r.findings), ['10.62.0.0/16', '10.63.0.0/16']);
  t.regex(r.findings[0]!.source, /k3s-config\.yaml: cluster-cidr/);
  t.regex(r.findings[1]!.source, /process 4242/);

  // No kubectl at all, nothing local: the defaults, marked as such.
  const empty = await tempDir(t);
  await writeFile(join(empty, 'config.yaml'), '# nothing set\n');
  const d = await discover('k3s', { timeoutMs: 10_000, env: { PATH: empty }, procRoot: empty, configFile: join(empty, 'config.yaml') });
  t.deepEqual(includeRanges(d.findings), ['10.42.0.0/16', '10.43.0.0/16']);
  t.true(d.findings.every((f) => f.assumedDefault));
  t.true(d.notes.some((n) => /kubectl CLI is not installed/.test(n)));
  t.true(d.notes.some((n) => /assuming k3s's default 10\.42\.0\.0\/16/.test(n)));
});

test('icp: network_cidr and service_cluster_ip_range from cluster/config.yaml, host bits cleared', async (t) => {
  const r = await discover('icp', { timeoutMs: 1000, configFile: join(FIXTURES, 'icp-config.yaml') });
  t.deepEqual(includeRanges(r.findings), ['10.1.0.0/16', '10.0.0.0/24']);
  t.false(r.findings.some((f) => f.assumedDefault));
});

test('icp: a commented-out key falls back to the installer default, said plainly', async (t) => {
  const r = await discover('icp', { timeoutMs: 1000, configFile: join(FIXTURES, 'icp-config-commented.yaml') });
  t.deepEqual(includeRanges(r.findings), ['10.1.0.0/16', '10.0.0.0/16']);
  t.true(r.findings.find((f) => f.role === 'pod')!.assumedDefault);
  t.true(r.notes.some((n) => /network_cidr is not set/.test(n)));
});

test('icp: missing and malformed config files', async (t) => {
  const dir = await tempDir(t);
  const missing = await t.throwsAsync(discover('icp', { timeoutMs: 1000, configFile: join(dir, 'nope.yaml') }));
  t.regex(missing!.message, /cannot read the ICP configuration .*nope\.yaml: ENOENT/);
  await writeFile(join(dir, 'bad.yaml'), 'network_cidr: [10.1.0.0/16\n  : :');
  const bad = await t.throwsAsync(discover('icp', { timeoutMs: 1000, configFile: join(dir, 'bad.yaml') }));
  t.regex(bad!.message, /not valid YAML/);
  await writeFile(join(dir, 'notcidr.yaml'), 'network_cidr: 10.1.0.0/33\n');
  const notCidr = await t.throwsAsync(discover('icp', { timeoutMs: 1000, configFile: join(dir, 'notcidr.yaml') }));
  t.regex(notCidr!.message, /network_cidr: "10\.1\.0\.0\/33" is not a CIDR/);
});

test('kind --cluster NAME and minikube --cluster PROFILE pick their kube contexts', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: [
      { args: `--context kind-dev ${kubeadmArgs}`, stdoutFixture: 'kind-kubeadm-config-dual-stack.json' },
      { args: `--context mk2 ${podsArgs('kube-apiserver')}`, stdoutFixture: 'minikube-apiserver.json' },
      { args: `--context mk2 ${podsArgs('kube-controller-manager')}`, stdoutFixture: 'minikube-controller-manager.json' },
    ],
  });
  t.is(includeRanges((await discover('kind', opts(fake.env, { cluster: 'dev' }))).findings).length, 4);
  t.deepEqual(includeRanges((await discover('minikube', opts(fake.env, { cluster: 'mk2' }))).findings), ['10.244.0.0/16', '10.96.0.0/12']);
});
