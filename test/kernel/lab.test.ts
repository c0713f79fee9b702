/**
 * `interpose lab` end to end: the egress seed's steps all as expected (--json), and Ctrl-C in
 * the middle leaves no namespace, /etc/netns entry or process behind.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { CLI } from '../helpers/cli.js';
import { kernelTest } from '../helpers/kernel.js';

const labNamespaces = async () =>
  String((await execa('ip', ['netns', 'list'])).stdout)
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('lab-'));

kernelTest('interpose lab --json: every egress step as expected, and nothing left behind', async (t) => {
  const before = await labNamespaces();
  const r = await execa('node', [CLI, 'lab', '--json'], { reject: false, timeout: 120_000 });
  t.is(r.exitCode, 0, String(r.stderr));
  const report = JSON.parse(String(r.stdout)) as { ok: boolean; steps: Array<{ id: string; ok: boolean; observed: string; accessLog: string[] }> };
  t.true(report.ok);
  t.deepEqual(report.steps.map((s) => s.id), ['allow-any', 'registry-only', 'service-entry-http', 'service-entry-https', 'timeout', 'bypass', 'dns-capture']);
  for (const s of report.steps) t.true(s.ok, `${s.id}: ${s.observed}`);
  t.true(report.steps.find((s) => s.id === 'service-entry-http')!.accessLog.some((l) => l.includes('outbound|80||httpbin.org')));
  t.deepEqual(report.steps.find((s) => s.id === 'bypass')!.accessLog, []);
  t.deepEqual(await labNamespaces(), before);
});

kernelTest('Ctrl-C during interpose lab removes every namespace, /etc/netns file and process', async (t) => {
  const before = await labNamespaces();
  const child = execa('node', [CLI, 'lab', '--no-color'], { reject: false, buffer: false, timeout: 120_000 });
  let output = '';
  await new Promise<void>((resolve) => {
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('[2/7]')) resolve();
    });
    void child.then(() => resolve());
  });
  const during = (await labNamespaces()).filter((n) => !before.includes(n));
  t.is(during.length, 2, 'the lab made a pod and a world namespace');
  const pids: number[] = [];
  for (const ns of during) {
    pids.push(...String((await execa('ip', ['netns', 'pids', ns])).stdout).split('\n').filter(Boolean).map(Number));
  }
  t.true(pids.length >= 2, `the proxy and the stand-ins run in the namespaces (${pids.join(', ')})`);
  child.kill('SIGINT');
  const r = await child;
  t.is(r.exitCode, 130);
  t.deepEqual(await labNamespaces(), before);
  for (const ns of during) t.false(existsSync(`/etc/netns/${ns}`), `/etc/netns/${ns} removed`);
  const alive = pids.filter((pid) => existsSync(`/proc/${pid}`));
  t.deepEqual(alive, [], 'every process the lab started has exited');
});
