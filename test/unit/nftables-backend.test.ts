/**
 * The nftables backend's decisions against a recording fake executor: what it runs for a
 * fresh install, a rerun, drift, reconcile, a rejected transaction and cleanup; the listing
 * parser; and the clear errors when nft or nf_tables is missing. The kernel tests hold the
 * same behaviour to real netfilter.
 */
import test from 'ava';
import { DriftError } from '../../src/errors/drift-error.js';
import type { CommandResult, Executor } from '../../src/kernel/executor.js';
import { ApplyFailedError, MissingToolError, applyRuleset, cleanupRules } from '../../src/kernel/backend.js';
import { parseNftListing } from '../../src/kernel/nft-listing-parser.js';
import { findNft } from '../../src/kernel/nft-binary.linux.js';
import { NftablesBackend, probeNftables } from '../../src/kernel/nftables-backend.linux.js';
import { buildIstioRuleset } from '../../src/rules/istio-ruleset.js';
import type { Ruleset } from '../../src/rules/ir.js';
import { baseChainHeader, renderNftTables, type NftTable } from '../../src/rules/render/nftables.js';
import { ISTIO_BASE, optionsFrom } from '../helpers/istio-config.js';

interface Call {
  argv: string;
  input?: string;
}

/** Answers nft and ip like a kernel holding `tables` (listings by table name). */
class FakeKernel implements Executor {
  readonly calls: Call[] = [];
  constructor(
    public tables: Map<string, string> = new Map(),
    private readonly failApply = false,
  ) {}

  async run(argv: readonly string[], options: { input?: string } = {}): Promise<CommandResult> {
    this.calls.push({ argv: argv.join(' '), ...(options.input !== undefined ? { input: options.input } : {}) });
    const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
    const cmd = argv.join(' ');
    if (cmd === 'nft --version') return ok('nftables v1.0.6 (Lester Gooch #5)\n');
    if (cmd === 'nft list tables inet' || cmd === 'nft list tables') {
      return ok([...this.tables.keys(), 'foreign'].map((n) => `table inet ${n}\n`).join(''));
    }
    const list = /^nft -y list table inet (\S+)$/.exec(cmd);
    if (list) return this.tables.has(list[1]!) ? ok(this.tables.get(list[1]!)) : { exitCode: 1, stdout: '', stderr: 'No such file or directory' };
    if (cmd === 'nft -f -') return this.failApply ? { exitCode: 1, stdout: '', stderr: 'Error: Could not process rule' } : ok();
    return ok();
  }

  nftTransactions(): string[] {
    return this.calls.filter((c) => c.argv === 'nft -f -').map((c) => c.input ?? '');
  }
}

/** A table as `nft -y list` prints it (tabs, blank lines between blocks, live counters). */
function listingOf(t: NftTable): string {
  const blocks: string[] = [];
  for (const s of t.sets) {
    const elems = s.elements.join(',\n\t\t\t     ');
    blocks.push(`\tset ${s.name} {\n\t\ttype ${s.family === 4 ? 'ipv4_addr' : 'ipv6_addr'}\n\t\tflags interval\n\t\telements = { ${elems} }\n\t}\n`);
  }
  for (const c of t.chains) {
    const header = c.base ? `\t\t${baseChainHeader(c.base)}\n` : '';
    const rules = c.rules.map((r) => `\t\t${r.replace(/\bcounter\b/, 'counter packets 3 bytes 180')}\n`).join('');
    blocks.push(`\tchain ${c.name} {\n${header}${rules}\t}\n`);
  }
  return `table inet ${t.name} {\n${blocks.join('\n')}}\n`;
}

async function ruleset(args: string[]): Promise<Ruleset> {
  return buildIstioRuleset((await optionsFrom([...ISTIO_BASE, ...args])).config);
}

const manyV4 = Array.from({ length: 20 }, (_, i) => `198.51.100.${i * 8}/29`).join(',');

test('fresh install: one nft transaction that creates the tables, nothing else', async (t) => {
  const kernel = new FakeKernel();
  const r = await applyRuleset(new NftablesBackend(kernel, {}, 'nft'), await ruleset(['-b', '*']), { reconcile: false, forceApply: false });
  t.is(r.action, 'installed');
  const txs = kernel.nftTransactions();
  t.is(txs.length, 1);
  // `create`, not add + delete: nothing to delete (a deleting commit makes nft wait for an RCU
  // grace period), and the transaction fails should the table have appeared meanwhile.
  t.regex(txs[0]!, /^create table inet istio-proxy-nat\n(create table inet [a-z-]+\n)*table inet istio-proxy-nat \{/);
  t.notRegex(txs[0]!, /delete/);
  t.notRegex(txs[0]!, /foreign/, 'foreign tables are never named');
});

test('rerun over identical tables (with traffic counters): unchanged, no transaction', async (t) => {
  const rs = await ruleset(['-i', '*', '-x', manyV4, '--drop-invalid']);
  const desired = renderNftTables(rs);
  t.true(desired[0]!.sets.length > 0, 'the case exercises a set');
  const kernel = new FakeKernel(new Map(desired.map((d) => [d.name, listingOf(d)])));
  const r = await applyRuleset(new NftablesBackend(kernel, {}, 'nft'), rs, { reconcile: false, forceApply: false });
  t.is(r.action, 'unchanged');
  t.deepEqual(kernel.nftTransactions(), []);
  const forced = await applyRuleset(new NftablesBackend(kernel, {}, 'nft'), rs, { reconcile: false, forceApply: true });
  t.is(forced.action, 'reapplied');
  t.is(kernel.nftTransactions().length, 1);
});

test('a different configuration over ours: DriftError naming the differences, nothing run; --reconcile replaces', async (t) => {
  const old = renderNftTables(await ruleset(['-b', '*', '--drop-invalid']));
  const kernel = new FakeKernel(new Map(old.map((d) => [d.name, listingOf(d)])));
  const wanted = await ruleset(['-b', '8080']);
  const err = await t.throwsAsync(applyRuleset(new NftablesBackend(kernel, {}, 'nft'), wanted, { reconcile: false, forceApply: false }), {
    instanceOf: DriftError,
  });
  t.regex(err!.message, /inet istio-proxy-nat istio-inbound: missing  tcp dport 8080 counter jump istio-in-redirect/);
  t.regex(err!.message, /inet istio-proxy-mangle: extra table/);
  t.regex(err!.message, /--reconcile/);
  t.deepEqual(kernel.nftTransactions(), []);

  const r = await applyRuleset(new NftablesBackend(kernel, {}, 'nft'), wanted, { reconcile: true, forceApply: false });
  t.is(r.action, 'replaced');
  const [tx] = kernel.nftTransactions();
  t.regex(tx!, /delete table inet istio-proxy-mangle\n/, 'the table this configuration no longer needs goes');
  t.notRegex(tx!, /table inet istio-proxy-mangle \{/);
});

test('a rejected transaction is reported as such: the kernel kept everything', async (t) => {
  const kernel = new FakeKernel(new Map(), true);
  const err = await t.throwsAsync(applyRuleset(new NftablesBackend(kernel, {}, 'nft'), await ruleset([]), { reconcile: false, forceApply: false }), {
    instanceOf: ApplyFailedError,
  });
  t.regex(err!.message, /Could not process rule/);
  t.regex(err!.message, /rejected as a whole; the kernel holds what it held before/);
});

test('cleanup deletes our tables that exist, in one transaction, and nothing else', async (t) => {
  const present = renderNftTables(await ruleset(['-m', 'TPROXY', '-b', '*']));
  const kernel = new FakeKernel(new Map(present.map((d) => [d.name, listingOf(d)])));
  const r = await cleanupRules(new NftablesBackend(kernel, {}, 'nft'), await ruleset([]), { mark: 1337, table: 133 });
  t.regex(r.removes, /^tables inet istio-proxy-nat, inet istio-proxy-mangle \(\d+ rules\)$/);
  t.deepEqual(kernel.nftTransactions(), ['delete table inet istio-proxy-nat\ndelete table inet istio-proxy-mangle\n']);
});

test('missing nft or nf_tables: a clear error naming the package', async (t) => {
  const noNft: Executor = { run: async () => ({ exitCode: 1, stdout: '', stderr: 'exec of "nft" failed: No such file or directory' }) };
  const e1 = await t.throwsAsync(probeNftables(noNft, 'nft'), { instanceOf: MissingToolError });
  t.regex(e1!.message, /Debian package "nftables"/);

  const noKernel: Executor = {
    run: async (argv) =>
      argv[1] === '--version'
        ? { exitCode: 0, stdout: 'nftables v1.0.6\n', stderr: '' }
        : { exitCode: 1, stdout: '', stderr: 'Error: Could not receive tables from kernel: Protocol not supported' },
  };
  const e2 = await t.throwsAsync(probeNftables(noKernel, 'nft'), { instanceOf: MissingToolError });
  t.regex(e2!.message, /no nf_tables support/);
  t.regex(e2!.message, /modprobe nf_tables/);
});

test('nft is found by absolute path, and an unrelated `nft` (node_modules/.bin) is refused', async (t) => {
  t.is(findNft((p) => p === '/usr/sbin/nft'), '/usr/sbin/nft');
  t.is(findNft((p) => p === '/usr/bin/nft'), '/usr/bin/nft');
  t.is(findNft(() => false), 'nft', 'else whatever PATH holds, checked by the probe');
  const vercel: Executor = { run: async () => ({ exitCode: 0, stdout: 'Usage: nft [command] [options]\n', stderr: '' }) };
  const err = await t.throwsAsync(probeNftables(vercel, 'nft'), { instanceOf: MissingToolError });
  t.regex(err!.message, /"nft" is not nftables' nft.*Debian package "nftables"/);
});

test('the listing parser reads sets with wrapped elements, base chain hooks and counters', (t) => {
  const text = [
    'table inet istio-proxy-nat {',
    '\tset s4 {',
    '\t\ttype ipv4_addr',
    '\t\tflags interval',
    '\t\telements = { 192.0.2.0/24, 198.51.100.1-198.51.100.9,',
    '\t\t\t     203.0.113.7 }',
    '\t}',
    '',
    '\tchain output {',
    '\t\ttype nat hook output priority -100; policy accept;',
    '\t\tcounter packets 12 bytes 720 jump istio-output',
    '\t}',
    '',
    '\tchain istio-output {',
    '\t\tip daddr @s4 counter packets 0 bytes 0 return',
    '\t}',
    '\tcounter c1 {',
    '\t\tpackets 0 bytes 0',
    '\t}',
    '}',
  ].join('\n');
  const [table] = parseNftListing(text);
  t.is(table!.name, 'istio-proxy-nat');
  t.deepEqual(table!.sets, [
    { name: 's4', properties: ['type ipv4_addr', 'flags interval'], elements: ['192.0.2.0/24', '198.51.100.1-198.51.100.9', '203.0.113.7'] },
  ]);
  t.deepEqual(table!.chains, [
    { name: 'output', header: 'type nat hook output priority -100; policy accept;', rules: ['counter jump istio-output'] },
    { name: 'istio-output', rules: ['ip daddr @s4 counter return'] },
  ]);
  t.deepEqual(table!.other, ['counter c1 {', 'packets 0 bytes 0', '}'], 'unknown objects are kept, so drift sees them');
});
