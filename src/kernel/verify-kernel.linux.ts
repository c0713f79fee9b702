/**
 * Does the kernel hold exactly what a ruleset installs? The backend the configuration uses
 * compares its own rules (the comparison apply uses to detect drift, so verify and apply
 * cannot disagree); rules of ours under the other backend are differences too, since both
 * run in the kernel. Reads only.
 */
import type { Ruleset } from '../rules/ir.js';
import { underLock, type Comparison } from './backend.js';
import type { Executor } from './executor.js';
import { IptablesBackend } from './iptables-backend.linux.js';
import { chooseIptables } from './iptables-binaries.linux.js';
import { NftablesBackend } from './nftables-backend.linux.js';
import { FileOwnershipStore } from './ownership-record.linux.js';
import { openBackend, type BackendChoice } from './open-backend.linux.js';

export interface KernelComparison extends Comparison {
  /** The backend compared against: `nftables` or `iptables-legacy` / `iptables-nft`. */
  readonly backend: string;
}

export async function compareKernel(executor: Executor, ruleset: Ruleset, choice: BackendChoice): Promise<KernelComparison> {
  const backend = await openBackend(executor, choice);
  // Under the apply's lock: a verify never reads between one family's restore and the other's.
  const own = await underLock(backend, async () => backend.compare(await backend.read(ruleset), ruleset));
  const other = choice.nativeNftables ? await iptablesLeftovers(executor, choice) : await nftablesLeftovers(executor);
  // iptables differences first, then nftables, whichever backend is wanted.
  const differences = choice.nativeNftables ? [...other, ...own.differences] : [...own.differences, ...other];
  return { ...own, differences, backend: choice.nativeNftables ? 'nftables' : backend.name };
}

/** Under --native-nftables: any ISTIO_* rule of ours in iptables (when iptables is there at all). */
async function iptablesLeftovers(executor: Executor, choice: BackendChoice): Promise<string[]> {
  const bin = await chooseIptables(executor, choice.forceIptablesBinary).catch(() => undefined);
  if (!bin) return [];
  const state = await new IptablesBackend(executor, bin, new FileOwnershipStore(choice.networkNamespace)).read();
  return state.holdsOurs ? [`iptables-${bin.variant} holds ISTIO_* rules, but this configuration uses the nftables backend`] : [];
}

/** Under iptables: any of interpose's inet tables (when nft is there at all). */
async function nftablesLeftovers(executor: Executor): Promise<string[]> {
  const state = await new NftablesBackend(executor).read().catch(() => undefined);
  return (state?.present ?? []).map((n) => `nftables: table inet ${n} exists, but this configuration uses the iptables backend`);
}
