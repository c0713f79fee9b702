/**
 * All or nothing for the iptables backend across both families, under SIGKILL and under
 * concurrent runs: after a killed apply the namespace holds exactly the old or exactly the new
 * rules in BOTH families, or `verify` reports the interrupted apply and the next run repairs
 * it; concurrent applies serialize (one configuration at the end, no duplicate jumps);
 * concurrent cleanups never bring our chains back and never touch a foreign chain.
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, STATE_DIR, runCli } from '../helpers/cli.js';
import { ISTIO_BASE } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';
import { netfilterState } from '../helpers/netfilter.js';
import { SeededRandom } from '../helpers/seeded-random.js';

const FOREIGN_NAT = `*nat
:FOREIGN-NAT - [0:0]
-A FOREIGN-NAT -d 198.51.100.9/32 -j RETURN
-A OUTPUT -d 203.0.113.77/32 -j FOREIGN-NAT
COMMIT
`;

/** A file of `n` distinct IPv4 and IPv6 CIDRs, half each, for `-x @FILE`. */
function cidrFile(dir: string, n: number, salt: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n / 2; i++) lines.push(`100.${64 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}/32`);
  for (let i = 0; i < n / 2; i++) lines.push(`2001:db8:${salt.toString(16)}:${(i >> 8).toString(16)}::${(i & 255).toString(16)}/128`);
  const file = join(dir, `cidrs-${salt}.txt`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

kernelTest('SIGKILL at random moments of a 20k-CIDR apply: both families old, both new, or reported and repaired', async (t) => {
  t.timeout(20 * 60_000);
  const kills = Number(process.env.ATOMIC_KILLS ?? 12);
  const seed = Number(process.env.ATOMIC_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed}, ${kills} kills (ATOMIC_SEED=${seed} ATOMIC_KILLS=${kills} reproduces)`);
  const r = new SeededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'interpose-atomic-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ns = await Netns.create(t, 'ipta');
  await ns.exec(['iptables-restore', '--noflush'], { input: FOREIGN_NAT });
  const base = [...ISTIO_BASE, '--network-namespace', ns.name, '--enable-ipv6'];
  const oldFlags = [...base, '-i', '*', '-b', '*', '-k', 'vm0', '-x', `@${cidrFile(dir, 2000, 1)}`];
  const newFlags = [...base, '-i', '*', '-b', '8080', '-c', 'eth9', '-x', `@${cidrFile(dir, 20000, 2)}`];

  const install = async (flags: string[]) => {
    const a = await runCli(['istio-iptables', ...flags, '--reconcile']);
    t.is(a.exitCode, 0, a.stderr);
  };
  // Waits until no run (nor a restore a killed run started) holds the namespace's lock.
  const lockFile = join(STATE_DIR, `iptables-netns-${statSync(`/run/netns/${ns.name}`).ino}.lock`);
  const settled = () => execa('flock', [lockFile, 'true']);
  // How long an apply of the new flags over the old takes: kills land inside that window.
  await install(newFlags);
  const newState = await netfilterState(ns);
  await install(oldFlags);
  const oldState = await netfilterState(ns);
  const t0 = Date.now();
  await install(newFlags);
  const window = Date.now() - t0;
  t.log(`a full apply takes ${window} ms`);
  await install(oldFlags);
  const outcomes = { old: 0, new: 0, reported: 0 };

  for (let k = 0; k < kills; k++) {
    const delay = r.int(0, window);
    const child = execa('node', [CLI, 'istio-iptables', ...newFlags, '--reconcile'], {
      reject: false,
      env: { PATH: process.env.PATH!, INTERPOSE_STATE_DIR: STATE_DIR },
      extendEnv: false,
    });
    await new Promise((res) => setTimeout(res, delay));
    child.kill('SIGKILL');
    await child;
    await settled();
    const now = await netfilterState(ns);
    const what = `kill ${k} after ${delay} ms`;
    if (now === oldState) outcomes.old++;
    else if (now === newState) outcomes.new++;
    else {
      // Neither (one family old, one new, or half a family): verify must say an apply was interrupted.
      const v = await runCli(['verify', ...newFlags]);
      t.is(v.exitCode, 4, `${what}: a half state that verify does not report as interrupted\n${v.stdout}${v.stderr}`);
      t.regex(v.stderr, /interrupted apply/, what);
      outcomes.reported++;
    }
    if (now !== oldState || k === kills - 1) {
      // The next run finds exactly the old state again (undoing an interrupted apply first).
      await install(oldFlags);
      t.is(await netfilterState(ns), oldState, `${what}: the next run leaves exactly the old state`);
    }
  }
  const finalVerify = await runCli(['verify', ...oldFlags]);
  t.is(finalVerify.exitCode, 0, finalVerify.stdout + finalVerify.stderr);
  t.log(`outcomes: ${JSON.stringify(outcomes)}`);
  t.regex(oldState, /-A OUTPUT -d 203\.0\.113\.77\/32 -j FOREIGN-NAT/, 'the foreign nat chain is still there');
});

kernelTest('five concurrent --reconcile applies of different configurations: exactly one configuration, no duplicate jumps', async (t) => {
  const ns = await Netns.create(t, 'iptc');
  await ns.exec(['iptables-restore', '--noflush'], { input: FOREIGN_NAT });
  const configs = [0, 1, 2, 3, 4].map((i) => [...ISTIO_BASE, '--network-namespace', ns.name, '--enable-ipv6', '-i', `192.0.2.${i * 16}/28`, '-k', `vm${i}`, '-b', String(8000 + i)]);
  for (let round = 0; round < 3; round++) {
    const results = await Promise.all(configs.map((flags) => runCli(['istio-iptables', ...flags, '--reconcile'])));
    for (const res of results) t.is(res.exitCode, 0, res.stderr);
    const verdicts = await Promise.all(configs.map((flags) => runCli(['verify', ...flags])));
    t.is(verdicts.filter((v) => v.exitCode === 0).length, 1, `round ${round}: exactly one configuration holds: ${verdicts.map((v) => v.exitCode)}`);
    const state = await netfilterState(ns);
    t.is(state.match(/^-A OUTPUT -j ISTIO_OUTPUT$/gm)?.length, 2, 'one jump per family');
    const kRules = state.match(/^-A PREROUTING -i vm\d -j RETURN$/gm) ?? [];
    t.is(kRules.length, 2, 'one configuration’s -k rule, once per family');
    t.is(new Set(kRules).size, 1, 'the same configuration in both families');
    t.regex(state, /-A OUTPUT -d 203\.0\.113\.77\/32 -j FOREIGN-NAT/);
  }
  // Without --reconcile: one wins, the others report drift cleanly (exit 1), nothing mixed.
  t.is((await runCli(['istio-iptables', '--network-namespace', ns.name, '--cleanup-only'])).exitCode, 0);
  const plain = await Promise.all(configs.map((flags) => runCli(['istio-iptables', ...flags])));
  t.is(plain.filter((p) => p.exitCode === 0).length, 1, plain.map((p) => p.stderr).join('\n'));
  for (const p of plain.filter((x) => x.exitCode !== 0)) t.regex(p.stderr, /differ from this configuration/);
});

kernelTest('concurrent --cleanup-only runs never bring our chains back and leave a foreign nat chain byte-identical', async (t) => {
  const ns = await Netns.create(t, 'iptk');
  await ns.exec(['iptables-restore', '--noflush'], { input: FOREIGN_NAT });
  const foreign = async () => String((await ns.exec(['iptables', '-t', 'nat', '-S'])).stdout).split('\n').filter((l) => /FOREIGN/.test(l)).join('\n');
  const before = await netfilterState(ns);
  const foreignBefore = await foreign();
  const flags = [...ISTIO_BASE, '--network-namespace', ns.name, '--enable-ipv6', '-i', '*', '-b', '*', '-k', 'vm0'];
  for (let round = 0; round < 4; round++) {
    t.is((await runCli(['istio-iptables', ...flags])).exitCode, 0);
    const runs = await Promise.all([0, 1, 2, 3, 4].map(() => runCli(['istio-iptables', ...flags, '--cleanup-only'])));
    for (const res of runs) t.is(res.exitCode, 0, res.stderr);
    const after = await netfilterState(ns);
    t.notRegex(after, /ISTIO_/, `round ${round}: no chain of ours came back`);
    t.is(after, before, `round ${round}: only the foreign rules remain, byte for byte`);
    t.is(await foreign(), foreignBefore);
  }
});
