/**
 * A pod's fresh namespace holds no iptables table, so the apply asks nf_tables over netlink and
 * reads the namespace's /proc/net/ip{,6}_tables_names from a thread instead of starting
 * `ip{,6}tables-{nft,legacy}-save` (iptables-binaries.linux.ts). These
 * tests watch which saves actually run (a logging wrapper first on PATH) and check the outcome is
 * the one a run that reads every save gets: in the process's own namespace (an init container)
 * and through --network-namespace (the CNI plugin's way).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNft } from '../../src/kernel/nft-binary.linux.js';
import { holdsIpTables } from '../../src/kernel/nft-netlink-tables.js';
import { NativeError } from '../../src/errors/index.js';
import { readProcNetIn } from '../../src/native.js';
import { runCli } from '../helpers/cli.js';
import { ISTIO_BASE } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';
import { netfilterState } from '../helpers/netfilter.js';

const SAVES = ['iptables-nft-save', 'ip6tables-nft-save', 'iptables-legacy-save', 'ip6tables-legacy-save'];

/** A PATH whose first directory logs every save started, then runs the real one. */
function loggingPath(t: { teardown(fn: () => void): void }): { path: string; started: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-save-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'log');
  writeFileSync(log, '');
  for (const tool of SAVES) {
    writeFileSync(join(dir, tool), `#!/bin/sh\necho ${tool} >> ${log}\nexec /usr/sbin/${tool} "$@"\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  return {
    path: `${dir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    started: () => readFileSync(log, 'utf8').split('\n').filter(Boolean).sort(),
  };
}

const args = ['istio-iptables', ...ISTIO_BASE, '-i', '*', '-b', '*', '-x', '192.0.2.0/24'];

kernelTest('holdsIpTables: true once iptables-nft has created a table of that family, per family', async (t) => {
  const ns = await Netns.create(t, 'fresh');
  const path = `/run/netns/${ns.name}`;
  t.false(holdsIpTables(4, path));
  t.false(holdsIpTables(6, path));
  await ns.exec(['iptables-nft', '-t', 'nat', '-N', 'FOREIGN']);
  t.true(holdsIpTables(4, path));
  t.false(holdsIpTables(6, path));
  await ns.exec(['ip6tables-nft', '-A', 'INPUT', '-s', '2001:db8:7::/48', '-j', 'DROP']);
  t.true(holdsIpTables(6, path));
  // A table of another family (inet, as --native-nftables makes) is not an iptables table.
  const other = await Netns.create(t, 'fresh');
  await other.exec([findNft(), 'add', 'table', 'inet', 'foreign']);
  t.false(holdsIpTables(4, `/run/netns/${other.name}`));
});

kernelTest('readProcNetIn: /proc/net files as another namespace sees them (legacy iptables tables)', async (t) => {
  const ns = await Netns.create(t, 'fresh');
  const path = `/run/netns/${ns.name}`;
  t.is(readProcNetIn(path, 'ip_tables_names').trim(), '');
  await ns.exec(['iptables-legacy', '-t', 'nat', '-N', 'FOREIGN']);
  t.is(readProcNetIn(path, 'ip_tables_names').trim(), 'nat');
  t.is(readProcNetIn(path, 'ip6_tables_names').trim(), '');
  // This process's own view is untouched.
  t.notRegex(readProcNetIn('/proc/self/ns/net', 'ip_tables_names'), /nat/);
  const missing = t.throws(() => readProcNetIn(path, 'no_such_file'), { instanceOf: NativeError });
  t.is(missing!.code, 'ENOENT');
  t.is(t.throws(() => readProcNetIn('/run/netns/interpose-no-such-ns', 'ip_tables_names'), { instanceOf: NativeError })!.syscall, 'open');
  t.throws(() => readProcNetIn(path, '../../etc/passwd'), { instanceOf: TypeError });
});

for (const mode of ['own namespace', '--network-namespace'] as const) {
  kernelTest(`${mode}: a fresh namespace is applied without starting any save, with the same rules as one that reads them`, async (t) => {
    const fresh = await Netns.create(t, 'fresh');
    const read = await Netns.create(t, 'fresh');
    // An empty user chain in a table of its own: iptables-nft-save must run here, and the chain
    // (in raw, which istio-iptables' default rules do not touch) is filtered out below.
    await read.exec(['iptables-nft', '-t', 'raw', '-N', 'UNRELATED']);
    const run = async (ns: Netns) => {
      const log = loggingPath(t);
      const cliArgs = mode === 'own namespace' ? args : [...args, '--network-namespace', ns.name];
      const r = await runCli(cliArgs, { env: { PATH: log.path }, ...(mode === 'own namespace' ? { netns: ns.name } : {}) });
      t.is(r.exitCode, 0, r.stderr);
      return log.started();
    };
    t.deepEqual(await run(fresh), [], 'no save ran in the fresh namespace');
    t.deepEqual(await run(read), ['iptables-nft-save'], 'the IPv4 save ran where nf_tables holds an ip table');
    const state = async (ns: Netns) => (await netfilterState(ns)).replace(/\*raw\n:PREROUTING[^]*?COMMIT\n?/, '');
    t.regex(await state(fresh), /-A OUTPUT -j ISTIO_OUTPUT/);
    t.is(await state(fresh), await state(read));
    // Now that the fresh namespace holds our tables, a rerun reads them (and changes nothing).
    t.deepEqual(await run(fresh), ['iptables-nft-save']);

    // A namespace where legacy iptables holds a table: its save runs, and istio-init's choice
    // follows (legacy in use → the rules go to legacy).
    const legacy = await Netns.create(t, 'fresh');
    await legacy.exec(['iptables-legacy', '-t', 'filter', '-A', 'INPUT', '-s', '198.51.100.7/32', '-j', 'DROP']);
    t.deepEqual(await run(legacy), ['iptables-legacy-save']);
    t.regex(String((await legacy.exec(['iptables-legacy-save', '-t', 'nat'])).stdout), /-A OUTPUT -j ISTIO_OUTPUT/);
  });
}
