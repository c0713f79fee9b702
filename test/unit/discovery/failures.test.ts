import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discover } from '../../../src/discovery/discover.js';
import { DiscoveryError } from '../../../src/discovery/discovery-error.js';
import { CommandFailedError } from '../../../src/errors/index.js';
import type { DiscoveryOptions, Platform } from '../../../src/discovery/types.js';
import { fakeClis } from '../../helpers/fake-cli.js';

/** One representative call per CLI: the platform, its options, the CLI and the argv it runs. */
const CASES: ReadonlyArray<{ platform: Platform; options: Partial<DiscoveryOptions>; tool: string; args: string; install: RegExp }> = [
  { platform: 'gke', options: { cluster: 'nope', zone: 'us-central1-a' }, tool: 'gcloud', args: 'container clusters describe nope --zone us-central1-a --format json', install: /cloud\.google\.com\/sdk/ },
  { platform: 'eks', options: { cluster: 'nope', region: 'us-west-2' }, tool: 'aws', args: 'eks describe-cluster --name nope --region us-west-2 --output json', install: /getting-started-install/ },
  { platform: 'aks', options: { cluster: 'nope', resourceGroup: 'demo-rg' }, tool: 'az', args: 'aks show --resource-group demo-rg --name nope --output json', install: /install-azure-cli/ },
  { platform: 'iks', options: { cluster: 'nope' }, tool: 'ibmcloud', args: 'ks cluster get --cluster nope --output json', install: /cloud\.ibm\.com\/docs\/cli/ },
  { platform: 'openshift', options: {}, tool: 'oc', args: 'get network.config.openshift.io cluster -o json', install: /openshift_cli/ },
  { platform: 'kubeadm', options: {}, tool: 'kubectl', args: '-n kube-system get configmap kubeadm-config -o json', install: /kubernetes\.io\/docs\/tasks\/tools/ },
];

const EXPIRED: Record<string, { fixture: string; fix: RegExp }> = {
  gcloud: { fixture: 'gcloud-expired.stderr', fix: /gcloud auth login/ },
  aws: { fixture: 'aws-expired.stderr', fix: /aws sso login/ },
  az: { fixture: 'az-expired.stderr', fix: /az login/ },
  ibmcloud: { fixture: 'ibmcloud-expired.stderr', fix: /ibmcloud login/ },
  oc: { fixture: 'oc-expired.stderr', fix: /oc login/ },
  kubectl: { fixture: 'kubectl-expired.stderr', fix: /credentials/ },
};

const NOT_FOUND: Record<string, { fixture: string; fix: RegExp }> = {
  gcloud: { fixture: 'gcloud-not-found.stderr', fix: /gcloud container clusters list/ },
  aws: { fixture: 'aws-not-found.stderr', fix: /aws eks list-clusters --region us-west-2/ },
  az: { fixture: 'az-not-found.stderr', fix: /az aks list/ },
  ibmcloud: { fixture: 'ibmcloud-not-found.stderr', fix: /ibmcloud ks cluster ls/ },
  oc: { fixture: 'oc-not-openshift.stderr', fix: /not look like an OpenShift 4 cluster/ },
  kubectl: { fixture: 'kubectl-configmap-not-found.stderr', fix: /not set up by kubeadm/ },
};

for (const c of CASES) {
  test(`${c.platform}: ${c.tool} missing names the CLI and where to install it`, async (t) => {
    const empty = await mkdtemp(join(tmpdir(), 'interpose-empty-path-'));
    t.teardown(() => rm(empty, { recursive: true, force: true }));
    const err = await t.throwsAsync(discover(c.platform, { timeoutMs: 10_000, env: { PATH: empty }, ...c.options }), {
      instanceOf: DiscoveryError,
    });
    t.regex(err!.message, new RegExp(`the ${c.tool} CLI is not installed`));
    t.regex(err!.message, c.install);
  });

  test(`${c.platform}: ${c.tool} login expired names the login command`, async (t) => {
    const e = EXPIRED[c.tool]!;
    const fake = await fakeClis(t, { [c.tool]: [{ args: c.args, stderrFixture: e.fixture, exit: 1 }] });
    const err = await t.throwsAsync(discover(c.platform, { timeoutMs: 10_000, env: fake.env, ...c.options }), { instanceOf: DiscoveryError });
    t.regex(err!.message, new RegExp(`^${c.tool}: not logged in or the login expired`));
    t.regex(err!.message, e.fix);
  });

  test(`${c.platform}: ${c.tool} not found says what to check`, async (t) => {
    const n = NOT_FOUND[c.tool]!;
    const fake = await fakeClis(t, { [c.tool]: [{ args: c.args, stderrFixture: n.fixture, exit: 1 }] });
    const err = await t.throwsAsync(discover(c.platform, { timeoutMs: 10_000, env: fake.env, ...c.options }), { instanceOf: DiscoveryError });
    t.regex(err!.message, new RegExp(`^${c.tool}: not found`));
    t.regex(err!.message, n.fix);
  });

  test(`${c.platform}: ${c.tool} printing something that is not JSON is malformed output`, async (t) => {
    const fake = await fakeClis(t, { [c.tool]: [{ args: c.args, stdout: 'Cluster: nope\nStatus: RUNNING\n' }] });
    const err = await t.throwsAsync(discover(c.platform, { timeoutMs: 10_000, env: fake.env, ...c.options }), { instanceOf: DiscoveryError });
    t.regex(err!.message, /printed output that is not JSON: "Cluster: nope/);
  });

  test(`${c.platform}: ${c.tool} hanging is stopped at the timeout`, async (t) => {
    const fake = await fakeClis(t, { [c.tool]: [{ args: c.args, hang: true }] });
    const err = await t.throwsAsync(discover(c.platform, { timeoutMs: 300, env: fake.env, ...c.options }), { instanceOf: DiscoveryError });
    t.regex(err!.message, /did not answer within 0\.3 s and was stopped/);
    t.regex(err!.message, /--timeout/);
  });
}

test('JSON of the wrong shape or with a bad CIDR is reported with the field', async (t) => {
  const fake = await fakeClis(t, {
    gcloud: [
      { args: 'container clusters describe a --format json', stdout: '{"name":"a","status":"RUNNING"}' },
      { args: 'container clusters describe b --format json', stdout: '{"clusterIpv4Cidr":"10.8.0.0/14","servicesIpv4Cidr":"10.12.0.300/20"}' },
      { args: 'container clusters describe c --format json', stdout: '[1,2]' },
    ],
    aws: [{ args: 'eks describe-cluster --name d --output json', stdout: '{"cluster":{"name":"d"}}' }],
    oc: [{ args: 'get network.config.openshift.io cluster -o json', stdout: '{"spec":{"clusterNetwork":[{"cidr":42}],"serviceNetwork":[]}}' }],
  });
  const a = await t.throwsAsync(discover('gke', { cluster: 'a', timeoutMs: 10_000, env: fake.env }));
  t.regex(a!.message, /neither clusterIpv4Cidr nor servicesIpv4Cidr/);
  const b = await t.throwsAsync(discover('gke', { cluster: 'b', timeoutMs: 10_000, env: fake.env }));
  t.regex(b!.message, /servicesIpv4Cidr: "10\.12\.0\.300\/20" is not a CIDR/);
  const c = await t.throwsAsync(discover('gke', { cluster: 'c', timeoutMs: 10_000, env: fake.env }));
  t.regex(c!.message, /expected an object at the top level/);
  const d = await t.throwsAsync(discover('eks', { cluster: 'd', timeoutMs: 10_000, env: fake.env }));
  t.regex(d!.message, /expected an object at cluster\.kubernetesNetworkConfig/);
  const o = await t.throwsAsync(discover('openshift', { timeoutMs: 10_000, env: fake.env }));
  t.regex(o!.message, /clusterNetwork\[\]\.cidr: expected a CIDR string, found 42/);
});

test('an unrecognised failure keeps the CLI’s own stderr and exit code', async (t) => {
  const fake = await fakeClis(t, {
    az: [{ args: 'aks show --resource-group g --name n --output json', stderr: 'ERROR: something nobody has seen before\n', exit: 3 }],
  });
  const err = await t.throwsAsync(discover('aks', { cluster: 'n', resourceGroup: 'g', timeoutMs: 10_000, env: fake.env }), {
    instanceOf: CommandFailedError,
  });
  t.regex(err!.message, /az aks show --resource-group g --name n --output json exited 3: ERROR: something nobody has seen before/);
});

test('kubectl that cannot reach a cluster says so', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: [{ args: '-n kube-system get pods -l component=kube-apiserver -o json', stderrFixture: 'kubectl-no-cluster.stderr', exit: 1 }],
  });
  const err = await t.throwsAsync(discover('minikube', { timeoutMs: 10_000, env: fake.env }), { instanceOf: DiscoveryError });
  t.regex(err!.message, /kubectl cannot reach a cluster/);
  t.regex(err!.message, /kubectl config current-context/);
});

test('ibmcloud without the ks plug-in names the plug-in to install', async (t) => {
  const fake = await fakeClis(t, {
    ibmcloud: [
      {
        args: 'ks cluster get --cluster demo --output json',
        stderr: "FAILED\n'ks' is not a registered command. See 'ibmcloud help'.\n",
        exit: 1,
      },
    ],
  });
  const err = await t.throwsAsync(discover('iks', { cluster: 'demo', timeoutMs: 10_000, env: fake.env }));
  t.regex(err!.message, /ibmcloud plugin install container-service/);
});
