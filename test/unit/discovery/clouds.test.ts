import test from 'ava';
import { discover } from '../../../src/discovery/discover.js';
import { includeRanges } from '../../../src/discovery/cidrs.js';
import { eksCalls, fakeClis } from '../../helpers/fake-cli.js';

const opts = (env: NodeJS.ProcessEnv, more: object = {}) => ({ timeoutMs: 10_000, env, ...more });

test('gke zonal: clusterIpv4Cidr and servicesIpv4Cidr from gcloud describe', async (t) => {
  const fake = await fakeClis(t, {
    gcloud: [{ args: 'container clusters describe demo --zone us-central1-a --format json', stdoutFixture: 'gke-zonal.json' }],
  });
  const r = await discover('gke', opts(fake.env, { cluster: 'demo', zone: 'us-central1-a' }));
  t.is(r.platform, 'gke');
  t.deepEqual(includeRanges(r.findings), ['10.8.0.0/14', '10.12.0.0/20']);
  t.regex(r.findings[0]!.source, /clusterIpv4Cidr$/);
  t.false(r.findings.some((f) => f.assumedDefault));
  t.deepEqual(await fake.calls('gcloud'), ['container clusters describe demo --zone us-central1-a --format json']);
});

test('gke regional dual-stack: adds the IPv6 subnet and service ranges', async (t) => {
  const fake = await fakeClis(t, {
    gcloud: [{ args: 'container clusters describe ds --region europe-west1 --project p1 --format json', stdoutFixture: 'gke-regional-dual-stack.json' }],
  });
  const r = await discover('gke', opts(fake.env, { cluster: 'ds', region: 'europe-west1', project: 'p1' }));
  t.deepEqual(includeRanges(r.findings), ['10.64.0.0/14', '2600:1900:4041:1c3::/64', '10.68.0.0/20', '2600:2d00:0:4:9a3c:1b2e::/112']);
  t.deepEqual(
    r.findings.map((f) => f.family),
    [4, 4, 6, 6],
  );
  t.true(r.notes.some((n) => /dual-stack/.test(n)));
});

test('eks with the vpc-cni add-on: service CIDR plus associated VPC blocks as pod ranges', async (t) => {
  const fake = await fakeClis(t, { aws: eksCalls('demo', { region: 'us-west-2', addons: 'eks-addons-vpc-cni.json' }) });
  const r = await discover('eks', opts(fake.env, { cluster: 'demo', region: 'us-west-2' }));
  // The disassociated 172.31.0.0/16 block must not appear.
  t.deepEqual(includeRanges(r.findings), ['192.168.0.0/16', '100.64.0.0/16', '10.100.0.0/16']);
  t.true(r.notes.some((n) => /Amazon VPC CNI: the vpc-cni add-on/.test(n)));
});

test('eks IPv6: serviceIpv6Cidr and the VPC IPv6 block', async (t) => {
  const fake = await fakeClis(t, { aws: eksCalls('v6', { region: 'eu-west-1', family: 6, addons: 'eks-addons-vpc-cni.json' }) });
  const r = await discover('eks', opts(fake.env, { cluster: 'v6', region: 'eu-west-1' }));
  t.deepEqual(includeRanges(r.findings), ['10.0.0.0/16', '2a05:d018:1b4:6e00::/56', 'fd7a:3e92:1c4b::/108']);
  t.deepEqual(r.findings.filter((f) => f.role === 'service').map((f) => f.family), [6]);
});

test('eks without the add-on lists only services and says how to add the VPC; --vpc-cni adds it', async (t) => {
  const fake = await fakeClis(t, { aws: eksCalls('demo', { addons: 'eks-addons-none.json' }) });
  const plain = await discover('eks', opts(fake.env, { cluster: 'demo' }));
  t.deepEqual(includeRanges(plain.findings), ['10.100.0.0/16']);
  t.true(plain.notes.some((n) => /--vpc-cni/.test(n)));
  const forced = await discover('eks', opts(fake.env, { cluster: 'demo', vpcCni: true }));
  t.deepEqual(includeRanges(forced.findings), ['192.168.0.0/16', '100.64.0.0/16', '10.100.0.0/16']);
});

/** `az aks show` of CLUSTER in GROUP, answered with FIXTURE. */
const aksShow = (group: string, cluster: string, fixture: string) => ({
  args: `aks show --resource-group ${group} --name ${cluster} --output json`,
  stdoutFixture: fixture,
});

// Both families' ranges are in networkProfile itself: one `az` call, no VNet lookup.
for (const c of [
  { network: 'kubenet', fixture: 'aks-kubenet.json', ranges: ['10.244.0.0/16', '10.0.0.0/16'] },
  {
    network: 'Azure CNI Overlay dual-stack',
    fixture: 'aks-overlay-dual-stack.json',
    ranges: ['10.244.0.0/16', 'fd12:3456:789a::/64', '10.0.0.0/16', 'fd12:3456:789a:1::/108'],
  },
]) {
  test(`aks ${c.network}: networkProfile podCidrs and serviceCidrs`, async (t) => {
    const fake = await fakeClis(t, { az: [aksShow('demo-rg', 'demo', c.fixture)] });
    const r = await discover('aks', opts(fake.env, { cluster: 'demo', resourceGroup: 'demo-rg' }));
    t.deepEqual(includeRanges(r.findings), c.ranges);
    t.deepEqual(await fake.calls('az'), ['aks show --resource-group demo-rg --name demo --output json']);
  });
}

test('aks classic Azure CNI: the node subnets’ VNet prefixes are the pod ranges', async (t) => {
  const vnet = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/cni-vnet';
  const fake = await fakeClis(t, {
    az: [
      aksShow('cni-rg', 'cni', 'aks-azure-cni.json'),
      { args: `network vnet show --ids ${vnet} --output json`, stdoutFixture: 'aks-vnet.json' },
    ],
  });
  const r = await discover('aks', opts(fake.env, { cluster: 'cni', resourceGroup: 'cni-rg' }));
  t.deepEqual(includeRanges(r.findings), ['10.240.0.0/16', '10.241.0.0/16', '10.2.0.0/24']);
  // Two pools share one VNet: it is read once.
  t.is((await fake.calls('az')).length, 2);
});

test('aks Azure CNI with pod subnets reads the pod subnet, and a managed VNet is listed from the node group', async (t) => {
  const podSubnet = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/dyn-vnet/subnets/pods';
  const fake = await fakeClis(t, {
    az: [
      aksShow('dyn-rg', 'dyn', 'aks-azure-cni-pod-subnet.json'),
      { args: `network vnet subnet show --ids ${podSubnet} --output json`, stdoutFixture: 'aks-subnet.json' },
      aksShow('managed-rg', 'managed', 'aks-azure-cni-managed-vnet.json'),
      { args: 'network vnet list --resource-group MC_managed-rg_managed_eastus --output json', stdoutFixture: 'aks-vnet-list.json' },
    ],
  });
  const dyn = await discover('aks', opts(fake.env, { cluster: 'dyn', resourceGroup: 'dyn-rg' }));
  t.deepEqual(includeRanges(dyn.findings), ['10.241.0.0/16', '10.0.0.0/16']);
  const managed = await discover('aks', opts(fake.env, { cluster: 'managed', resourceGroup: 'managed-rg' }));
  t.deepEqual(includeRanges(managed.findings), ['10.224.0.0/12', '10.0.0.0/16']);
  t.true(managed.notes.some((n) => /MC_managed-rg_managed_eastus/.test(n)));
});

test('iks: podSubnet and serviceSubnet from ibmcloud ks cluster get', async (t) => {
  const fake = await fakeClis(t, {
    ibmcloud: [{ args: 'ks cluster get --cluster demo --output json', stdoutFixture: 'iks.json' }],
  });
  const r = await discover('iks', opts(fake.env, { cluster: 'demo' }));
  t.deepEqual(includeRanges(r.findings), ['172.30.0.0/16', '172.21.0.0/16']);
});

test('cloud platforms without --cluster say what to pass', async (t) => {
  for (const p of ['gke', 'eks', 'iks'] as const) {
    const err = await t.throwsAsync(discover(p, { timeoutMs: 1000, env: { PATH: '/nonexistent' } }));
    t.regex(err!.message, /needs --cluster/);
  }
  const aks = await t.throwsAsync(discover('aks', { cluster: 'x', timeoutMs: 1000, env: { PATH: '/nonexistent' } }));
  t.regex(aks!.message, /--resource-group/);
});
