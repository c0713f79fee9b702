import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { podAnnotationsFromManifest } from '../../src/config/pod-manifest.js';
import { shellQuote } from '../../src/cli/annotations-to-flags.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = (args: string[], input?: string) =>
  execa(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'annotations-to-flags', ...args], {
    cwd: ROOT,
    reject: false,
    ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
  });

const MANIFEST = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports: [{ port: 80 }]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
        traffic.sidecar.istio.io/includeOutboundIPRanges: "10.96.0.0/12"
        traffic.sidecar.istio.io/excludeOutboundPorts: "5432"
    spec:
      containers: [{ name: web, image: example }]
`;

test('manifests: a Pod, a workload template, a List; other kinds skipped', (t) => {
  t.deepEqual(podAnnotationsFromManifest(MANIFEST, 'm.yaml').annotations, {
    'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.96.0.0/12',
    'traffic.sidecar.istio.io/excludeOutboundPorts': '5432',
  });
  const pod = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { a: 'b' } } });
  t.deepEqual(podAnnotationsFromManifest(pod, 'p.json'), { kind: 'Pod', name: 'p', annotations: { a: 'b' } });
  const cron = 'kind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          annotations: {x: "1"}\n';
  t.deepEqual(podAnnotationsFromManifest(cron, 'c.yaml').annotations, { x: '1' });
  const list = JSON.stringify({ kind: 'List', items: [{ kind: 'Pod', metadata: { name: 'a' } }, { kind: 'Pod', metadata: { name: 'b', annotations: { k: 'v' } } }] });
  t.deepEqual(podAnnotationsFromManifest(list, 'stdin', 'b').annotations, { k: 'v' });
  t.throws(() => podAnnotationsFromManifest(list, 'stdin'), { message: /2 workloads \(Pod\/a, Pod\/b\).*--name/ });
  t.throws(() => podAnnotationsFromManifest(list, 'stdin', 'zz'), { message: /invalid value for --name: "zz"/ });
  t.throws(() => podAnnotationsFromManifest('kind: Service\nmetadata: {name: s}\n', 'svc.yaml'), { message: /svc\.yaml.*no workload/ });
  t.throws(() => podAnnotationsFromManifest('kind: Pod\nmetadata:\n  annotations:\n    p: 15020\n', 'n.yaml'), {
    message: /annotation p.*quote numbers/,
  });
  t.throws(() => podAnnotationsFromManifest('kind: Pod\n  metadata: [', 'bad.yaml'), { message: /invalid value for bad\.yaml/ });
});

test('shell quoting leaves plain words bare and quotes the rest', (t) => {
  t.is(shellQuote('10.0.0.0/8,fd00::/8'), '10.0.0.0/8,fd00::/8');
  t.is(shellQuote('*'), "'*'");
  t.is(shellQuote(''), "''");
  t.is(shellQuote("it's"), "'it'\\''s'");
});

test('CLI: file, stdin and --annotation in every format', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'interpose-annotations-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'web.yaml'), MANIFEST);

  const [args, json, shell, stdin] = await Promise.all([
    run([join(dir, 'web.yaml')]),
    run([join(dir, 'web.yaml'), '--format', 'json', '-a', 'traffic.sidecar.istio.io/excludeOutboundPorts=6379']),
    run(['--annotation', 'traffic.sidecar.istio.io/includeInboundPorts=8080', '--format', 'shell']),
    run(['-', '--format', 'json'], JSON.stringify({ kind: 'Pod', metadata: { name: 'p', annotations: { 'sidecar.istio.io/interceptionMode': 'TPROXY' } } })),
  ]);
  for (const r of [args, json, shell, stdin]) t.is(r.exitCode, 0, r.stderr);
  t.is(
    args.stdout,
    ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '10.96.0.0/12', '-x', '', '-b', '*', '-d', '15090,15021,15020', '-o', '5432'].join('\n'),
  );
  // --annotation wins over the manifest.
  const parsed = JSON.parse(json.stdout) as string[];
  t.is(parsed[parsed.indexOf('-o') + 1], '6379');
  t.is(shell.stdout, "-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b 8080 -d 15090,15021,15020");
  const fromStdin = JSON.parse(stdin.stdout) as string[];
  t.is(fromStdin[fromStdin.indexOf('-m') + 1], 'TPROXY');
});

test('CLI: unknown keys and bad input exit 1 naming what is wrong', async (t) => {
  const [unknown, badPair, nothing, missing, badFormat] = await Promise.all([
    run(['-a', 'traffic.sidecar.istio.io/excludeOutboundIps=10.0.0.0/8']),
    run(['-a', 'no-equals-sign']),
    run([]),
    run(['/nonexistent/pod.yaml']),
    run(['-a', 'x=y', '--format', 'yaml']),
  ]);
  for (const r of [unknown, badPair, nothing, missing, badFormat]) t.is(r.exitCode, 1);
  t.regex(unknown.stderr, /invalid value for annotation traffic\.sidecar\.istio\.io\/excludeOutboundIps/);
  t.regex(badPair.stderr, /invalid value for --annotation: "no-equals-sign": expected key=value/);
  t.regex(nothing.stderr, /a manifest file, "-" for stdin, or at least one --annotation/);
  t.regex(missing.stderr, /invalid value for \[manifest\]: "\/nonexistent\/pod\.yaml": expected a readable file .*\(ENOENT\)/);
  t.regex(badFormat.stderr, /invalid value for --format: "yaml"/);
});
