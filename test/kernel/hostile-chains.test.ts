/**
 * Foreign iptables chains named like Object.prototype members (toString, constructor,
 * __proto__) in the tables interpose reads: `istio-iptables` once took `toString` for one of
 * its own chains and died with an internal error (chains[r.chain].push is not a function).
 * Installs, re-applies and verifies in a namespace the test creates; the foreign chains stay.
 */
import { runCli } from '../helpers/cli.js';
import { Netns, kernelTest } from '../helpers/kernel.js';

const FOREIGN = ['toString', 'constructor', '__proto__', 'hasOwnProperty'];

kernelTest('foreign chains named toString, constructor, __proto__ are left alone, not taken for ours', async (t) => {
  const ns = await Netns.create(t, 'hostile');
  for (const chain of FOREIGN) {
    await ns.exec(['iptables', '-t', 'nat', '-N', chain]);
    await ns.exec(['iptables', '-t', 'nat', '-A', chain, '-d', '198.51.100.1/32', '-j', 'RETURN']);
  }
  for (const run of ['install', 're-apply']) {
    const r = await runCli(['istio-iptables', '--network-namespace', ns.name, '-i', '203.0.113.0/24']);
    t.is(r.exitCode, 0, `${run}: ${r.stderr}`);
    t.notRegex(r.stderr, /internal error/);
  }
  const verify = await runCli(['verify', '--network-namespace', ns.name, '-i', '203.0.113.0/24']);
  t.is(verify.exitCode, 0, verify.stderr);
  const saved = String((await ns.exec(['iptables-save', '-t', 'nat'])).stdout);
  for (const chain of FOREIGN) t.true(saved.includes(`-A ${chain} -d 198.51.100.1/32 -j RETURN`), `${chain} lost its rule:\n${saved}`);
  t.regex(saved, /-A OUTPUT -j ISTIO_OUTPUT/);
});
