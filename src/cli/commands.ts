import type { Command } from 'commander';
import { istioIptablesCommand } from './istio-iptables.js';

/**
 * Every subcommand of `interpose`, in the order `--help` lists them. Each file in src/cli
 * exports one factory returning a commander Command; add new ones here.
 */
export const commandFactories: ReadonlyArray<() => Command> = [istioIptablesCommand];
