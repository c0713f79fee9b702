/** The `::6/128` address on lo that Envoy's (and the proxy's) inbound passthrough binds to. */
import type { Ruleset } from '../rules/ir.js';
import type { Executor } from './executor.js';

/**
 * istio-init adds ::6/128 to lo when IPv6 is on (IPv6 loopback is a single address, unlike
 * 127/8); the rules exempt it the way they exempt 127.0.0.6. Idempotent; a failure (IPv6 off on
 * lo) is reported, not fatal, since the rules themselves are in place.
 */
export async function ensureIPv6PassthroughAddress(executor: Executor, ruleset: Ruleset): Promise<void> {
  if (!ruleset.families.some((f) => f.family === 6)) return;
  const r = await executor.run(['ip', '-6', 'addr', 'add', '::6/128', 'dev', 'lo']);
  if (r.exitCode !== 0 && !/File exists|already assigned/i.test(r.stderr)) {
    process.stderr.write(`interpose: warning: could not add ::6/128 to lo: ${r.stderr.trim()}\n`);
  }
}
