import { DiscoveryError } from './discovery-error.js';
import { field, parseJsonOutput } from './json-output.js';
import { runCli, shown } from './run-cli.js';
import type { DiscoveryOptions } from './types.js';

/**
 * Runs `kubectl [--context C] ARGS -o json` and parses the answer; shared by every platform
 * that reads the cluster through its API rather than a cloud CLI.
 */
export async function kubectlJson(
  options: DiscoveryOptions,
  args: readonly string[],
  notFoundFix?: string,
): Promise<{ json: unknown; cmd: string }> {
  const full = [...(options.context ? ['--context', options.context] : []), ...args, '-o', 'json'];
  const cmd = shown('kubectl', full);
  const stdout = await runCli('kubectl', full, { timeoutMs: options.timeoutMs, env: options.env, notFoundFix });
  return { json: parseJsonOutput(stdout, cmd), cmd };
}

/** The `items` of a kubectl list, or an error naming the command when the shape is wrong. */
export function listItems(json: unknown, cmd: string): unknown[] {
  const items = field(json, 'items');
  if (!Array.isArray(items)) {
    throw new DiscoveryError(`${cmd}: expected a List with items`, 'run the command by hand to check what it prints');
  }
  return items;
}

/**
 * Reads `--flag=value` or `--flag value` from a component's argv (command + args), the two
 * forms static-pod manifests and k3s's node-args use.
 */
export function flagValue(argv: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
    if (a === flag && i + 1 < argv.length) return argv[i + 1];
  }
  return undefined;
}
