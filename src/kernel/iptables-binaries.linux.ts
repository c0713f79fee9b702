/**
 * Which iptables to drive. As istio-init does: iptables-legacy when it already holds rules
 * (someone on this host uses it), else iptables-nft; `--force-iptables-binary` overrides.
 */
import type { IptablesBinaryChoice } from '../config/intercept-config.js';
import { InterceptError } from '../errors/intercept-error.js';
import type { IpFamily } from '../net/cidr.js';
import type { Executor } from './executor.js';

export interface IptablesBinaries {
  readonly variant: 'legacy' | 'nft';
  save(family: IpFamily): string;
  restore(family: IpFamily): string;
}

export class MissingToolError extends InterceptError {
  override name = 'MissingToolError';
}

function binaries(variant: 'legacy' | 'nft'): IptablesBinaries {
  return {
    variant,
    save: (f) => `${f === 4 ? 'iptables' : 'ip6tables'}-${variant}-save`,
    restore: (f) => `${f === 4 ? 'iptables' : 'ip6tables'}-${variant}-restore`,
  };
}

async function exists(executor: Executor, command: string): Promise<boolean> {
  try {
    const r = await executor.run([command, '--version']);
    return r.exitCode === 0;
  } catch {
    return false;
  }
}

/** True when iptables-legacy holds any rule or user chain in either family. */
async function legacyInUse(executor: Executor): Promise<boolean> {
  for (const f of [4, 6] as const) {
    const r = await executor.run([binaries('legacy').save(f)]).catch(() => undefined);
    if (r && r.exitCode === 0 && /^(-A |:(?!(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ))/m.test(r.stdout)) return true;
  }
  return false;
}

export async function chooseIptables(executor: Executor, forced?: IptablesBinaryChoice): Promise<IptablesBinaries> {
  const hasNft = await exists(executor, 'iptables-nft-restore');
  const hasLegacy = await exists(executor, 'iptables-legacy-restore');
  if (forced) {
    const variant = forced === 'iptables-legacy' ? 'legacy' : 'nft';
    if (!(variant === 'legacy' ? hasLegacy : hasNft)) {
      throw new MissingToolError(
        `--force-iptables-binary ${forced}: ${forced}-restore was not found; install the Debian package "iptables"`,
      );
    }
    return binaries(variant);
  }
  if (!hasNft && !hasLegacy) {
    throw new MissingToolError(
      'no iptables found (neither iptables-nft-restore nor iptables-legacy-restore): install the Debian package "iptables", or use --native-nftables',
    );
  }
  if (hasLegacy && (!hasNft || (await legacyInUse(executor)))) return binaries('legacy');
  return binaries('nft');
}
