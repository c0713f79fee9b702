import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { fakeClis } from '../../helpers/fake-cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Runs `interpose discover …` from source (node --import tsx src/cli/main.ts, what `npx tsx`
 * does) with PATH holding only the fake CLIs, so no real gcloud/kubectl on the machine answers.
 */
function interpose(args: string[], path: string) {
  return execa(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: path },
    reject: false,
  });
}

const GKE = ['discover', '--platform', 'gke', '--cluster', 'ds', '--region', 'europe-west1'];
const gcloudRule = { args: 'container clusters describe ds --region europe-west1 --format json', stdoutFixture: 'gke-regional-dual-stack.json' };
const ranges = ['10.64.0.0/14', '2600:1900:4041:1c3::/64', '10.68.0.0/20', '2600:2d00:0:4:9a3c:1b2e::/112'];

test('discover prints every format end to end', async (t) => {
  const fake = await fakeClis(t, { gcloud: [gcloudRule] });
  const [text, json, helm, annotation, flag] = await Promise.all(
    ['text', 'json', 'helm', 'annotation', 'flag'].map((f) => interpose([...GKE, '--format', f], fake.dir)),
  );
  for (const r of [text, json, helm, annotation, flag]) t.is(r!.exitCode, 0, r!.stderr);
  t.regex(text!.stdout, /^platform: gke\npod ranges:\n  10\.64\.0\.0\/14 /);
  t.deepEqual((JSON.parse(json!.stdout) as { includeIPRanges: string[] }).includeIPRanges, ranges);
  t.is(helm!.stdout, `--set values.global.proxy.includeIPRanges="${ranges.join('\\,')}"`);
  t.is(annotation!.stdout, `traffic.sidecar.istio.io/includeOutboundIPRanges: "${ranges.join(',')}"`);
  t.is(flag!.stdout, `-i ${ranges.join(',')}`);
});

test('discover failures exit 1 with the message and the fix on stderr', async (t) => {
  const fake = await fakeClis(t, {
    gcloud: [{ args: gcloudRule.args, stderrFixture: 'gcloud-expired.stderr', exit: 1 }],
  });
  const expired = await interpose(GKE, fake.dir);
  t.is(expired.exitCode, 1);
  t.is(expired.stdout, '');
  t.regex(expired.stderr, /^interpose: gcloud: not logged in or the login expired/);
  t.regex(expired.stderr, /fix: run `gcloud auth login`/);

  const [badFormat, badPlatform, badTimeout] = await Promise.all([
    interpose([...GKE, '--format', 'yaml'], fake.dir),
    interpose(['discover', '--platform', 'rancher'], fake.dir),
    interpose([...GKE, '--timeout', '0'], fake.dir),
  ]);
  t.is(badFormat.exitCode, 1);
  t.regex(badFormat.stderr, /invalid value for --format: "yaml": expected one of text, json, helm, annotation, flag/);
  t.regex(badPlatform.stderr, /invalid value for --platform: "rancher": expected one of auto, gke, eks/);
  t.regex(badTimeout.stderr, /invalid value for --timeout: "0"/);
});
