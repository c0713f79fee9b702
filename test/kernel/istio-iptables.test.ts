/**
 * `interpose istio-iptables` against real netfilter, in namespaces each test creates:
 * idempotency, drift, reconcile, atomicity under an injected failure, cleanup that leaves
 * foreign rules byte-identical, dry-run, and namespace paths.
 */
import { execa } from 'execa';
import { buildIstioRuleset } from '../../src/rules/istio-ruleset.js';
import { NamespacedExecutor, SystemExecutor, type Executor } from '../../src/kernel/executor.js';
import { chooseIptables } from '../../src/kernel/iptables-binaries.linux.js';
import { ApplyFailedError, applyRuleset } from '../../src/kernel/backend.js';
import { IptablesBackend } from '../../src/kernel/iptables-backend.linux.js';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { namespaceCookie } from '../../src/native.js';
import { join } from 'node:path';
import { FileOwnershipStore } from '../../src/kernel/ownership-record.linux.js';
import { STATE_DIR, runCli } from '../helpers/cli.js';
import { ISTIO_BASE, optionsFrom } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';
import { netfilterState } from '../helpers/netfilter.js';

/** Foreign state a real host might hold: a DOCKER-like nat chain, filter and mangle rules. */
const FOREIGN_V4 = `*nat
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER -i docker0 -j RETURN
COMMIT
*filter
:FOREIGN-IN - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FOREIGN-IN -s 198.51.100.0/24 -j DROP
COMMIT
*mangle
-A PREROUTING -i eth7 -j MARK --set-xmark 0x7/0xffffffff
COMMIT
`;
const FOREIGN_V6 = `*filter
-A INPUT -s 2001:db8:77::/48 -j DROP
COMMIT
`;

async function seedForeign(ns: Netns): Promise<void> {
  await ns.exec(['iptables-restore', '--noflush'], { input: FOREIGN_V4 });
  await ns.exec(['ip6tables-restore', '--noflush'], { input: FOREIGN_V6 });
}

const nsArgs = (ns: Netns, ...args: string[]) => [...ISTIO_BASE, '--network-namespace', ns.name, ...args];

kernelTest('rerunning the same command ten times changes nothing and exits 0', async (t) => {
  const ns = await Netns.create(t);
  await seedForeign(ns);
  const args = ['istio-iptables', ...nsArgs(ns, '-i', '*', '-x', '192.0.2.0/24', '-b', '*', '--enable-ipv6')];
  const first = await runCli(args);
  t.is(first.exitCode, 0, first.stderr);
  t.regex(first.stderr, /rules installed/);
  const after = await netfilterState(ns);
  t.regex(after, /-A OUTPUT -j ISTIO_OUTPUT/);
  for (let i = 0; i < 10; i++) {
    const again = await runCli(args);
    t.is(again.exitCode, 0, again.stderr);
    t.regex(again.stderr, /already in place; nothing changed/);
  }
  const final = await netfilterState(ns);
  t.is(final, after);
  t.is(final.match(/-A OUTPUT -j ISTIO_OUTPUT/g)?.length, 2, 'one jump per family, no duplicates');
});

kernelTest('a different configuration is refused as drift, changing nothing; --reconcile replaces in place', async (t) => {
  const ns = await Netns.create(t);
  const fresh = await Netns.create(t);
  await seedForeign(ns);
  await seedForeign(fresh);
  t.is((await runCli(['istio-iptables', ...nsArgs(ns, '-i', '192.0.2.0/24', '-k', 'vm0')])).exitCode, 0);
  const before = await netfilterState(ns);

  const drift = await runCli(['istio-iptables', ...nsArgs(ns, '-i', '198.51.100.0/25', '-k', 'vm0')]);
  t.is(drift.exitCode, 1);
  t.regex(drift.stderr, /differ from this configuration.*--reconcile/s);
  t.regex(drift.stderr, /missing\s+-A ISTIO_OUTPUT -d 198\.51\.100\.0\/25 -j ISTIO_REDIRECT/);
  t.regex(drift.stderr, /extra\s+-A ISTIO_OUTPUT -d 192\.0\.2\.0\/24 -j ISTIO_REDIRECT/);
  t.is(await netfilterState(ns), before, 'drift must not change the kernel');

  const reconcile = await runCli(['istio-iptables', ...nsArgs(ns, '-i', '198.51.100.0/25', '-k', 'vm0', '--reconcile')]);
  t.is(reconcile.exitCode, 0, reconcile.stderr);
  t.is((await runCli(['istio-iptables', ...nsArgs(fresh, '-i', '198.51.100.0/25', '-k', 'vm0')])).exitCode, 0);
  t.is(await netfilterState(ns), await netfilterState(fresh), 'reconciled state equals a fresh install');
});

/** Lets everything through except the IPv6 restore, which fails as a kernel error would. */
class FailIPv6Restore implements Executor {
  failures = 0;
  constructor(private readonly inner: Executor) {}
  run(argv: readonly string[], options?: { input?: string }) {
    if (/^ip6tables-(nft|legacy)-restore$/.test(argv[0]!) && argv.includes('--noflush')) {
      this.failures++;
      return Promise.resolve({ exitCode: 4, stdout: '', stderr: 'injected failure before IPv6' });
    }
    return this.inner.run(argv, options);
  }
}

kernelTest('a failure after IPv4 succeeded and before IPv6 leaves the kernel exactly as it was', async (t) => {
  for (const scenario of ['fresh install', 'reconcile over existing rules'] as const) {
    const ns = await Netns.create(t);
    await seedForeign(ns);
    if (scenario === 'reconcile over existing rules') {
      t.is((await runCli(['istio-iptables', ...nsArgs(ns, '-i', '192.0.2.0/24', '--enable-ipv6')])).exitCode, 0);
    }
    const before = await netfilterState(ns);
    const exec = new FailIPv6Restore(new NamespacedExecutor(new SystemExecutor(), ns.name));
    const { config } = await optionsFrom([...ISTIO_BASE, '-i', '*', '-b', '*', '-m', 'TPROXY', '--enable-ipv6', '--drop-invalid']);
    const backend = new IptablesBackend(exec, await chooseIptables(exec));
    const err = await t.throwsAsync(applyRuleset(backend, buildIstioRuleset(config), { reconcile: true, forceApply: false }), {
      instanceOf: ApplyFailedError,
    });
    t.regex(err!.message, /injected failure before IPv6[\s\S]*rolled back/);
    t.is(exec.failures, 1, `${scenario}: IPv6 restore attempted once`);
    t.is(await netfilterState(ns), before, `${scenario}: kernel unchanged`);
    const rules = String((await ns.exec(['ip', 'rule', 'show'])).stdout);
    t.notRegex(rules, /lookup 133/, `${scenario}: no TPROXY route left behind`);
  }
});

kernelTest('--cleanup-only removes every chain, jump and route we own and leaves foreign rules byte-identical', async (t) => {
  const ns = await Netns.create(t);
  ns.writeEtc('resolv.conf', 'nameserver 192.0.2.53\nnameserver 2001:db8::53\n');
  await seedForeign(ns);
  const before = await netfilterState(ns);
  const rulesBefore = String((await ns.exec(['ip', 'rule', 'show'])).stdout);
  const flags = nsArgs(ns, '-m', 'TPROXY', '-b', '*', '-i', '*', '-c', 'eth9', '-k', 'vm0', '--redirect-dns', '--drop-invalid', '--enable-ipv6');
  const apply = await runCli(['istio-iptables', ...flags]);
  t.is(apply.exitCode, 0, apply.stderr);
  t.regex(String((await ns.exec(['ip', '-4', 'rule', 'show'])).stdout), /fwmark 0x539 lookup 133/);
  t.regex(String((await ns.exec(['ip', '-6', 'route', 'show', 'table', '133'])).stdout), /local default dev lo/);
  t.not(await netfilterState(ns), before);

  const clean = await runCli(['istio-iptables', ...flags, '--cleanup-only']);
  t.is(clean.exitCode, 0, clean.stderr);
  t.regex(clean.stderr, /removed \d+ chains, \d+ rules, routes: /);
  t.is(await netfilterState(ns), before, 'only foreign rules remain, byte for byte');
  t.is(String((await ns.exec(['ip', 'rule', 'show'])).stdout), rulesBefore);
  t.is(String((await ns.exec(['ip', '-6', 'route', 'show', 'table', '133'], { reject: false })).stdout).trim(), '');

  const again = await runCli(['istio-iptables', ...flags, '--cleanup-only']);
  t.is(again.exitCode, 0, 'cleanup with nothing to clean is fine');
  t.regex(again.stderr, /removed 0 chains, 0 rules/);
});

kernelTest('--dry-run prints restore text for each family and touches nothing', async (t) => {
  const ns = await Netns.create(t);
  const before = await netfilterState(ns);
  const r = await runCli(['istio-iptables', ...nsArgs(ns, '-i', '203.0.113.0/24', '--enable-ipv6', '--dry-run')]);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^# iptables-restore --noflush\n\*nat\n/);
  t.regex(r.stdout, /# ip6tables-restore --noflush\n\*nat\n/);
  t.regex(r.stdout, /-A ISTIO_OUTPUT -d 203\.0\.113\.0\/24 -j ISTIO_REDIRECT/);
  t.is(await netfilterState(ns), before);
  // The printed text is valid restore input as it stands.
  const v4 = r.stdout.split('# ip6tables-restore --noflush\n')[0]!;
  await ns.exec(['iptables-restore', '--noflush'], { input: v4 });
  t.regex(await netfilterState(ns), /-A ISTIO_OUTPUT -d 203\.0\.113\.0\/24 -j ISTIO_REDIRECT/);
});

/** Passes every command on, keeping what each `*-restore --noflush` was fed. */
class RecordRestores implements Executor {
  readonly restores: string[] = [];
  constructor(private readonly inner: Executor) {}
  run(argv: readonly string[], options?: { input?: string }) {
    if (/-restore$/.test(argv[0]!) && argv.includes('--noflush')) this.restores.push(options?.input ?? '');
    return this.inner.run(argv, options);
  }
}

const withoutComments = (text: string) => text.replace(/^#.*(\n|$)/gm, '');

kernelTest('--dry-run over an earlier install with other flags prints exactly what the apply then commits', async (t) => {
  const ns = await Netns.create(t);
  await seedForeign(ns);
  t.is((await runCli(['istio-iptables', ...nsArgs(ns, '-i', '192.0.2.0/24', '-k', 'vm0', '--enable-ipv6')])).exitCode, 0);
  const before = await netfilterState(ns);

  const flags = ['-i', '198.51.100.0/25', '-b', '8080', '-m', 'TPROXY', '--reconcile'];
  const dry = await runCli(['istio-iptables', ...nsArgs(ns, ...flags, '--dry-run')]);
  t.is(dry.exitCode, 0, dry.stderr);
  t.is(await netfilterState(ns), before, 'the dry run changed nothing');
  t.regex(dry.stdout, /^-D OUTPUT -j ISTIO_OUTPUT$/m, 'it removes what the earlier install holds');
  t.regex(dry.stdout, /^# ip6tables-restore --noflush\n\*/m, 'and the IPv6 rules this configuration no longer has');

  // The apply, as the CLI makes it (the same record, the same calls), recording what it feeds.
  const exec = new RecordRestores(new NamespacedExecutor(new SystemExecutor(), ns.name));
  const { config } = await optionsFrom([...ISTIO_BASE, ...flags]);
  const backend = new IptablesBackend(exec, await chooseIptables(exec), new FileOwnershipStore(ns.name, STATE_DIR));
  const r = await applyRuleset(backend, buildIstioRuleset(config), { reconcile: true, forceApply: false });
  t.is(r.action, 'replaced');
  t.is(withoutComments(dry.stdout), exec.restores.join(''), 'the dry run is the committed transaction, byte for byte');
  t.is(dry.stdout.match(/^# ip6?tables-restore --noflush$/gm)?.length, exec.restores.length, 'one section per restore');
});

kernelTest('--network-namespace accepts a /proc/PID/ns/net path', async (t) => {
  const ns = await Netns.create(t);
  const holder = execa('ip', ['netns', 'exec', ns.name, 'sleep', '60'], { reject: false });
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  await new Promise((r) => setTimeout(r, 200));
  const r = await runCli(['istio-iptables', ...ISTIO_BASE, '--network-namespace', `/proc/${holder.pid}/ns/net`, '-i', '192.0.2.0/24']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(await netfilterState(ns), /-A ISTIO_OUTPUT -d 192\.0\.2\.0\/24 -j ISTIO_REDIRECT/);
});

kernelTest('rendered rules read back from the kernel byte for byte (iptables-nft and iptables-legacy)', async (t) => {
  for (const binary of ['iptables-nft', 'iptables-legacy']) {
    const ns = await Netns.create(t);
    ns.writeEtc('resolv.conf', 'nameserver 192.0.2.53\nnameserver ::127.0.0.53\n');
    const args = nsArgs(ns, '-m', 'TPROXY', '-b', '*', '-i', '*', '-x', '::ffff:192.0.2.0/120,10.1.2.3/8', '--redirect-dns', '--drop-invalid', '--enable-ipv6', '--force-iptables-binary', binary, '-q', '3306', '-o', '25');
    t.is((await runCli(['istio-iptables', ...args])).exitCode, 0);
    // The second run compares kernel text with rendered text: any formatting difference would be drift.
    const again = await runCli(['istio-iptables', ...args]);
    t.is(again.exitCode, 0, again.stderr);
    t.regex(again.stderr, /already in place/, binary);
  }
});

kernelTest('built-in-chain rules from an earlier configuration are replaced by --reconcile and removed by a flag-less cleanup', async (t) => {
  const ns = await Netns.create(t);
  await seedForeign(ns);
  const before = await netfilterState(ns);
  t.is((await runCli(['istio-iptables', ...nsArgs(ns, '-c', 'va+', '-k', 'vm0', '-i', '*')])).exitCode, 0);
  const reconcile = await runCli(['istio-iptables', ...nsArgs(ns, '-c', 'lo', '-k', 'vm1', '-i', '*', '--reconcile')]);
  t.is(reconcile.exitCode, 0, reconcile.stderr);
  t.regex(reconcile.stderr, /extra\s+-A PREROUTING -i vm0 -j RETURN/);
  const state = await netfilterState(ns);
  t.notRegex(state, /va\+|vm0/, 'nothing of the old configuration is left');
  t.regex(state, /-A PREROUTING -i vm1 -j RETURN/);
  t.regex(state, /-A OUTPUT -o lo -j RETURN/);
  // Cleanup with none of the flags still knows what it installed.
  const clean = await runCli(['istio-iptables', '--network-namespace', ns.name, '--cleanup-only']);
  t.is(clean.exitCode, 0, clean.stderr);
  t.is(await netfilterState(ns), before);
});

kernelTest('--run-validation proves the redirect (both families) and exits 126 when there is none', async (t) => {
  const ns = await Netns.create(t);
  const ok = await runCli(['istio-iptables', ...nsArgs(ns, '-i', '*', '-b', '*', '--enable-ipv6', '--run-validation', '--probe-timeout', '3s')]);
  t.is(ok.exitCode, 0, ok.stderr);
  t.regex(ok.stderr, /redirect validated/);
  const bare = await Netns.create(t);
  const none = await runCli(['istio-iptables', ...nsArgs(bare, '--skip-rule-apply', '--run-validation', '--probe-timeout', '800ms')]);
  t.is(none.exitCode, 126, none.stderr);
  t.regex(none.stderr, /redirect validation failed after 800 ms: IPv4: no connection to 127\.0\.0\.6:15002 arrived redirected/);
});

kernelTest('ownership records of deleted namespaces are pruned on the next write', async (t) => {
  // A record no namespace can match: namespace inodes are proc inums, all ≥ 0xEFFFFFF9.
  const stale = join(STATE_DIR, 'iptables-netns-12345.json');
  writeFileSync(stale, JSON.stringify({ version: 1, families: {} }));
  const gone = await Netns.create(t);
  t.is((await runCli(['istio-iptables', ...nsArgs(gone, '-k', 'vmprune0')])).exitCode, 0);
  const goneInode = statSync(`/run/netns/${gone.name}`).ino;
  const goneRecord = join(STATE_DIR, `iptables-netns-${goneInode}.json`);
  t.true(existsSync(goneRecord), 'the install recorded its built-in-chain rules');
  t.deepEqual(JSON.parse(readFileSync(goneRecord, 'utf8')).families['4'].nat.PREROUTING, ['-i vmprune0 -j RETURN']);
  await gone.destroy();
  const other = await Netns.create(t);
  t.is((await runCli(['istio-iptables', ...nsArgs(other, '-k', 'vmprune1')])).exitCode, 0);
  t.false(existsSync(stale), 'a record of a namespace that is gone was pruned');
  // The kernel hands freed inodes out again, and other tests create namespaces concurrently:
  // the deleted namespace's record can only be expected gone if its inode is not alive again.
  const holders = [...readdirSync('/run/netns').map((n) => `/run/netns/${n}`), ...readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => `/proc/${p}/ns/net`)];
  const reused = holders.some((path) => {
    try {
      return statSync(path).ino === goneInode;
    } catch {
      return false; // gone meanwhile
    }
  });
  if (reused) t.log(`inode ${goneInode} was reused by a live namespace: its record stays (or was replaced)`);
  else t.false(existsSync(goneRecord), 'the deleted namespace’s record was pruned');
});

kernelTest('a record left by a dead namespace whose inode the kernel handed on is ignored (its cookie is not this namespace’s)', async (t) => {
  const ns = await Netns.create(t);
  const path = `/run/netns/${ns.name}`;
  const record = join(STATE_DIR, `iptables-netns-${statSync(path).ino}.json`);
  const claim = (cookie: string) =>
    writeFileSync(record, JSON.stringify({ version: 1, cookie, families: { 4: { nat: { PREROUTING: ['-i vmstale -j RETURN'] } } } }));
  // Records count only where our ISTIO_* chains are: install, then add the foreign rule.
  t.is((await runCli(['istio-iptables', ...nsArgs(ns, '-i', '*')])).exitCode, 0);
  await ns.exec(['iptables', '-t', 'nat', '-A', 'PREROUTING', '-i', 'vmstale', '-j', 'RETURN']);

  claim('1'); // another namespace's cookie: the rule is not ours here
  const clean = await runCli(['istio-iptables', ...nsArgs(ns, '--cleanup-only')]);
  t.is(clean.exitCode, 0, clean.stderr);
  t.regex(String((await ns.exec(['iptables', '-t', 'nat', '-S', 'PREROUTING'])).stdout), /-A PREROUTING -i vmstale -j RETURN/, 'the foreign rule stays');

  // The same record with this namespace's own cookie is ours, and clean-up removes the rule.
  t.is((await runCli(['istio-iptables', ...nsArgs(ns, '-i', '*')])).exitCode, 0);
  t.true(JSON.parse(readFileSync(record, 'utf8')).cookie === namespaceCookie(path)!.toString(), 'installs record the cookie');
  claim(namespaceCookie(path)!.toString());
  const ours = await runCli(['istio-iptables', ...nsArgs(ns, '--cleanup-only')]);
  t.is(ours.exitCode, 0, ours.stderr);
  t.notRegex(String((await ns.exec(['iptables', '-t', 'nat', '-S', 'PREROUTING'])).stdout), /vmstale/);
});
