import { Command } from 'commander';

/** Placeholder while the foundation lands; replaced by the real command. */
export function istioIptablesCommand(): Command {
  return new Command('istio-iptables').description('istio-init compatible redirect rules');
}
