import type { Command } from 'commander';
import { istioIptablesCommand } from './istio-iptables.js';
import { discoverCommand } from './discover.js';
import { annotationsToFlagsCommand } from './annotations-to-flags.js';
import { proxyCommand } from './proxy.js';

/**
 * Every subcommand of `interpose`, in the order `--help` lists them. Each file in src/cli
 * exports one factory returning a commander Command; add new ones here.
 */
export const commandFactories: ReadonlyArray<() => Command> = [istioIptablesCommand, discoverCommand, annotationsToFlagsCommand, proxyCommand];
