/** What the lab needs before it creates anything, with the package that provides each tool. */
import { InterceptError } from '../errors/intercept-error.js';
import { SystemExecutor } from '../kernel/executor.js';

const TOOLS: ReadonlyArray<[command: string, debianPackage: string]> = [
  ['ip', 'iproute2'],
  ['iptables-restore', 'iptables'],
  ['curl', 'curl'],
  ['openssl', 'openssl'],
  ['dig', 'bind9-dnsutils'],
  ['setpriv', 'util-linux'],
];

export async function labPreflight(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new InterceptError('interpose lab needs root: it creates network namespaces and netfilter rules (run it with sudo)');
  }
  const missing: string[] = [];
  const system = new SystemExecutor();
  for (const [command, pkg] of TOOLS) {
    const r = await system.run(['sh', '-c', `command -v ${command}`]);
    if (r.exitCode !== 0) missing.push(`${command} (Debian package "${pkg}")`);
  }
  if (missing.length > 0) {
    throw new InterceptError(`interpose lab needs ${missing.join(', ')}: install with apt-get, or run scripts/install-system-deps.sh`);
  }
}
