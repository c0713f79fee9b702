import type { Command } from 'commander';

/**
 * Every subcommand of `interpose`, in the order `--help` lists them. Each is loaded only when
 * it runs (or for `--help`), so `interpose istio-iptables` in an init container does not pay
 * for the proxy's or discovery's modules. Add new commands here: one line each.
 */
export interface CommandEntry {
  readonly name: string;
  readonly load: () => Promise<Command>;
  /**
   * The command's work is over when its action resolves: main then exits at once instead of
   * letting Node wind down (freeing its heap took over 100 ms of an init container's start-up
   * on a loaded 2-core machine: bench/startup). Not for commands that leave servers running.
   */
  readonly exitWhenDone?: boolean;
}

export const commands: readonly CommandEntry[] = [
  { name: 'lab', load: async () => (await import('./lab.js')).labCommand() },
  { name: 'istio-iptables', load: async () => (await import('./istio-iptables.js')).istioIptablesCommand(), exitWhenDone: true },
  { name: 'discover', load: async () => (await import('./discover.js')).discoverCommand() },
  { name: 'annotations-to-flags', load: async () => (await import('./annotations-to-flags.js')).annotationsToFlagsCommand() },
  { name: 'proxy', load: async () => (await import('./proxy.js')).proxyCommand() },
  { name: 'trace', load: async () => (await import('./trace.js')).traceCommand() },
  { name: 'verify', load: async () => (await import('./verify.js')).verifyCommand() },
  { name: 'cni', load: async () => (await import('./cni.js')).cniCommand() },
];
