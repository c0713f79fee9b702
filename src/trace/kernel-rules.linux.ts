/**
 * Reads what the kernel holds now, in a network namespace or this one, as a TraceProgram:
 * the iptables tables (raw, mangle, nat; through the iptables variant that holds rules, as
 * istio-iptables chooses) and interpose's inet tables (istio-proxy-*), whichever exist. Both
 * run in the kernel when both exist, so both go into one program.
 */
import { InterceptError } from '../errors/intercept-error.js';
import type { Executor } from '../kernel/executor.js';
import { IptablesBackend } from '../kernel/iptables-backend.linux.js';
import { chooseIptables } from '../kernel/iptables-binaries.linux.js';
import { NftablesBackend } from '../kernel/nftables-backend.linux.js';
import type { IpFamily } from '../net/cidr.js';
import { programFromIptablesSave } from './iptables-dump.js';
import { programFromNftJson } from './nft-json.js';
import type { TraceProgram } from './program.js';

const hasRules = (save: string) => /^(\[\d+:\d+\] )?-A /m.test(save);

/** Raw dumps, for tests and `--json` consumers that want the evidence. */
export interface KernelDumps {
  readonly iptables: ReadonlyArray<{ family: IpFamily; tool: string; text: string }>;
  readonly nftJson: readonly unknown[];
  readonly nftListing: string;
}

/** What the kernel holds, read through the backends; a backend whose tools are missing holds nothing. */
export async function readKernelDumps(executor: Executor): Promise<KernelDumps> {
  const iptables: Array<{ family: IpFamily; tool: string; text: string }> = [];
  const bin = await chooseIptables(executor).catch(() => undefined);
  if (bin) {
    const state = await new IptablesBackend(executor, bin).read().catch(() => undefined);
    for (const f of state?.families ?? []) {
      const text = [...f.saved.values()].map((t) => t.block).join('');
      if (f.available && hasRules(text)) iptables.push({ family: f.family, tool: `${f.family === 4 ? 'iptables' : 'ip6tables'} (${bin.variant})`, text });
    }
  }
  const nft = await new NftablesBackend(executor).listForTrace();
  return { iptables, nftJson: nft?.json ?? [], nftListing: nft?.listing ?? '' };
}

/** The kernel's rules as one program; throws when it holds none of interpose's. */
export function programFromDumps(d: KernelDumps, where: string): TraceProgram {
  const parts: TraceProgram[] = [];
  if (d.iptables.length > 0) {
    parts.push(programFromIptablesSave(d.iptables.map((x) => ({ family: x.family, text: x.text, tool: x.tool.replace(/ \(.*\)$/, '') })), ''));
  }
  if (d.nftJson.length > 0) parts.push(programFromNftJson(d.nftJson, d.nftListing, ''));
  if (parts.length === 0) {
    throw new InterceptError(`the kernel holds no iptables rules and none of interpose's nftables tables in ${where}: nothing to trace (install rules first, or trace a configuration by passing its istio-iptables flags instead of --from-kernel)`);
  }
  const what = [
    ...(d.iptables.length > 0 ? [d.iptables.map((x) => x.tool).join(', ')] : []),
    ...(d.nftJson.length > 0 ? ['nftables inet istio-proxy-*'] : []),
  ].join(' + ');
  return { baseChains: parts.flatMap((p) => p.baseChains), source: `kernel (${where}): ${what}` };
}

/** `ip route get DST` in the namespace: the interface and source address the kernel would use. */
export async function routeFor(executor: Executor, dst: string, family: IpFamily): Promise<{ dev?: string; src?: string }> {
  const r = await executor.run(['ip', `-${family}`, '-o', 'route', 'get', dst]).catch(() => undefined);
  if (!r || r.exitCode !== 0) return {};
  const dev = /\bdev (\S+)/.exec(r.stdout)?.[1];
  const src = /\bsrc (\S+)/.exec(r.stdout)?.[1];
  return { ...(dev ? { dev } : {}), ...(src ? { src } : {}) };
}
