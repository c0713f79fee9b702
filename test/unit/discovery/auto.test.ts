import test from 'ava';
import { detectPlatform } from '../../../src/discovery/auto.js';
import { discover } from '../../../src/discovery/discover.js';
import { includeRanges } from '../../../src/discovery/cidrs.js';
import { fakeClis, type FakeRule } from '../../helpers/fake-cli.js';

/** `kubectl config view --minify -o json` as kubectl prints it (credentials redacted). */
function configView(context: string, server: string): string {
  return JSON.stringify(
    {
      kind: 'Config',
      apiVersion: 'v1',
      preferences: {},
      clusters: [{ name: context, cluster: { server, 'certificate-authority-data': 'DATA+OMITTED' } }],
      users: [{ name: context, user: { token: 'REDACTED' } }],
      contexts: [{ name: context, context: { cluster: context, user: context } }],
      'current-context': context,
    },
    null,
    4,
  );
}

function kubectl(context: string, server: string, nodes: string, more: FakeRule[] = []): FakeRule[] {
  return [
    { args: 'config view --minify -o json', stdout: configView(context, server) },
    { args: 'get nodes -o json', stdoutFixture: nodes },
    ...more,
  ];
}

const CASES = [
  { nodes: 'nodes-openshift.json', context: 'default/api-ocp-example-test:6443/kube:admin', server: 'https://api.ocp.example.test:6443', platform: 'openshift', why: /node\.openshift\.io\/os_id=rhcos/ },
  { nodes: 'nodes-gke.json', context: 'gke_demo-project_us-central1-a_demo', server: 'https://203.0.113.17', platform: 'gke', why: /zone us-central1-a, cluster demo/ },
  { nodes: 'nodes-eks.json', context: 'arn:aws:eks:us-west-2:111122223333:cluster/demo', server: 'https://0A1B2C3D.gr7.us-west-2.eks.amazonaws.com', platform: 'eks', why: /region us-west-2, cluster demo/ },
  { nodes: 'nodes-aks.json', context: 'demo', server: 'https://demo-rg-demo-0a1b2c-1a2b3c4d.hcp.eastus.azmk8s.io:443', platform: 'aks', why: /resource group demo-rg/ },
  { nodes: 'nodes-iks.json', context: 'demo/cn1a2b3c4d5e6f7g8h9i', server: 'https://c100.us-south.containers.cloud.ibm.com:30123', platform: 'iks', why: /cluster demo$/ },
  { nodes: 'nodes-k3s.json', context: 'default', server: 'https://127.0.0.1:6443', platform: 'k3s', why: /k3s\.io\/node-args/ },
  { nodes: 'nodes-minikube.json', context: 'minikube', server: 'https://192.168.49.2:8443', platform: 'minikube', why: /minikube\.k8s\.io\/name=minikube/ },
  { nodes: 'nodes-docker-desktop.json', context: 'docker-desktop', server: 'https://kubernetes.docker.internal:6443', platform: 'docker-desktop', why: /docker-desktop/ },
  { nodes: 'nodes-kind.json', context: 'kind-kind', server: 'https://127.0.0.1:41234', platform: 'kind', why: /kind:\/\/ providerID/ },
  { nodes: 'nodes-kubeadm.json', context: 'kubernetes-admin@kubernetes', server: 'https://192.0.2.10:6443', platform: 'kubeadm', why: /kubeadm\.alpha\.kubernetes\.io\/cri-socket/ },
] as const;

for (const c of CASES) {
  test(`auto picks ${c.platform} and says why`, async (t) => {
    const fake = await fakeClis(t, { kubectl: kubectl(c.context, c.server, c.nodes) });
    const d = await detectPlatform({ timeoutMs: 10_000, env: fake.env });
    t.is(d.platform, c.platform);
    t.regex(d.reason, c.why);
  });
}

test('auto on GKE fills in cluster and zone and runs gcloud with them', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: kubectl('gke_demo-project_us-central1-a_demo', 'https://203.0.113.17', 'nodes-gke.json'),
    gcloud: [{ args: 'container clusters describe demo --zone us-central1-a --project demo-project --format json', stdoutFixture: 'gke-zonal.json' }],
  });
  const r = await discover('auto', { timeoutMs: 10_000, env: fake.env });
  t.is(r.platform, 'gke');
  t.deepEqual(includeRanges(r.findings), ['10.8.0.0/14', '10.12.0.0/20']);
  t.regex(r.detection!, /cloud\.google\.com\/gke-nodepool=default-pool/);
});

test('auto: what the user passed wins over what the context suggests', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: kubectl('arn:aws:eks:us-west-2:111122223333:cluster/demo', 'https://x.eks.amazonaws.com', 'nodes-eks.json'),
    aws: [
      { args: 'eks describe-cluster --name other --region us-west-2 --output json', stdoutFixture: 'eks-describe-ipv4.json' },
      { args: 'eks list-addons --cluster-name other --region us-west-2 --output json', stdoutFixture: 'eks-addons-none.json' },
    ],
  });
  const r = await discover('auto', { cluster: 'other', timeoutMs: 10_000, env: fake.env });
  t.is(r.platform, 'eks');
  t.deepEqual(includeRanges(r.findings), ['10.100.0.0/16']);
});

test('auto on kind goes on to read kubeadm-config through the same context', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: [
      { args: '--context kind-kind config view --minify -o json', stdout: configView('kind-kind', 'https://127.0.0.1:41234') },
      { args: '--context kind-kind get nodes -o json', stdoutFixture: 'nodes-kind.json' },
      { args: '--context kind-kind -n kube-system get configmap kubeadm-config -o json', stdoutFixture: 'kind-kubeadm-config-dual-stack.json' },
    ],
  });
  const r = await discover('auto', { context: 'kind-kind', timeoutMs: 10_000, env: fake.env });
  t.is(r.platform, 'kind');
  t.is(includeRanges(r.findings).length, 4);
});

test('auto that cannot tell says what it saw and how to choose', async (t) => {
  const fake = await fakeClis(t, { kubectl: kubectl('prod', 'https://192.0.2.20:6443', 'nodes-unknown.json') });
  const err = await t.throwsAsync(detectPlatform({ timeoutMs: 10_000, env: fake.env }));
  t.regex(err!.message, /cannot tell the platform from context prod, API server https:\/\/192\.0\.2\.20:6443 and node worker-7/);
  t.regex(err!.message, /--platform/);
});

test('auto on AKS with a customised node resource group asks for --resource-group', async (t) => {
  const fake = await fakeClis(t, {
    kubectl: [
      { args: 'config view --minify -o json', stdout: configView('other-name', 'https://x.hcp.eastus.azmk8s.io:443') },
      { args: 'get nodes -o json', stdoutFixture: 'nodes-aks.json' },
    ],
  });
  const d = await detectPlatform({ timeoutMs: 10_000, env: fake.env });
  t.is(d.platform, 'aks');
  t.is(d.options.resourceGroup, undefined);
  t.regex(d.reason, /pass --resource-group/);
  const err = await t.throwsAsync(discover('auto', { timeoutMs: 10_000, env: fake.env }));
  t.regex(err!.message, /--resource-group/);
});
