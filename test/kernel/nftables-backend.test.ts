/**
 * `interpose istio-iptables --native-nftables` against real nf_tables, in namespaces each test
 * creates: rendered rules equal what the kernel lists back (so reruns are no-ops), ten reruns,
 * drift and reconcile, atomicity under injected failures (kernel-rejected transaction; failing
 * TPROXY routes after commit), cleanup that leaves foreign tables byte-identical, dry-run, and
 * namespace paths. The CLI commits through netlink; the in-process tests run both ways.
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NamespacedExecutor, SystemExecutor, type CommandResult, type Executor } from '../../src/kernel/executor.js';
import { ApplyFailedError, applyRuleset } from '../../src/kernel/backend.js';
import { DriftError } from '../../src/errors/drift-error.js';
import { findNft } from '../../src/kernel/nft-binary.linux.js';
import { NftablesBackend } from '../../src/kernel/nftables-backend.linux.js';
import type { NftBatchPlan } from '../../src/rules/render/netlink/nft-netlink-batch.js';
import { NetlinkTransaction, NftToolTransaction, type NftTransaction } from '../../src/kernel/nft-transaction.linux.js';
import { namespacePath } from '../../src/kernel/executor.js';
import { buildIstioRuleset } from '../../src/rules/istio-ruleset.js';
import type { Ruleset } from '../../src/rules/ir.js';
import { runCli } from '../helpers/cli.js';
import { ISTIO_BASE, optionsFrom } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';
import { policyRouting } from '../helpers/netfilter.js';

/** Foreign state a real host might hold: a DOCKER-like ip nat chain, an inet filter, ip6 mangle. */
const FOREIGN = `table ip nat {
	chain DOCKER {
		iifname "docker0" counter return
	}
	chain PREROUTING {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local counter jump DOCKER
	}
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 22 counter accept
		jump foreign-in
	}
	chain foreign-in {
		ip saddr 198.51.100.0/24 drop
	}
}
table ip6 mangle {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		iifname "eth7" meta mark set 0x00000007
	}
}
`;

const OURS = /^table inet istio-proxy-/;
/** The real nft: under npm, node_modules/.bin holds an unrelated one (@vercel/nft). */
const NFT = findNft();

async function ruleset(ns: Netns): Promise<string> {
  return String((await ns.exec([NFT, 'list', 'ruleset'])).stdout);
}

/** The listing split per table, so foreign and ours can be compared apart. */
function tablesOf(listing: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const block of listing.split(/^(?=table )/m)) if (block.trim()) out.set(block.split('\n')[0]!, block);
  return out;
}

function foreignPart(listing: string): string {
  return [...tablesOf(listing)].filter(([head]) => !OURS.test(head)).map(([, b]) => b.trimEnd()).join('\n');
}

function oursPart(listing: string): string {
  return [...tablesOf(listing)].filter(([head]) => OURS.test(head)).map(([, b]) => b.trimEnd()).join('\n');
}

/** Policy rules and the TPROXY route table, both families (::6 on lo is not ours to remove). */
async function tproxyRouting(ns: Netns): Promise<string> {
  const parts: string[] = [];
  for (const fam of ['-4', '-6']) {
    parts.push(String((await ns.exec(['ip', fam, 'rule', 'show'])).stdout));
    parts.push(String((await ns.exec(['ip', fam, 'route', 'show', 'table', '133'], { reject: false })).stdout));
  }
  return parts.join('\n');
}

async function seedForeign(ns: Netns): Promise<void> {
  await ns.exec([NFT, '-f', '-'], { input: FOREIGN });
}

const nsArgs = (ns: Netns, ...args: string[]) => ['istio-iptables', ...ISTIO_BASE, '--network-namespace', ns.name, '--native-nftables', ...args];

/** 12 IPv4 and 10 IPv6 exclusions, overlapping and adjacent: rendered as interval sets. */
const LONG_EXCLUDE = [
  ...Array.from({ length: 12 }, (_, i) => `198.51.100.${i * 8}/29`),
  '198.51.100.4/30',
  ...Array.from({ length: 10 }, (_, i) => `2001:db8:${i * 2}::/48`),
].join(',');

async function rulesetFor(args: string[]): Promise<Ruleset> {
  return buildIstioRuleset((await optionsFrom([...ISTIO_BASE, ...args])).config);
}

/** The two ways a transaction is committed; the in-process tests below run with each. */
const TRANSPORTS = ['nft -f', 'netlink'] as const;
type Transport = (typeof TRANSPORTS)[number];

/** A backend for `ns` that reads through `executor` and commits `via` (netlink in `ns` itself). */
function backendVia(via: Transport, executor: Executor, ns: Netns, wrap: (tx: NftTransaction) => NftTransaction = (tx) => tx): NftablesBackend {
  const tx = via === 'netlink' ? new NetlinkTransaction(namespacePath(ns.name)) : new NftToolTransaction(executor, NFT);
  return new NftablesBackend(executor, {}, NFT, wrap(tx));
}

/** Adds a rule that jumps from istio-output to itself: nft and the kernel accept it, the commit's loop check refuses it. */
class LoopInjectingTransaction implements NftTransaction {
  readonly name = 'injecting';
  constructor(private readonly inner: NftTransaction) {}
  tableNames(): Promise<string[]> {
    return this.inner.tableNames();
  }
  commit(plan: NftBatchPlan, digest?: Buffer): Promise<void> {
    const tables = plan.tables.map((t) =>
      t.name !== 'istio-proxy-nat'
        ? t
        : {
            ...t,
            chains: t.chains.map((c) =>
              c.name !== 'istio-output'
                ? c
                : {
                    ...c,
                    rules: [...c.rules, 'counter jump istio-output'],
                    sources: [...c.sources, { rule: { matches: [], target: { kind: 'jump' as const, chain: 'ISTIO_OUTPUT' } } }],
                  },
            ),
          },
    );
    return this.inner.commit({ ...plan, tables }, digest);
  }
}

/** Fails `ip -4 rule add` (the TPROXY policy rule) as if the kernel refused it. */
class FailingRoutesExecutor implements Executor {
  constructor(private readonly inner: Executor) {}
  run(argv: readonly string[], options: { input?: string } = {}): Promise<CommandResult> {
    if (argv.join(' ').includes('ip -4 rule add')) {
      return Promise.resolve({ exitCode: 2, stdout: '', stderr: 'RTNETLINK answers: Operation not permitted (injected)' });
    }
    return this.inner.run(argv, options);
  }
}

kernelTest('nftables: rerunning the same command ten times changes nothing and exits 0', async (t) => {
  const ns = await Netns.create(t, 'nft');
  await seedForeign(ns);
  const foreign = await ruleset(ns);
  const args = nsArgs(ns, '-i', '*', '-x', LONG_EXCLUDE, '-b', '*', '--enable-ipv6', '--redirect-dns', '--capture-all-dns');
  const first = await runCli(args);
  t.is(first.exitCode, 0, first.stderr);
  t.regex(first.stderr.split('\n')[0]!, /^interpose: backend nftables \(nftables v[\d.]+.*, commit via netlink\)/, 'the backend is named in the first line');
  t.regex(first.stderr, /rules installed/);
  const after = await ruleset(ns);
  t.regex(after, /set istio-output-return-v4 \{/);
  t.regex(after, /ip6 daddr @istio-output-return-v6 counter packets 0 bytes 0 return/);
  for (let i = 0; i < 10; i++) {
    // Half of the reruns choose the backend through NATIVE_NFTABLES instead of the flag.
    const again = i % 2 === 0 ? await runCli(args) : await runCli(args.filter((a) => a !== '--native-nftables'), { env: { NATIVE_NFTABLES: 'true' } });
    t.is(again.exitCode, 0, again.stderr);
    t.regex(again.stderr, /^interpose: backend nftables/);
    t.regex(again.stderr, /already in place; nothing changed/);
  }
  t.is(await ruleset(ns), after);
  t.is(foreignPart(after), foreignPart(foreign), 'foreign tables byte-identical');
});

kernelTest('nftables: what the kernel lists back equals the rendering, across features, committed either way (apply twice → unchanged)', async (t) => {
  const ns = await Netns.create(t, 'nft');
  ns.writeEtc('resolv.conf', 'nameserver 192.0.2.53\nnameserver 2001:db8::53\n');
  const executor = new NamespacedExecutor(new SystemExecutor(), ns.name);
  const configs: string[][] = [
    ['-m', 'TPROXY', '-b', '80,443', '-c', 'eth9', '--enable-ipv6', '--drop-invalid'],
    ['-k', 'eth1,eth2', '-i', LONG_EXCLUDE, '--enable-ipv6'],
    ['-i', '*', '-x', LONG_EXCLUDE, '-o', '25,587', '-q', '8443', '-d', '15020', '-b', '*'],
    ['--redirect-dns', '-u', '3,4', '-g', '1,2', '--enable-ipv6', '-b', '', '-m', 'TPROXY'],
    ['-i', '192.0.2.0/24,2001:db8::/32', '--enable-ipv6'],
  ];
  for (const args of configs) {
    const { config } = await optionsFrom([...ISTIO_BASE, ...args], {}, {
      lookupUser: async () => undefined,
      lookupGroup: async () => undefined,
      readResolvConf: async () => 'nameserver 192.0.2.53\nnameserver 2001:db8::53\n',
      hasGlobalIPv6: async () => false,
      networkNamespaceExists: async () => true,
    });
    const rs = buildIstioRuleset(config);
    for (const via of TRANSPORTS) {
      const backend = backendVia(via, executor, ns);
      const first = await applyRuleset(backend, rs, { reconcile: true, forceApply: true });
      t.not(first.action, 'unchanged', args.join(' '));
      const second = await applyRuleset(backend, rs, { reconcile: false, forceApply: false });
      t.is(second.action, 'unchanged', `${via}, ${args.join(' ')}: ${second.differences.join('; ')}`);
    }
  }
});

kernelTest('nftables: a different configuration fails with drift and changes nothing; --reconcile replaces in place', async (t) => {
  const ns = await Netns.create(t, 'nft');
  await seedForeign(ns);
  t.is((await runCli(nsArgs(ns, '-b', '*', '-i', '*', '--drop-invalid'))).exitCode, 0);
  const before = await ruleset(ns);

  const drift = await runCli(nsArgs(ns, '-b', '8080', '-i', '*', '-x', LONG_EXCLUDE));
  t.is(drift.exitCode, 1);
  t.regex(drift.stderr, /existing nftables tables differ from this configuration/);
  t.regex(drift.stderr, /missing  tcp dport 8080 counter jump istio-in-redirect/);
  t.regex(drift.stderr, /inet istio-proxy-mangle: extra table/);
  t.regex(drift.stderr, /--reconcile/);
  t.is(await ruleset(ns), before, 'drift changes nothing');

  const replaced = await runCli(nsArgs(ns, '-b', '8080', '-i', '*', '-x', LONG_EXCLUDE, '--reconcile'));
  t.is(replaced.exitCode, 0, replaced.stderr);
  t.regex(replaced.stderr, /replaced existing rules \(--reconcile\)/);
  const after = await ruleset(ns);
  t.is(foreignPart(after), foreignPart(before), 'foreign tables byte-identical');
  t.notRegex(after, /istio-proxy-mangle/);

  const fresh = await Netns.create(t, 'nft');
  // Installed through nft this time: the two ways of committing leave the same tables.
  const viaTool = await runCli(nsArgs(fresh, '-b', '8080', '-i', '*', '-x', LONG_EXCLUDE), { env: { INTERPOSE_NFT_COMMIT: 'nft' } });
  t.is(viaTool.exitCode, 0, viaTool.stderr);
  t.regex(viaTool.stderr, /commit via nft -f\)/);
  t.is(oursPart(after), oursPart(await ruleset(fresh)), 'reconciled tables equal a fresh install');

  const bogus = await runCli(nsArgs(fresh, '-b', '22', '--reconcile'), { env: { INTERPOSE_NFT_COMMIT: 'libnftables' } });
  t.is(bogus.exitCode, 1);
  t.regex(bogus.stderr, /INTERPOSE_NFT_COMMIT="libnftables" is not supported: expected "netlink" or "nft"/);
  t.is(oursPart(await ruleset(fresh)), oursPart(after), 'a bad INTERPOSE_NFT_COMMIT changes nothing');
});

for (const via of TRANSPORTS) {
  kernelTest(`nftables (${via}): a transaction the kernel rejects leaves the previous tables untouched (injected failure)`, async (t) => {
    const ns = await Netns.create(t, 'nft');
    await seedForeign(ns);
    const executor = new NamespacedExecutor(new SystemExecutor(), ns.name);
    const old = await rulesetFor(['-b', '*', '-i', '*', '--enable-ipv6', '--drop-invalid']);
    await applyRuleset(backendVia(via, executor, ns), old, { reconcile: false, forceApply: false });
    const before = await ruleset(ns);

    // Passes nft's own checks, then the kernel refuses it (a jump loop: ELOOP) after the batch
    // already deleted and re-created our tables: all of it must be undone.
    const failing = backendVia(via, executor, ns, (tx) => new LoopInjectingTransaction(tx));
    const next = await rulesetFor(['-b', '8080', '-i', '*', '-x', LONG_EXCLUDE, '-m', 'TPROXY']);
    const err = await t.throwsAsync(applyRuleset(failing, next, { reconcile: true, forceApply: false }), { instanceOf: ApplyFailedError });
    t.regex(err!.message, via === 'netlink' ? /nf_tables refused "add rule inet istio-proxy-nat istio-output counter jump istio-output": EMLINK \(too many links\)/ : /Too many links|loop/i);
    t.regex(err!.message, /rejected as a whole/);
    t.is(await ruleset(ns), before, 'every table, ours and foreign, byte-identical');

    // The same on a first install: nothing of ours appears.
    const empty = await Netns.create(t, 'nft');
    const emptyExec = new NamespacedExecutor(new SystemExecutor(), empty.name);
    const failingFresh = backendVia(via, emptyExec, empty, (tx) => new LoopInjectingTransaction(tx));
    await t.throwsAsync(applyRuleset(failingFresh, next, { reconcile: false, forceApply: false }), { instanceOf: ApplyFailedError });
    t.is(await ruleset(empty), '');
  });
}

/** Runs `script` through nft right after the tables were first listed (between snapshot and commit). */
class RacingTransaction implements NftTransaction {
  readonly name = 'racing';
  private raced = false;
  constructor(
    private readonly inner: NftTransaction,
    private readonly ns: Netns,
    private readonly script: string,
  ) {}
  async tableNames(): Promise<string[]> {
    const names = await this.inner.tableNames();
    if (!this.raced) {
      this.raced = true;
      await this.ns.exec([NFT, '-f', '-'], { input: this.script });
    }
    return names;
  }
  commit(plan: NftBatchPlan, digest?: Buffer): Promise<void> {
    return this.inner.commit(plan, digest);
  }
}

for (const via of TRANSPORTS) {
  kernelTest(`nftables (${via}): a table of ours that appears after the state was read fails the install, untouched`, async (t) => {
    const ns = await Netns.create(t, 'nft');
    await seedForeign(ns);
    const foreign = foreignPart(await ruleset(ns));
    // Someone else installs istio-proxy-nat while we render: our `create table` must fail the
    // whole transaction rather than merge our chains into theirs.
    const theirs = 'table inet istio-proxy-nat {\n\tchain theirs {\n\t\tcounter accept\n\t}\n}\n';
    const exec = new NamespacedExecutor(new SystemExecutor(), ns.name);
    const racing = backendVia(via, exec, ns, (tx) => new RacingTransaction(tx, ns, theirs));
    const rs = await rulesetFor(['-b', '*', '-i', '*', '-x', LONG_EXCLUDE, '--enable-ipv6']);
    const err = await t.throwsAsync(applyRuleset(racing, rs, { reconcile: false, forceApply: false }), { instanceOf: ApplyFailedError });
    // netlink: the batch was built against the generation read with the tables, and theirs
    // came after it; nft -f: our `create table` meets theirs.
    t.regex(err!.message, via === 'netlink' ? /ruleset changed after interpose read it .*nothing was applied; run the command again/ : /File exists/);
    const after = await ruleset(ns);
    t.is(foreignPart(after), foreign, 'foreign tables byte-identical');
    t.regex(oursPart(after), /^table inet istio-proxy-nat \{\n\tchain theirs \{\n\t\tcounter packets 0 bytes 0 accept\n\t\}\n\}$/, 'their table as they wrote it, alone');
  });
}

/** Counts the `nft … list table` processes a backend runs (reading our tables back). */
class CountingExecutor implements Executor {
  listings = 0;
  constructor(private readonly inner: Executor) {}
  run(argv: readonly string[], options: { input?: string } = {}): Promise<CommandResult> {
    if (argv.includes('list') && argv.includes('table')) this.listings++;
    return this.inner.run(argv, options);
  }
}

kernelTest('nftables (netlink): a rerun over our own stamped commit reads nothing back; any other commit makes it look', async (t) => {
  const ns = await Netns.create(t, 'nft');
  const exec = new CountingExecutor(new NamespacedExecutor(new SystemExecutor(), ns.name));
  const rs = await rulesetFor(['-b', '*', '-i', '*', '-x', LONG_EXCLUDE, '--enable-ipv6', '--redirect-dns', '-m', 'TPROXY']);
  t.is((await applyRuleset(backendVia('netlink', exec, ns), rs, { reconcile: false, forceApply: false })).action, 'installed');
  const installed = await ruleset(ns);
  t.notRegex(installed, /comment/, 'the stamp does not show in listings');

  exec.listings = 0;
  t.is((await applyRuleset(backendVia('netlink', exec, ns), rs, { reconcile: false, forceApply: false })).action, 'unchanged');
  t.is(exec.listings, 0, 'nothing read back');

  // A different configuration: its digest differs, so the tables are read and compared.
  await t.throwsAsync(applyRuleset(backendVia('netlink', exec, ns), await rulesetFor(['-b', '*', '-i', '*']), { reconcile: false, forceApply: false }), {
    instanceOf: DriftError,
  });
  t.true(exec.listings > 0);

  // Someone else's commit (a foreign table) moves the generation: read back, still unchanged.
  await ns.exec([NFT, 'add', 'table', 'inet', 'foreign']);
  exec.listings = 0;
  t.is((await applyRuleset(backendVia('netlink', exec, ns), rs, { reconcile: false, forceApply: false })).action, 'unchanged');
  t.true(exec.listings > 0, 'read back after another commit');

  // A change to our own chain: read back, reported as drift, nothing changed.
  await ns.exec([NFT, 'add', 'rule', 'inet', 'istio-proxy-nat', 'istio-output', 'counter', 'accept']);
  const before = await ruleset(ns);
  const drift = await t.throwsAsync(applyRuleset(backendVia('netlink', exec, ns), rs, { reconcile: false, forceApply: false }), { instanceOf: DriftError });
  t.regex(drift!.message, /extra    counter accept/);
  t.is(await ruleset(ns), before);

  // --force-apply never takes the shortcut.
  await applyRuleset(backendVia('netlink', exec, ns), rs, { reconcile: true, forceApply: false });
  exec.listings = 0;
  t.is((await applyRuleset(backendVia('netlink', exec, ns), rs, { reconcile: false, forceApply: true })).action, 'reapplied');
  t.true(exec.listings > 0);
});

kernelTest('nftables (netlink): --reconcile does not overwrite a change made between reading and committing', async (t) => {
  const ns = await Netns.create(t, 'nft');
  const exec = new NamespacedExecutor(new SystemExecutor(), ns.name);
  await applyRuleset(backendVia('netlink', exec, ns), await rulesetFor(['-b', '*', '-i', '*']), { reconcile: false, forceApply: false });
  // Someone adds a rule to our chain while we decide to replace the tables.
  const theirs = 'add rule inet istio-proxy-nat istio-output ip daddr 203.0.113.9 counter accept\n';
  const racing = backendVia('netlink', exec, ns, (tx) => new RacingTransaction(tx, ns, theirs));
  const err = await t.throwsAsync(applyRuleset(racing, await rulesetFor(['-b', '8080', '-i', '*']), { reconcile: true, forceApply: false }), {
    instanceOf: ApplyFailedError,
  });
  t.regex(err!.message, /ruleset changed after interpose read it/);
  t.regex(await ruleset(ns), /ip daddr 203\.0\.113\.9 counter packets 0 bytes 0 accept/, 'their rule is still there: nothing was replaced');
  // Run again: the state is read afresh, their rule is reported as drift and --reconcile replaces.
  const again = await applyRuleset(backendVia('netlink', exec, ns), await rulesetFor(['-b', '8080', '-i', '*']), { reconcile: true, forceApply: false });
  t.is(again.action, 'replaced');
  t.true(again.differences.some((d) => d.includes('extra    ip daddr 203.0.113.9 counter accept')), again.differences.join('\n'));
});

for (const via of TRANSPORTS) {
  kernelTest(`nftables (${via}): failing TPROXY routes after the commit put the previous tables back`, async (t) => {
    const ns = await Netns.create(t, 'nft');
    await seedForeign(ns);
    const executor = new NamespacedExecutor(new SystemExecutor(), ns.name);
    await applyRuleset(backendVia(via, executor, ns), await rulesetFor(['-b', '*', '-x', LONG_EXCLUDE]), { reconcile: false, forceApply: false });
    const before = await ruleset(ns);
    const routesBefore = await policyRouting(ns);

    const tproxy = await rulesetFor(['-b', '*', '-m', 'TPROXY']);
    const err = await t.throwsAsync(applyRuleset(backendVia(via, new FailingRoutesExecutor(executor), ns), tproxy, { reconcile: true, forceApply: false }), {
      instanceOf: ApplyFailedError,
    });
    t.regex(err!.message, /injected/);
    t.regex(err!.message, /tables were rolled back/);
    t.is(await ruleset(ns), before, 'tables (with their sets) as before');
    t.is(await policyRouting(ns), routesBefore);
  });
}

kernelTest('nftables: --cleanup-only removes our tables and routes; foreign tables stay byte-identical', async (t) => {
  const ns = await Netns.create(t, 'nft');
  await seedForeign(ns);
  const foreignBefore = await ruleset(ns);
  const routesBefore = await tproxyRouting(ns);
  const install = await runCli(nsArgs(ns, '-m', 'TPROXY', '-b', '*', '-i', '*', '-x', LONG_EXCLUDE, '--enable-ipv6', '--redirect-dns', '--capture-all-dns'));
  t.is(install.exitCode, 0, install.stderr);
  const installed = await ruleset(ns);
  t.regex(installed, /table inet istio-proxy-nat/);
  t.regex(installed, /table inet istio-proxy-mangle/);
  t.regex(installed, /table inet istio-proxy-raw/);
  t.regex(await tproxyRouting(ns), /fwmark 0x539 lookup 133/);

  const clean = await runCli(nsArgs(ns, '--cleanup-only'));
  t.is(clean.exitCode, 0, clean.stderr);
  t.regex(clean.stderr, /removed tables inet istio-proxy-nat, inet istio-proxy-mangle, inet istio-proxy-raw/);
  t.is(await ruleset(ns), foreignBefore, 'only foreign tables remain, byte-identical');
  t.is(await tproxyRouting(ns), routesBefore);

  const again = await runCli(nsArgs(ns, '--cleanup-only'));
  t.is(again.exitCode, 0, again.stderr);
  t.regex(again.stderr, /removed no tables/);
});

kernelTest('nftables: --dry-run prints a script nft accepts and touches nothing', async (t) => {
  const ns = await Netns.create(t, 'nft');
  const r = await runCli(nsArgs(ns, '-m', 'TPROXY', '-b', '*', '-i', '*', '-x', LONG_EXCLUDE, '--enable-ipv6', '--dry-run'));
  t.is(r.exitCode, 0, r.stderr);
  // Nothing of ours there: the tables are created (an apply's `create` fails should one appear meanwhile).
  t.regex(r.stdout, /^# nft -f -\ncreate table inet istio-proxy-nat\n/);
  t.notRegex(r.stdout, /delete table/);
  t.regex(r.stdout, /# ip -6 rule add fwmark 1337 lookup 133/);
  t.is(await ruleset(ns), '');
  // nft -c checks the whole transaction against the kernel without committing it.
  // (execa strips the final newline; nft wants the last comment line terminated.)
  const check = await ns.exec([NFT, '-c', '-f', '-'], { input: `${r.stdout}\n`, reject: false });
  t.is(check.exitCode, 0, String(check.stderr));
  t.is(await ruleset(ns), '');
});

/** Passes every command on, keeping what each `nft -f -` was fed. */
class RecordNftScripts implements Executor {
  readonly scripts: string[] = [];
  constructor(private readonly inner: Executor) {}
  run(argv: readonly string[], options?: { input?: string }): Promise<CommandResult> {
    if (argv[0] === NFT && argv[1] === '-f') this.scripts.push(options?.input ?? '');
    return this.inner.run(argv, options);
  }
}

kernelTest('nftables: --dry-run over an earlier install with other flags prints exactly what the apply then commits', async (t) => {
  const ns = await Netns.create(t, 'nft');
  t.is((await runCli(nsArgs(ns, '-b', '*', '-i', '192.0.2.0/24', '--enable-ipv6'))).exitCode, 0);
  const before = await ruleset(ns);

  const flags = ['-m', 'TPROXY', '-b', '8080', '-i', '*', '-x', '198.51.100.0/25', '--reconcile'];
  const dry = await runCli(nsArgs(ns, ...flags, '--dry-run'));
  t.is(dry.exitCode, 0, dry.stderr);
  t.is(await ruleset(ns), before, 'the dry run changed nothing');
  t.regex(dry.stdout, /^add table inet istio-proxy-nat\ndelete table inet istio-proxy-nat\n/m, 'the table there is replaced');
  t.regex(dry.stdout, /^create table inet istio-proxy-mangle$/m, 'the table not there yet is created');

  // The apply, as the CLI makes it, committed through `nft -f` so that the script can be kept.
  const exec = new RecordNftScripts(new NamespacedExecutor(new SystemExecutor(), ns.name));
  const backend = new NftablesBackend(exec, {}, NFT, new NftToolTransaction(exec, NFT));
  const r = await applyRuleset(backend, await rulesetFor(flags), { reconcile: true, forceApply: false });
  t.is(r.action, 'replaced');
  t.is(dry.stdout.replace(/^#.*(\n|$)/gm, ''), exec.scripts.join(''), 'the dry run is the committed transaction, byte for byte');
});

kernelTest('nftables: --network-namespace also takes a /proc/PID/ns/net path', async (t) => {
  const ns = await Netns.create(t, 'nft');
  const holder = execa('ip', ['netns', 'exec', ns.name, 'sleep', '60'], { reject: false });
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  // `ip netns exec` execs the command in place: the holder's pid is the sleep in the namespace.
  const pid = holder.pid;
  for (let i = 0; i < 100; i++) {
    const r = await execa('ip', ['netns', 'identify', String(pid)], { reject: false });
    if (String(r.stdout).trim() === ns.name) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  t.truthy(pid, 'the namespace holder started');
  const r = await runCli(['istio-iptables', ...ISTIO_BASE, '--network-namespace', `/proc/${pid}/ns/net`, '--native-nftables', '-b', '*']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(await ruleset(ns), /table inet istio-proxy-nat/);
});

kernelTest('nftables: -x @FILE takes 20k CIDRs (more than one argument can hold), installs sets, reruns unchanged', async (t) => {
  const ns = await Netns.create(t, 'nft');
  const dir = mkdtempSync(join(tmpdir(), 'interpose-cidrs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cidrs = Array.from({ length: 20_000 }, (_, i) => (i % 2 ? `2001:db8:${(i >> 8).toString(16)}:${(i & 255).toString(16)}::/64` : `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`));
  const file = join(dir, 'exclude.txt');
  writeFileSync(file, `# generated\n${cidrs.join('\n')}\n`);
  t.true(cidrs.join(',').length > 131072, 'the list is longer than Linux lets one argument be');

  const first = await runCli(nsArgs(ns, '-i', '*', '--enable-ipv6', '-x', `@${file}`));
  t.is(first.exitCode, 0, first.stderr);
  const listing = await ruleset(ns);
  t.regex(listing, /ip daddr @istio-output-return-v4 counter/);
  t.regex(listing, /ip6 daddr @istio-output-return-v6 counter/);
  t.regex(listing, /elements = \{ 10\.0\.0\.0, 10\.0\.0\.2,\s+10\.0\.0\.4,/, 'the IPv4 elements come from the file');
  t.regex(listing, /2001:db8:0:1::\/64,\s+2001:db8:0:3::\/64/, 'and the IPv6 ones');
  const again = await runCli(nsArgs(ns, '-i', '*', '--enable-ipv6', '-x', `@${file}`));
  t.is(again.exitCode, 0, again.stderr);
  t.regex(again.stderr, /already in place; nothing changed/);

  const missing = await runCli(nsArgs(ns, '-i', '*', '-x', `@${dir}/none.txt`, '--reconcile'));
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, new RegExp(`invalid value for -x/--istio-service-exclude-cidr: "@${dir}/none.txt": expected @FILE naming a readable regular file of CIDRs, at most 16 MiB \\(.*ENOENT\\)`));
  t.is(await ruleset(ns), listing, 'a bad file changes nothing');
});
