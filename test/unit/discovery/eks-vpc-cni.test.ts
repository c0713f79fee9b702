/**
 * EKS: whether the cluster runs the Amazon VPC CNI decides whether the VPC ranges are pod
 * ranges. The add-on list is optional (its failure is a note, not an error), and the
 * self-managed CNI — the aws-node DaemonSet, asked through a kube context for this cluster —
 * counts as much as the add-on.
 */
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { includeRanges } from '../../../src/discovery/cidrs.js';
import { discover } from '../../../src/discovery/discover.js';
import { fakeClis, type FakeRule } from '../../helpers/fake-cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENDPOINT = 'https://0A1B2C3D4E5F60718293A4B5C6D7E8F9.gr7.us-west-2.eks.amazonaws.com';
const CONTEXT = 'arn:aws:eks:us-west-2:111122223333:cluster/demo';
const SERVICES = ['10.100.0.0/16'];
const WITH_VPC = ['192.168.0.0/16', '100.64.0.0/16', '10.100.0.0/16'];

const describe: FakeRule = { args: 'eks describe-cluster --name demo --region us-west-2 --output json', stdoutFixture: 'eks-describe-ipv4.json' };
const addonsArgs = 'eks list-addons --cluster-name demo --region us-west-2 --output json';
const noAddons: FakeRule = { args: addonsArgs, stdoutFixture: 'eks-addons-none.json' };
const addonsDenied: FakeRule = { args: addonsArgs, stderrFixture: 'eks-list-addons-denied.stderr', exit: 254 };
const addonsOldCli: FakeRule = { args: addonsArgs, stderrFixture: 'aws-old-cli-invalid-choice.stderr', exit: 2 };
const vpcs: FakeRule = { args: 'ec2 describe-vpcs --vpc-ids vpc-0a1b2c3d4e5f67890 --region us-west-2 --output json', stdoutFixture: 'eks-vpcs-ipv4.json' };

/** `kubectl config view --minify -o json` for a context whose API server is `server`. */
function configView(server: string, context = CONTEXT): FakeRule {
  const view = { kind: 'Config', clusters: [{ name: context, cluster: { server } }], contexts: [{ name: context, context: { cluster: context } }], 'current-context': context };
  return { args: 'config view --minify -o json', stdout: JSON.stringify(view) };
}
const awsNodeArgs = 'get daemonset aws-node --namespace kube-system -o json';
const awsNode: FakeRule = { args: awsNodeArgs, stdoutFixture: 'eks-aws-node-daemonset.json' };
const noAwsNode: FakeRule = { args: awsNodeArgs, stderrFixture: 'kubectl-aws-node-not-found.stderr', exit: 1 };

const opts = (env: NodeJS.ProcessEnv) => ({ cluster: 'demo', region: 'us-west-2', timeoutMs: 10_000, env });

test('list-addons denied by IAM: a note says why, and the aws-node DaemonSet still finds the VPC CNI', async (t) => {
  const fake = await fakeClis(t, { aws: [describe, addonsDenied, vpcs], kubectl: [configView(ENDPOINT), awsNode] });
  const r = await discover('eks', opts(fake.env));
  t.deepEqual(includeRanges(r.findings), WITH_VPC);
  t.true(r.notes.some((n) => /could not ask whether the vpc-cni add-on is installed.*AccessDeniedException.*eks:ListAddons.*\(exit 254\)/.test(n)), r.notes.join('\n'));
  t.true(r.notes.some((n) => /Amazon VPC CNI: the aws-node DaemonSet runs in kube-system \(kubectl get daemonset aws-node --namespace kube-system -o json: .*amazon-k8s-cni:v1\.18\.1\)/.test(n)), r.notes.join('\n'));
  t.deepEqual(await fake.calls('kubectl'), ['config view --minify -o json', awsNodeArgs]);
});

test('an aws CLI without list-addons and no kubectl: the service range, with notes saying what could not be asked', async (t) => {
  const fake = await fakeClis(t, { aws: [describe, addonsOldCli] });
  const r = await discover('eks', opts(fake.env));
  t.deepEqual(includeRanges(r.findings), SERVICES);
  t.true(r.notes.some((n) => /could not ask whether the vpc-cni add-on is installed.*aws: error: argument operation: Invalid choice.*\(exit 2\)/.test(n)), r.notes.join('\n'));
  t.true(r.notes.some((n) => /no pod range is listed: could not look for the self-managed VPC CNI .*the kubectl CLI is not installed.*rerun with --vpc-cni/.test(n)), r.notes.join('\n'));
});

test('no add-on but the self-managed aws-node DaemonSet: the VPC ranges are pod ranges without --vpc-cni', async (t) => {
  const fake = await fakeClis(t, { aws: [describe, noAddons, vpcs], kubectl: [configView(`${ENDPOINT.toLowerCase()}/`), awsNode] });
  const r = await discover('eks', opts(fake.env));
  t.deepEqual(includeRanges(r.findings), WITH_VPC);
  t.true(r.notes.some((n) => /Amazon VPC CNI: self-managed: the aws-node DaemonSet runs in kube-system/.test(n)), r.notes.join('\n'));
});

test('no add-on and no aws-node DaemonSet: no VPC CNI, said as such', async (t) => {
  const fake = await fakeClis(t, { aws: [describe, noAddons], kubectl: [configView(ENDPOINT), noAwsNode] });
  const r = await discover('eks', opts(fake.env));
  t.deepEqual(includeRanges(r.findings), SERVICES);
  t.true(r.notes.some((n) => new RegExp(`runs no Amazon VPC CNI \\(no aws-node DaemonSet in kube-system \\(context ${CONTEXT}\\)\\); pass the pod range of its CNI with -i`).test(n)), r.notes.join('\n'));
});

test("a kube context for another cluster is not asked: its DaemonSets say nothing about this one", async (t) => {
  const fake = await fakeClis(t, { aws: [describe, noAddons], kubectl: [configView('https://203.0.113.9:6443', 'kind-dev'), awsNode] });
  const r = await discover('eks', opts(fake.env));
  t.deepEqual(includeRanges(r.findings), SERVICES);
  t.deepEqual(await fake.calls('kubectl'), ['config view --minify -o json']);
  t.true(r.notes.some((n) => /vpc-cni add-on is not installed as an EKS add-on, and could not look for the self-managed VPC CNI .*kube context kind-dev is for https:\/\/203\.0\.113\.9:6443, not this cluster's endpoint .*--vpc-cni/.test(n)), r.notes.join('\n'));
});

test('interpose discover --platform eks exits 0 and prints the VPC pod ranges when list-addons is denied', async (t) => {
  const fake = await fakeClis(t, { aws: [describe, addonsDenied, vpcs], kubectl: [configView(ENDPOINT), awsNode] });
  const r = await execa(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'discover', '--platform', 'eks', '--cluster', 'demo', '--region', 'us-west-2', '--format', 'flag'], {
    cwd: ROOT,
    env: { PATH: fake.dir },
    reject: false,
  });
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, `-i ${WITH_VPC.join(',')}`);
});
