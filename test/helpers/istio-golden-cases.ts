/**
 * The golden-test case table every renderer shares (iptables-restore text, the nft script):
 * Istio's base flags plus one change per case, as istio-iptables' own run_test.go does. Each
 * renderer test renders every case and compares with test/golden/RENDERER/NAME.EXT.
 */
import type { ExecutionContext } from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import type { IstioOptions } from '../../src/config/istio-options.js';
import { fakeSystem } from './fake-system.js';
import { ISTIO_BASE, optionsFrom } from './istio-config.js';

export interface IstioGoldenCase {
  /** The golden file's base name. */
  readonly name: string;
  /** istio-iptables flags added to ISTIO_BASE. */
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Resolve DNS servers from a resolv.conf holding an IPv4 and an IPv6 nameserver. */
  readonly dns?: boolean;
}

export const ISTIO_GOLDEN_CASES: readonly IstioGoldenCase[] = [
  { name: 'defaults', args: [] },
  { name: 'capture-all-outbound-except-ranges', args: ['-i', '*', '-x', '198.51.100.0/24,203.0.113.0/25'] },
  { name: 'include-ranges-dual-stack', args: ['-i', '192.0.2.0/24,2001:db8:1::/48', '--enable-ipv6'] },
  { name: 'inbound-all-with-excludes', args: ['-b', '*', '-d', '15090,15021,15020'] },
  { name: 'inbound-list', args: ['-b', '8080,9090'] },
  { name: 'tproxy-dual-stack', args: ['-m', 'TPROXY', '-b', '*', '-d', '22', '--enable-ipv6'] },
  { name: 'dns-servers-dual-stack', args: ['--redirect-dns', '--enable-ipv6'], dns: true },
  { name: 'dns-capture-all', args: ['--redirect-dns', '--capture-all-dns'] },
  { name: 'outbound-ports', args: ['-q', '3306,5432', '-o', '25,465'] },
  { name: 'kubevirt-wildcard', args: ['-k', 'vm0,vm1', '-i', '*'] },
  { name: 'exclude-interfaces', args: ['-c', 'eth9,wg0'] },
  { name: 'drop-invalid', args: ['--drop-invalid'] },
  { name: 'owner-groups-include', args: [], env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' } },
  { name: 'loopback-include-range', args: ['-i', '127.0.0.0/8'] },
  { name: 'several-proxy-owners', args: ['-u', '1337,1338', '-g', '1337,2000', '--redirect-dns'], dns: true },
];

const dnsSystem = fakeSystem({ resolvConf: 'nameserver 192.0.2.53\nnameserver 2001:db8::53\n' });

/** The options a case's flags give, parsed as the CLI parses them. */
export function caseOptions(c: IstioGoldenCase): Promise<IstioOptions> {
  return optionsFrom([...ISTIO_BASE, ...c.args], { ...c.env }, c.dns ? dnsSystem : fakeSystem());
}

/**
 * Compares `text` with the golden `file`; with UPDATE_GOLDEN=1 writes it first. `testFile` is
 * the test's own path, for the regenerate command in the failure message.
 */
export function assertGolden(t: ExecutionContext, file: string, text: string, testFile: string): void {
  const regenerate = `UPDATE_GOLDEN=1 npx ava ${relative(process.cwd(), testFile)}`;
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  if (!existsSync(file)) {
    t.fail(`missing golden file ${file}: run ${regenerate} and review it`);
    return;
  }
  t.is(text, readFileSync(file, 'utf8'), `rendering differs from ${file}; if the change is intended, run ${regenerate} and review the diff`);
}
