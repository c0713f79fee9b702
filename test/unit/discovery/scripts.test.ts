import test from 'ava';
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PLATFORMS } from '../../../src/discovery/types.js';
import { FIXTURES, fakeClis } from '../../helpers/fake-cli.js';

const SCRIPTS = fileURLToPath(new URL('../../../scripts/', import.meta.url));
const script = (p: string) => `${SCRIPTS}discover-${p}.sh`;

test('every platform has a discover script that parses and prints usage on --help', async (t) => {
  for (const p of PLATFORMS) {
    await t.notThrowsAsync(access(script(p)), `scripts/discover-${p}.sh is missing`);
    const syntax = await execa('bash', ['-n', script(p)], { reject: false });
    t.is(syntax.exitCode, 0, `bash -n discover-${p}.sh: ${syntax.stderr}`);
    const help = await execa('bash', [script(p), '--help'], { reject: false });
    t.is(help.exitCode, 0, `discover-${p}.sh --help: ${help.stderr}`);
    t.regex(help.stdout, new RegExp(`^usage: discover-${p}\\.sh`));
  }
});

// shellcheck comes from scripts/install-system-deps.sh; without it the test is skipped, not
// counted as a pass.
const hasShellcheck = spawnSync('sh', ['-c', 'command -v shellcheck']).status === 0;
if (!hasShellcheck) console.log('SKIP: shellcheck is not installed (scripts/install-system-deps.sh installs it)');
(hasShellcheck ? test : test.skip)('the scripts are shellcheck-clean', async (t) => {
  const r = await execa('shellcheck', ['-x', ...PLATFORMS.map(script), `${SCRIPTS}lib/discover-common.sh`], { cwd: SCRIPTS, reject: false });
  t.is(r.exitCode, 0, r.stdout);
});

// The scripts need the usual tools (sed, tr) but must meet only the fake platform CLIs, so the
// fakes come first on PATH.
const systemPath = '/usr/local/bin:/usr/bin:/bin';

test('discover-gke.sh and discover-kubeadm.sh print the ranges and the Helm value', async (t) => {
  const fake = await fakeClis(t, {
    gcloud: [
      {
        args: 'container clusters describe demo --zone us-central1-a --format=value(clusterIpv4Cidr,servicesIpv4Cidr)',
        stdout: '10.8.0.0/14\t10.12.0.0/20\n',
      },
    ],
    kubectl: [
      {
        args: '-n kube-system get configmap kubeadm-config -o jsonpath={.data.ClusterConfiguration}',
        stdout: 'kind: ClusterConfiguration\nnetworking:\n  dnsDomain: cluster.local\n  podSubnet: 10.244.0.0/16,fd00:10:244::/56\n  serviceSubnet: 10.96.0.0/16\n',
      },
    ],
  });
  const env = { PATH: `${fake.dir}:${systemPath}` };
  const gke = await execa('bash', [script('gke'), 'demo', '--zone', 'us-central1-a'], { env, reject: false });
  t.is(gke.exitCode, 0, gke.stderr);
  t.regex(gke.stdout, /includeIPRanges="10\.8\.0\.0\/14\\,10\.12\.0\.0\/20"/);
  const kubeadm = await execa('bash', [script('kubeadm')], { env, reject: false });
  t.is(kubeadm.exitCode, 0, kubeadm.stderr);
  t.regex(kubeadm.stdout, /includeOutboundIPRanges: "10\.244\.0\.0\/16,fd00:10:244::\/56,10\.96\.0\.0\/16"/);
});

test('discover-icp.sh reads config.yaml; a missing CLI is named', async (t) => {
  const icp = await execa('bash', [script('icp'), `${FIXTURES}icp-config.yaml`], { reject: false });
  t.is(icp.exitCode, 0, icp.stderr);
  t.regex(icp.stdout, /-i 10\.1\.0\.0\/16,10\.0\.0\.1\/24/);
  const fake = await fakeClis(t, {});
  const gke = await execa('/bin/bash', [script('gke'), 'demo', '--zone', 'z'], { env: { PATH: `${fake.dir}:/nonexistent` }, reject: false });
  t.is(gke.exitCode, 1);
  t.regex(gke.stderr, /the gcloud CLI is not installed/);
});
