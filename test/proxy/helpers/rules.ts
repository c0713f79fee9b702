/**
 * Installs and removes istio-init compatible rules in a test namespace through interpose's own
 * CLI (`interpose istio-iptables`), the way a pod's init container would. One function, so the
 * tests do not care how the rules get there.
 */
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { STATE_DIR } from '../../helpers/cli.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = [process.execPath, '--import', 'tsx', `${root}src/cli/main.ts`];

/** `interpose istio-iptables --network-namespace NS -p 15001 -z 15006 -u 1337 -g 1337 EXTRA…` */
export async function installIstioRules(ns: string, extra: string[] = []): Promise<void> {
  const [node, ...args] = cli;
  await execa(
    node!,
    [...args, 'istio-iptables', '--network-namespace', ns, '-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', ...extra],
    { cwd: root, env: { INTERPOSE_STATE_DIR: STATE_DIR } },
  );
}

/** Removes everything istio-iptables installed in NS (`--cleanup-only`). */
export async function removeIstioRules(ns: string): Promise<void> {
  const [node, ...args] = cli;
  await execa(node!, [...args, 'istio-iptables', '--network-namespace', ns, '--cleanup-only'], { cwd: root, env: { INTERPOSE_STATE_DIR: STATE_DIR } });
}
