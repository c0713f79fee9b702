/**
 * `--cleanup-only` edges on the iptables backend: the ::6/128 an install added goes with it
 * (and one that was there before stays); a foreign chain jumping into ISTIO_OUTPUT makes the
 * cleanup fail naming that chain, with nothing changed. And `verify --json`.
 */
import { ownedSnapshot } from '../../src/kernel/iptables-plan.js';
import { FileOwnershipStore } from '../../src/kernel/ownership-record.linux.js';
import { parseIptablesSave } from '../../src/rules/iptables-save-parser.js';
import { STATE_DIR, runCli } from '../helpers/cli.js';
import { ISTIO_BASE } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';
import { netfilterState } from '../helpers/netfilter.js';

const loV6 = async (ns: Netns) => String((await ns.exec(['ip', '-6', 'addr', 'show', 'dev', 'lo'])).stdout);

kernelTest('--cleanup-only removes the ::6/128 on lo the install added, and only that', async (t) => {
  const ns = await Netns.create(t, 'iptl');
  const flags = [...ISTIO_BASE, '--network-namespace', ns.name, '-i', '*', '--enable-ipv6'];
  t.is((await runCli(['istio-iptables', ...flags])).exitCode, 0);
  t.regex(await loV6(ns), /inet6 ::6\/128/);
  const clean = await runCli(['istio-iptables', ...flags, '--cleanup-only']);
  t.is(clean.exitCode, 0, clean.stderr);
  t.notRegex(await loV6(ns), /::6\/128/, 'the install added it: the cleanup removes it');

  // Someone else's ::6 (there before the install) stays.
  const other = await Netns.create(t, 'iptl');
  await other.exec(['ip', '-6', 'addr', 'add', '::6/128', 'dev', 'lo']);
  const otherFlags = [...ISTIO_BASE, '--network-namespace', other.name, '-i', '*', '--enable-ipv6'];
  t.is((await runCli(['istio-iptables', ...otherFlags])).exitCode, 0);
  t.is((await runCli(['istio-iptables', ...otherFlags, '--cleanup-only'])).exitCode, 0);
  t.regex(await loV6(other), /inet6 ::6\/128/, 'not ours: kept');
});

kernelTest('a foreign chain jumping into ISTIO_OUTPUT: cleanup fails naming it and changes nothing', async (t) => {
  const ns = await Netns.create(t, 'iptf');
  const flags = [...ISTIO_BASE, '--network-namespace', ns.name, '-i', '*', '-b', '*'];
  t.is((await runCli(['istio-iptables', ...flags])).exitCode, 0);
  await ns.exec(['iptables', '-t', 'nat', '-N', 'MESH-HOOK']);
  await ns.exec(['iptables', '-t', 'nat', '-A', 'MESH-HOOK', '-d', '198.51.100.0/24', '-j', 'ISTIO_OUTPUT']);
  const before = await netfilterState(ns);
  const clean = await runCli(['istio-iptables', ...flags, '--cleanup-only']);
  t.is(clean.exitCode, 1, clean.stderr);
  t.regex(clean.stderr, /foreign chain MESH-HOOK jumps to ISTIO_OUTPUT/);
  t.regex(clean.stderr, /Nothing was changed/);
  t.notRegex(clean.stderr, /\n\s+at /, 'no stack trace');
  t.is(await netfilterState(ns), before, 'all or nothing: nothing changed');
  // Once the foreign jump is gone, the cleanup goes through.
  await ns.exec(['iptables', '-t', 'nat', '-D', 'MESH-HOOK', '-d', '198.51.100.0/24', '-j', 'ISTIO_OUTPUT']);
  const again = await runCli(['istio-iptables', ...flags, '--cleanup-only']);
  t.is(again.exitCode, 0, again.stderr);
  t.notRegex(await netfilterState(ns), /ISTIO_/);
});

kernelTest('verify --json: the same differences as objects, exit codes as without it', async (t) => {
  const ns = await Netns.create(t, 'iptj');
  const flags = [...ISTIO_BASE, '--network-namespace', ns.name, '-i', '192.0.2.0/24'];
  t.is((await runCli(['istio-iptables', ...flags])).exitCode, 0);
  const ok = await runCli(['verify', ...flags, '--json']);
  t.is(ok.exitCode, 0, ok.stderr);
  const good = JSON.parse(ok.stdout);
  t.like(good, { ok: true, backend: 'iptables-nft', differences: [], warnings: [], interruptedApply: null });

  const other = [...ISTIO_BASE, '--network-namespace', ns.name, '-i', '198.51.100.0/25'];
  const text = await runCli(['verify', ...other]);
  const json = await runCli(['verify', ...other, '--json']);
  t.is(json.exitCode, 3);
  t.is(text.exitCode, 3);
  const bad = JSON.parse(json.stdout);
  t.false(bad.ok);
  t.deepEqual(
    bad.differences.map((d: { text: string }) => d.text),
    text.stdout.trim().split('\n'),
    'the same differences verify prints',
  );
  t.deepEqual(bad.differences.find((d: { kind: string }) => d.kind === 'missing'), {
    kind: 'missing',
    family: 4,
    table: 'nat',
    chain: 'ISTIO_OUTPUT',
    rule: '-A ISTIO_OUTPUT -d 198.51.100.0/25 -j ISTIO_REDIRECT',
    text: 'IPv4 nat ISTIO_OUTPUT: missing  -A ISTIO_OUTPUT -d 198.51.100.0/25 -j ISTIO_REDIRECT',
  });
  t.like(bad.differences.find((d: { kind: string }) => d.kind === 'extra'), { rule: '-A ISTIO_OUTPUT -d 192.0.2.0/24 -j ISTIO_REDIRECT' });
});

kernelTest('an apply that wrote its intent and never finished: verify exits 4 (interruptedApply in --json), the next run undoes it', async (t) => {
  const ns = await Netns.create(t, 'ipti');
  const flags = [...ISTIO_BASE, '--network-namespace', ns.name, '-i', '192.0.2.0/24', '--enable-ipv6'];
  t.is((await runCli(['istio-iptables', ...flags])).exitCode, 0);
  const before = await netfilterState(ns);
  // What a run killed between its IPv4 and IPv6 restores leaves: its intent, and IPv4 changed.
  const store = new FileOwnershipStore(ns.name, STATE_DIR);
  const record = store.load();
  const saved = String((await ns.exec(['iptables-save'])).stdout);
  const saved6 = String((await ns.exec(['ip6tables-save'])).stdout);
  store.save({
    ...record,
    pending: {
      action: 'apply',
      pid: 999999,
      started: '2024-01-01T00:00:00.000Z',
      previous: { 4: ownedSnapshot(parseIptablesSave(saved), new Map()), 6: ownedSnapshot(parseIptablesSave(saved6), new Map()) },
      adds: {},
      steps: { 4: 1, 6: 1 },
      before: { families: {} },
    },
  });
  await ns.exec(['iptables', '-t', 'nat', '-I', 'ISTIO_OUTPUT', '1', '-d', '203.0.113.0/24', '-j', 'ISTIO_REDIRECT']);

  const v = await runCli(['verify', ...flags]);
  t.is(v.exitCode, 4, v.stdout + v.stderr);
  t.regex(v.stderr, /interrupted apply \(pid 999999/);
  const j = await runCli(['verify', ...flags, '--json']);
  t.is(j.exitCode, 4);
  t.deepEqual(JSON.parse(j.stdout).interruptedApply, { action: 'apply', pid: 999999, started: '2024-01-01T00:00:00.000Z' });
  t.false(JSON.parse(j.stdout).ok);

  const next = await runCli(['istio-iptables', ...flags]);
  t.is(next.exitCode, 0, next.stderr);
  t.regex(next.stderr, /interrupted apply \(pid 999999.*was found and undone/);
  t.regex(next.stderr, /already in place/);
  t.is(await netfilterState(ns), before, 'back to exactly what was there before the interrupted apply');
  t.is((await runCli(['verify', ...flags])).exitCode, 0);
});
