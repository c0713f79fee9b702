/**
 * In its own network namespace (Executor.realNamespace '') an apply reads what it can without
 * starting processes: IPv6 addresses from /proc/net/if_inet6 instead of `ip -6 addr`, and the
 * iptables saves spawned directly and at once instead of one by one from `sh -c`. Every process
 * is milliseconds of the start-up each pod waits for. Executors in another namespace, or ones
 * that record or rewrite commands (realNamespace undefined), still get the commands.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { CommandResult, Executor } from '../../../src/kernel/executor.js';
import { hasGlobalIPv6Address, readIfInet6 } from '../../../src/kernel/if-inet6.linux.js';
import { chooseIptables } from '../../../src/kernel/iptables-binaries.linux.js';
import { holdsIpTables } from '../../../src/kernel/nft-netlink-tables.js';
import { LinuxSystemLookups } from '../../../src/kernel/system-lookups.linux.js';

/** An executor claiming this process's namespace that answers from a table and records calls. */
class OwnNamespace implements Executor {
  readonly realNamespace = '';
  readonly calls: string[] = [];
  private running = 0;
  maxRunning = 0;
  constructor(private readonly answer: (argv: string) => CommandResult) {}
  async run(argv: readonly string[]): Promise<CommandResult> {
    const line = argv.join(' ');
    this.calls.push(line);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    await new Promise((r) => setTimeout(r, 20));
    this.running--;
    return this.answer(line);
  }
}

const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' });

test('if_inet6: an address counts when its scope is global and it is not on lo', (t) => {
  const line = (addr: string, scope: string, dev: string) => `${addr} 02 40 ${scope} 80 ${dev.padStart(8)}`;
  const loopback = line('00000000000000000000000000000001', '10', 'lo');
  const passthrough = line('00000000000000000000000000000006', '00', 'lo');
  const linkLocal = line('fe800000000000000000000000000001', '20', 'eth0');
  const global = line('20010db8000000000000000000000001', '00', 'eth0');
  t.false(hasGlobalIPv6Address(''), 'IPv6 off: no file, no addresses');
  t.false(hasGlobalIPv6Address([loopback, passthrough, linkLocal, ''].join('\n')), '::1, ::6 on lo and fe80:: do not count');
  t.true(hasGlobalIPv6Address([loopback, linkLocal, global, ''].join('\n')));
  t.false(hasGlobalIPv6Address(line('fec00000000000000000000000000001', '40', 'eth0')), 'site scope is not global');
});

test('if_inet6 agrees with `ip -6 -o addr show scope global` in this namespace', (t) => {
  const ip = execFileSync('ip', ['-6', '-o', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' });
  const byIp = ip.split('\n').some((l) => /^\d+:\s+\S+/.test(l) && !/^\d+:\s+lo\s/.test(l));
  t.is(hasGlobalIPv6Address(readIfInet6()), byIp);
});

test('hasGlobalIPv6 in its own namespace starts no process; in another it asks ip', async (t) => {
  const own = new OwnNamespace(() => ok());
  t.is(await new LinuxSystemLookups(own).hasGlobalIPv6(undefined), hasGlobalIPv6Address(readIfInet6()));
  t.deepEqual(own.calls, []);

  const calls: string[] = [];
  const recording: Executor = { run: async (argv) => (calls.push(argv.join(' ')), ok('2: eth0    inet6 2001:db8::1/64 scope global\n')) };
  t.true(await new LinuxSystemLookups(recording).hasGlobalIPv6(undefined));
  t.deepEqual(calls, ['ip -6 -o addr show scope global']);
});

const onPath = (tool: string) => (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(`${d}/${tool}`));
const listsTables = (file: string) => existsSync(file) && readFileSync(file, 'utf8').trim() !== '';
/** Whether nf_tables holds an ip/ip6 table in this namespace; true when it cannot be asked (not root), as detection then runs the save. */
const nftHoldsTables = (family: 4 | 6) => {
  try {
    return holdsIpTables(family);
  } catch {
    return true;
  }
};

test('iptables detection in its own namespace spawns the saves directly and together, no shell', async (t) => {
  if (!onPath('iptables-nft-save')) return t.pass('iptables-nft-save is not installed here');
  const filter = '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n';
  const own = new OwnNamespace((argv) => ok(argv.includes('-nft-save') ? filter : ''));
  const chosen = await chooseIptables(own);
  t.false(own.calls.some((c) => c.startsWith('sh ')), own.calls.join('\n'));
  // nft saves only for a family of which nf_tables holds a table here (else the save prints
  // nothing); legacy saves only where legacy registered a table (else legacy holds nothing).
  const nftFamilies = ([4, 6] as const).filter((f) => nftHoldsTables(f));
  const expected = nftFamilies.map((f) => `ip${f === 4 ? '' : '6'}tables-nft-save -c`).filter((c) => onPath(c.split(' ')[0]!));
  const legacyTables = [4, 6].filter((f) => listsTables(`/proc/net/ip${f === 4 ? '' : '6'}_tables_names`));
  for (const f of legacyTables) if (onPath(`ip${f === 4 ? '' : '6'}tables-legacy-save`)) expected.push(`ip${f === 4 ? '' : '6'}tables-legacy-save -c`);
  t.deepEqual([...own.calls].sort(), expected.sort());
  if (expected.length >= 2) t.true(own.maxRunning >= 2, 'the saves ran at the same time');
  if (legacyTables.length === 0) {
    t.is(chosen.variant, 'nft');
    t.is(chosen.takeSnapshot()?.get(4), nftFamilies.includes(4) ? filter : '', 'the save read during detection is kept for the apply');
  }
});

test('a forced iptables-legacy with no legacy table needs no legacy save, and a missing tool is missing', async (t) => {
  if (!onPath('iptables-legacy-save') || listsTables('/proc/net/ip_tables_names')) return t.pass('needs iptables-legacy-save and no legacy table here');
  const own = new OwnNamespace(() => ok());
  const chosen = await chooseIptables(own, 'iptables-legacy');
  t.is(chosen.variant, 'legacy');
  t.is(chosen.takeSnapshot()?.get(4), '', 'legacy holds nothing');
  t.false(own.calls.some((c) => c.includes('legacy')), own.calls.join('\n'));

  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await t.throwsAsync(chooseIptables(new OwnNamespace(() => ok()), 'iptables-legacy'), { message: /iptables-legacy-save is missing or failed/ });
  } finally {
    process.env.PATH = path;
  }
});
