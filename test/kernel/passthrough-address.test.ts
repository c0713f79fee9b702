/**
 * ::6/128 on lo, added over netlink (the executor runs on the real kernel) and through `ip` (a
 * wrapper hides that): the namespace ends up the same either way, a second call changes
 * nothing and warns about nothing, and an IPv4-only ruleset adds nothing.
 */
import { NamespacedExecutor, SystemExecutor, type CommandResult, type Executor } from '../../src/kernel/executor.js';
import { ensureIPv6PassthroughAddress } from '../../src/kernel/passthrough-address.linux.js';
import type { Ruleset } from '../../src/rules/ir.js';
import { kernelTest, Netns } from '../helpers/kernel.js';

/** Passes commands on but hides where they run, so the code under test must use `ip`. */
class RecordingExecutor implements Executor {
  readonly commands: string[] = [];
  constructor(private readonly inner: Executor) {}
  run(argv: readonly string[], options?: { input?: string }): Promise<CommandResult> {
    this.commands.push(argv.join(' '));
    return this.inner.run(argv, options);
  }
}

const dualStack: Ruleset = { families: [{ family: 4, tables: [] }, { family: 6, tables: [] }] };
const ipv4Only: Ruleset = { families: [{ family: 4, tables: [] }] };

async function loAddresses(ns: Netns): Promise<string> {
  const addr = await ns.exec(['ip', '-6', 'addr', 'show', 'dev', 'lo']);
  const local = await ns.exec(['ip', '-6', 'route', 'show', 'table', 'local']);
  return `${addr.stdout}\n${local.stdout}`;
}

kernelTest('::6/128 on lo: netlink and ip leave the same namespace; reruns and IPv4-only rulesets change nothing', async (t) => {
  const viaNetlink = await Netns.create(t, 'pta');
  const viaIp = await Netns.create(t, 'pta');
  const direct = new NamespacedExecutor(new SystemExecutor(), viaNetlink.name);
  t.is(direct.realNamespace, `/run/netns/${viaNetlink.name}`);
  const recording = new RecordingExecutor(new NamespacedExecutor(new SystemExecutor(), viaIp.name));

  const warnings: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    warnings.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    await ensureIPv6PassthroughAddress(direct, ipv4Only);
    t.notRegex(await loAddresses(viaNetlink), /::6/, 'IPv4 only: no ::6');
    for (let i = 0; i < 2; i++) {
      await ensureIPv6PassthroughAddress(direct, dualStack);
      await ensureIPv6PassthroughAddress(recording, dualStack);
    }
  } finally {
    process.stderr.write = write;
  }
  t.deepEqual(warnings, [], 'nothing to warn about, also on the second call');
  t.is(recording.commands.filter((c) => c.endsWith('ip -6 addr add ::6/128 dev lo')).length, 2, 'the wrapped executor got `ip`');
  const a = await loAddresses(viaNetlink);
  t.regex(a, /inet6 ::6\/128 scope global/);
  t.is(a, await loAddresses(viaIp));
});
