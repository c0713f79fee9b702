/**
 * The set-up most proxy tests in namespaces share: the config written to WORLD/mesh.yaml,
 * istio-iptables capturing all of the pod's outbound traffic (`-i *`), and
 * `interpose proxy` running in the pod as uid and gid 1337 from that file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyProcess } from '../../../src/lab/world/proxy-process.js';
import type { World } from '../../../src/lab/world/world.js';
import { installIstioRules } from './rules.js';

export interface PodProxy {
  readonly proxy: ProxyProcess;
  /** Rewrites the config file and reloads it; a config the proxy refuses throws with its reason. */
  apply(yaml: string): Promise<void>;
}

export async function startPodProxy(world: World, yaml: string, options: { metricsPort?: number } = {}): Promise<PodProxy> {
  const configFile = join(world.dir, 'mesh.yaml');
  writeFileSync(configFile, yaml);
  await installIstioRules(world.pod.name, ['-i', '*']);
  const proxy = await ProxyProcess.start(world.pod.name, [
    '--config', configFile, '--uid', '1337', '--gid', '1337', '--metrics-port', String(options.metricsPort ?? 0),
  ]);
  return {
    proxy,
    apply: async (next) => {
      writeFileSync(configFile, next);
      if (!(await proxy.reload())) throw new Error(`config rejected: ${proxy.logs.at(-1)}`);
    },
  };
}
