/**
 * A pod namespace linked to a world namespace. The world answers on whole documentation
 * ranges (AnyIP local routes), so any address in 192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24 or 2001:db8:100::/48 reaches a server that says "world"; the pod runs a
 * catcher on the redirect port that says "proxy". Where a connection lands is then a fact
 * the kernel decides, not one the test assumes.
 */
import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { Netns, linkNamespaces } from './kernel.js';

const AGENTS = join(import.meta.dirname, 'agents');
export const WORLD_V4_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'];
export const WORLD_V6_RANGE = '2001:db8:100::/48';

export interface PodWorld {
  pod: Netns;
  world: Netns;
}

/**
 * Starts a long-running agent in a namespace; waits for "ready"; kills it on teardown.
 * Returns the process in a wrapper: execa's process is a thenable, and returning it from an
 * async function would wait for it to exit.
 */
export async function startAgent(t: ExecutionContext, ns: Netns, script: string, args: string[]): Promise<{ child: ResultPromise }> {
  return startInNamespace(t, ns, ['node', join(AGENTS, script), ...args], script);
}

/**
 * Starts any long-running argv in a namespace (an agent written in another language, say);
 * waits until it prints "ready"; kills it on teardown. `label` names it in errors.
 */
export async function startInNamespace(t: ExecutionContext, ns: Netns, argv: string[], label: string): Promise<{ child: ResultPromise }> {
  const child = execa('ip', ['netns', 'exec', ns.name, ...argv], { reject: false, buffer: false });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not become ready`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited early (${code})`));
    });
  });
  return { child };
}

export async function createPodAndWorld(t: ExecutionContext, worldPorts: number[], catcherPort = 15001): Promise<PodWorld> {
  const pod = await Netns.create(t, 'pod');
  const world = await Netns.create(t, 'wld');
  const { aIf } = await linkNamespaces(pod, ['100.64.0.1/30', '2001:db8:ffff::1/64'], world, ['100.64.0.2/30', '2001:db8:ffff::2/64']);
  await pod.exec(['ip', 'route', 'add', 'default', 'via', '100.64.0.2', 'dev', aIf]);
  await pod.exec(['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:ffff::2', 'dev', aIf]);
  for (const range of WORLD_V4_RANGES) await world.exec(['ip', 'route', 'add', 'local', range, 'dev', 'lo']);
  await world.exec(['ip', '-6', 'route', 'add', 'local', WORLD_V6_RANGE, 'dev', 'lo']);
  await startAgent(t, world, 'tag-server.mjs', ['world', ...worldPorts.map(String)]);
  await startAgent(t, pod, 'tag-server.mjs', ['proxy', String(catcherPort)]);
  return { pod, world };
}

/** Connects from a namespace (as `uid`, when given) to each target; returns each answer. */
export async function probe(pod: Netns, targets: Array<[string, number]>, uid?: number): Promise<string[]> {
  return probeAs(pod, targets, uid === undefined ? undefined : { uid, gid: uid });
}

/**
 * Like `probe`, with the uid and gid given separately (owner matches test each on its own).
 * Connects from `ns` as uid/gid (root when omitted); returns each answer.
 */
export async function probeAs(ns: Netns, targets: Array<[string, number]>, owner?: { uid: number; gid: number }): Promise<string[]> {
  const drop = owner === undefined ? [] : ['setpriv', `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--clear-groups'];
  const r = await execa('ip', ['netns', 'exec', ns.name, ...drop, 'node', join(AGENTS, 'probe-client.mjs'), JSON.stringify(targets)]);
  return JSON.parse(r.stdout) as string[];
}
