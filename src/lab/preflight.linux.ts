/** What the lab needs before it creates anything, with the package that provides each tool. */
import { execa } from 'execa';
import { InterceptError } from '../errors/intercept-error.js';

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
  for (const [command, pkg] of TOOLS) {
    const r = await execa('sh', ['-c', `command -v ${command}`], { reject: false });
    if (r.exitCode !== 0) missing.push(`${command} (Debian package "${pkg}")`);
  }
  if (missing.length > 0) {
    throw new InterceptError(`interpose lab needs ${missing.join(', ')}: install with apt-get, or run scripts/install-system-deps.sh`);
  }
}
