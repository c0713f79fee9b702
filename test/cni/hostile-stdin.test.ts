/**
 * Hostile CNI calls against the built Node plugin (dist/interpose-cni.js), each a bug once
 * found: an endless stdin, a prevResult that is not an object (printed back as the result, exit
 * 0), 200 KB values echoed whole in the error, an answer cut at 64 KiB when the runtime read it
 * late, and a pod answer of the wrong shape turning into an internal error. Every answer must
 * be one JSON object on stdout. No root and no kernel change: no call gets as far as rules.
 */
import test from 'ava';
import { execa } from 'execa';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CniError } from '../../src/cni/cni-error.js';
import { readPod } from '../../src/cni/pod-client.js';
import { PLUGIN } from './helpers/cni-network.js';

const state = mkdtempSync(join(tmpdir(), 'interpose-cni-hostile-'));
process.on('exit', () => rmSync(state, { recursive: true, force: true }));

const base = { cniVersion: '1.1.0', name: 'k8s-pod-network', type: 'interpose-cni' };
/** A call the plugin answers without a pod: CNI_ARGS names none, so ADD passes prevResult through. */
const cniEnv = (command: string) => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  INTERPOSE_CNI_STATE_DIR: state,
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'hostile1',
  CNI_NETNS: '/run/netns/interpose-hostile-none',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
});

interface Answer {
  exitCode: number;
  stdout: string;
  result: Record<string, unknown>;
  timedOut: boolean;
}

let calls = 0;

/** `FEED | node PLUGIN | READER` (the plugin's exit code); FEED defaults to `conf` as JSON, from a file ($CONF). */
async function call(command: string, conf: unknown, feed = 'cat "$CONF"', reader = 'cat'): Promise<Answer> {
  // A file, not an environment variable: one variable holds at most 128 KiB (MAX_ARG_STRLEN).
  const file = join(state, `conf-${++calls}.json`);
  writeFileSync(file, typeof conf === 'string' ? conf : JSON.stringify(conf));
  const r = await execa('bash', ['-c', `set -o pipefail; ${feed} | node "$PLUGIN" | ${reader}`], {
    reject: false,
    env: { ...cniEnv(command), PLUGIN, CONF: file },
    extendEnv: false,
    // Generous for a loaded machine; a plugin reading an endless stdin never ends at all.
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  const stdout = String(r.stdout);
  let result: Record<string, unknown> = {};
  try {
    result = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    // left empty: the tests say the answer was not JSON
  }
  return { exitCode: r.exitCode ?? -1, stdout, result, timedOut: r.timedOut };
}

test('an endless stdin is refused (code 6) once past the limit, not read forever', async (t) => {
  const a = await call('ADD', '', 'cat /dev/zero');
  t.false(a.timedOut, 'still reading after 60 s');
  t.is(a.result.code, 6, a.stdout.slice(0, 300));
  t.regex(String(a.result.msg), /larger than 1048576 bytes/);
});

for (const prevResult of [42, null, 'x', [], true]) {
  test(`ADD with prevResult ${JSON.stringify(prevResult)} is refused (code 7), not printed back as the result`, async (t) => {
    const a = await call('ADD', { ...base, prevResult });
    t.is(a.exitCode, 1, a.stdout);
    t.is(a.result.code, 7);
    t.regex(String(a.result.msg), /"prevResult".*expected an object/);
  });
}

const LONG = 'x'.repeat(200_000);
const longValues: { name: string; command: string; conf: object; says: RegExp }[] = [
  { name: 'cniVersion', command: 'ADD', conf: { ...base, cniVersion: LONG }, says: /cniVersion "xxx.*characters\) is not supported/ },
  { name: 'an unknown key', command: 'ADD', conf: { ...base, [LONG]: 1 }, says: /unsupported key "xxx.*characters\)/ },
  { name: 'kubeconfig', command: 'STATUS', conf: { ...base, kubeconfig: `/${LONG}` }, says: /the kubeconfig \/xxx.*characters\) named by "kubeconfig"/ },
  { name: 'the network name (the record path)', command: 'DEL', conf: { ...base, name: LONG }, says: /record of what ADD installed, .*characters\)/ },
];

for (const c of longValues) {
  test(`a 200 KB ${c.name} gives a short error in one JSON object`, async (t) => {
    const a = await call(c.command, c.conf);
    t.is(a.exitCode, 1);
    t.regex(String(a.result.msg), c.says, a.stdout.slice(0, 300));
    t.true(a.stdout.length < 5000, `the answer is ${a.stdout.length} characters`);
  });
}

test('a result larger than a pipe buffer reaches a runtime that reads it late, whole', async (t) => {
  // A prevResult of ~600 KB (within the 1 MiB stdin limit) is ADD's result for a pod-less sandbox.
  const prevResult = { cniVersion: '1.1.0', ips: Array.from({ length: 12_000 }, (_, i) => ({ address: `10.${i >> 8}.${i & 255}.1/32`, gateway: '10.0.0.1' })) };
  const a = await call('ADD', { ...base, prevResult }, undefined, '(sleep 0.5; cat)');
  t.is(a.exitCode, 0, a.stdout.slice(0, 300));
  t.true(a.stdout.length > 500_000, `${a.stdout.length} characters`);
  t.deepEqual(a.result, prevResult);
});

/** readPod against a plain HTTP server that answers every GET with `pod`. */
async function readPodAnswering(t: { teardown: (f: () => void) => void }, pod: unknown): Promise<CniError> {
  const server = createServer((_req, res) => res.end(JSON.stringify(pod)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const kubeconfig = join(state, `kc-${(server.address() as { port: number }).port}`);
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  writeFileSync(kubeconfig, JSON.stringify({ clusters: [{ name: 'c', cluster: { server: url } }], contexts: [{ name: 'x', context: { cluster: 'c' } }], 'current-context': 'x' }));
  return readPod(kubeconfig, { namespace: 'shop', name: 'web' }, { timeoutMs: 10_000, attempts: 1, backoffMs: 0 }).then(
    () => {
      throw new Error('the pod was accepted');
    },
    (err: unknown) => err as CniError,
  );
}

const badPods: { name: string; pod: unknown; says: RegExp }[] = [
  { name: 'an annotation value that is a number', pod: { metadata: { annotations: { 'sidecar.istio.io/status': '{}', 'sidecar.istio.io/inject': 5 } } }, says: /metadata\.annotations is not a map of strings/ },
  { name: 'annotations that are a list', pod: { metadata: { annotations: ['sidecar.istio.io/status'] } }, says: /metadata\.annotations is not a map of strings/ },
  { name: 'containers that are not a list', pod: { metadata: {}, spec: { containers: { name: 'istio-proxy' } } }, says: /spec\.containers is not a list/ },
  { name: 'an istio-proxy env that is not a list', pod: { spec: { containers: [{ name: 'istio-proxy', env: 'x' }] } }, says: /env is not a list/ },
];

for (const c of badPods) {
  test(`a pod answer with ${c.name} is a named try-again error (code 11), not an internal error`, async (t) => {
    const err = await readPodAnswering(t, c.pod);
    t.is(err.code, 11, err.message);
    t.regex(err.message, c.says);
  });
}
