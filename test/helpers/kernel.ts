/**
 * Shared plumbing for kernel tests: root detection with a printed reason when they skip, and
 * network namespaces the test creates and always deletes (t.teardown runs on failure too).
 */
import test, { type ExecutionContext, type Implementation } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { execa, type Options as ExecaOptions } from 'execa';

export const isRoot = process.getuid?.() === 0;

const skipReason = 'kernel tests need root (they create network namespaces and netfilter rules)';
let announced = false;

/** Registers a test that runs only as root; otherwise it is skipped and the reason printed. */
export function kernelTest(title: string, fn: Implementation<[]>): void {
  if (isRoot) {
    test.serial(title, fn);
    return;
  }
  if (!announced) {
    announced = true;
    console.log(`SKIP: ${skipReason}; running as uid ${process.getuid?.()}`);
  }
  test.skip(`${title} (skipped: ${skipReason})`, fn);
}

/**
 * Set in every namespace a test creates. A new namespace copies its IPv4 settings from the
 * host's (net.core.devconf_inherit_init_net=0): where podman or Docker has run, ip_forward=1,
 * and a namespace meant to refuse a connection to an address it does not hold forwards the SYN
 * instead. Tests state what they rely on; a test that needs forwarding turns it on itself.
 */
export const NETNS_SYSCTLS = [
  'net.ipv4.ip_forward=0',
  'net.ipv6.conf.all.forwarding=0',
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
];

/** A network namespace owned by one test. */
export class Netns {
  private constructor(readonly name: string) {}

  /**
   * Creates `ip netns add NAME` with lo up and NETNS_SYSCTLS set, and registers its deletion on
   * the test.
   */
  static async create(t: ExecutionContext, prefix = 'ipt'): Promise<Netns> {
    const name = `${prefix}-${randomBytes(4).toString('hex')}`;
    await execa('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    t.teardown(() => ns.destroy());
    await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    await ns.exec(['sysctl', '-qw', ...NETNS_SYSCTLS]);
    return ns;
  }

  /**
   * Runs argv inside the namespace; rejects on non-zero exit unless `reject: false`. Generic in
   * the options so the result's type follows them (stdout a string unless they say otherwise).
   */
  exec<const O extends ExecaOptions = {}>(argv: string[], options?: O) {
    return execa('ip', ['netns', 'exec', this.name, ...argv], options);
  }

  /** Writes /etc/netns/NAME/FILE, which `ip netns exec` bind-mounts over /etc/FILE. */
  writeEtc(file: string, content: string): void {
    mkdirSync(`/etc/netns/${this.name}`, { recursive: true });
    writeFileSync(`/etc/netns/${this.name}/${file}`, content);
  }

  async destroy(): Promise<void> {
    await execa('ip', ['netns', 'del', this.name], { reject: false });
    rmSync(`/etc/netns/${this.name}`, { recursive: true, force: true });
  }
}

/**
 * Connects two namespaces with a veth pair and gives each side an address.
 * Addresses should come from documentation or link ranges (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24, 2001:db8::/32, 100.64.0.0/10).
 */
export async function linkNamespaces(
  a: Netns,
  aAddrs: string[],
  b: Netns,
  bAddrs: string[],
): Promise<{ aIf: string; bIf: string }> {
  const suffix = randomBytes(3).toString('hex');
  const aIf = `va${suffix}`;
  const bIf = `vb${suffix}`;
  await execa('ip', ['link', 'add', aIf, 'netns', a.name, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
  for (const [ns, ifname, addrs] of [
    [a, aIf, aAddrs],
    [b, bIf, bAddrs],
  ] as const) {
    for (const addr of addrs) {
      const v6 = addr.includes(':');
      await ns.exec(['ip', ...(v6 ? ['-6'] : []), 'addr', 'add', addr, 'dev', ifname, ...(v6 ? ['nodad'] : [])]);
    }
    await ns.exec(['ip', 'link', 'set', ifname, 'up']);
  }
  return { aIf, bIf };
}
