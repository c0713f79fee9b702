/**
 * deploy/kubernetes/cni/interpose-cni.yaml: parses, grants only what ADD needs, runs on every
 * node with the CNI dirs mounted at the host's own paths, and `interpose cni` accepts its args.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { cniCommand } from '../../src/cli/cni.js';

const FILE = join(import.meta.dirname, '..', '..', 'deploy', 'kubernetes', 'cni', 'interpose-cni.yaml');

interface Doc {
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

function docs(): Doc[] {
  const parsed = parseAllDocuments(readFileSync(FILE, 'utf8'));
  for (const d of parsed) if (d.errors.length) throw new Error(`${FILE}: ${d.errors[0]!.message}`);
  return parsed.map((d) => d.toJS() as Doc).filter(Boolean);
}
const one = (kind: string) => {
  const found = docs().filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
};

test('ServiceAccount, ClusterRole (get/list/watch pods only) and the binding between them', (t) => {
  t.deepEqual(docs().map((d) => d.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'ServiceAccount']);
  const sa = one('ServiceAccount') as Doc;
  const role = one('ClusterRole') as Doc & { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
  t.deepEqual(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
  const binding = one('ClusterRoleBinding') as Doc & { roleRef: { kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace: string }> };
  t.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
  t.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
});

test('the DaemonSet runs `interpose cni install --watch` on every node with the CNI dirs at their host paths, and the CLI takes its args', async (t) => {
  const ds = one('DaemonSet') as Doc & { spec: { template: { spec: Record<string, any> } } };
  const pod = ds.spec.template.spec;
  t.is(pod.serviceAccountName, (one('ServiceAccount') as Doc).metadata.name);
  t.true(pod.hostNetwork);
  t.is(pod.priorityClassName, 'system-node-critical');
  t.deepEqual(pod.tolerations, [{ operator: 'Exists' }], 'tolerates every taint');
  const [c] = pod.containers as Array<{ args: string[]; volumeMounts: Array<{ name: string; mountPath: string }> }>;
  t.is(pod.containers.length, 1);
  t.deepEqual(c!.args.slice(0, 2), ['cni', 'install']);

  // Parsed by the real command, its action replaced: the flags the installer would get.
  const cmd = cniCommand().exitOverride();
  let flags: Record<string, unknown> | undefined;
  const install = cmd.commands.find((s) => s.name() === 'install')!;
  install.exitOverride().action((f: Record<string, unknown>) => void (flags = f));
  await cmd.parseAsync(c!.args.slice(1), { from: 'user' });
  t.truthy(flags);
  t.true(flags!.watch);
  t.true(flags!.copyNode);

  // The launcher and the plugin entry name these paths: they must be the host's.
  const hostPath = (dir: string) => {
    const mount = c!.volumeMounts.find((m) => m.mountPath === dir);
    const volume = (pod.volumes as Array<{ name: string; hostPath?: { path: string } }>).find((v) => v.name === mount?.name);
    return volume?.hostPath?.path;
  };
  /** A flag the installer takes as a path: parsed to a string, never left unset. */
  const pathFlag = (name: string): string => {
    const value = flags![name];
    if (typeof value !== 'string') return t.fail(`--${name} parsed to ${JSON.stringify(value)}, not a path`);
    return value;
  };
  t.is(hostPath(pathFlag('cniBinDir')), pathFlag('cniBinDir'));
  t.is(hostPath(pathFlag('cniConfDir')), pathFlag('cniConfDir'));
  t.is(flags!.cniBinDir, '/opt/cni/bin');
  t.is(flags!.cniConfDir, '/etc/cni/net.d');
  // The shim on the host connects to the socket the daemon serves: its directory is the host's.
  t.is(flags!.socket, '/var/run/interpose/cni.sock');
  t.is(hostPath('/var/run/interpose'), '/var/run/interpose');
  // Served calls and fallback calls must see the same records and namespaces.
  t.is(hostPath('/var/lib/cni/interpose-cni'), '/var/lib/cni/interpose-cni');
  t.is(hostPath('/var/run/netns'), '/var/run/netns');
  t.is(hostPath(pathFlag('logFile')), pathFlag('logFile'));
  const caps = (c as unknown as { securityContext: { capabilities: { add: string[] } } }).securityContext.capabilities.add;
  for (const cap of ['NET_ADMIN', 'SYS_ADMIN']) t.true(caps.includes(cap), `the daemon writes pods' rules: ${cap}`);
});

test('docs/cni.md shows the manifest as it is', (t) => {
  const manifest = readFileSync(FILE, 'utf8');
  const page = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'cni.md'), 'utf8');
  t.true(page.includes(`\`\`\`yaml\n${manifest.slice(manifest.indexOf('---\n'))}\`\`\``), 'copy the manifest (from its first ---) into the "CNI mode" section of docs/cni.md');
});
