/**
 * The splice relay's passthrough ports against the kernel: a REDIRECT rule sends connections
 * to the relay's own listener, and the relay must connect on its own exactly those whose
 * original destination port it was given (the rule of which ports qualify lives in TypeScript,
 * src/proxy/classify.ts), and hand every other one to its owner.
 */
import { fileURLToPath } from 'node:url';
import { kernelTest, Netns } from '../helpers/kernel.js';

const probe = fileURLToPath(new URL('./helpers/relay-passthrough-probe.ts', import.meta.url));

kernelTest('the splice relay passes through on its own exactly the ports it is given', async (t) => {
  const ns = await Netns.create(t, 'rpass');
  // The targets are local, so the relay's upstream connects reach the echo servers; only the
  // clients' source ports (above the ephemeral range) are redirected, never the relay's own.
  await ns.exec(['ip', 'addr', 'add', '198.51.100.7/32', 'dev', 'lo']);
  await ns.exec(['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '198.51.100.7', '--sport', '61000:61010',
    '-j', 'REDIRECT', '--to-ports', '15001']);
  const args = { address: '198.51.100.7', ports: [8080], targets: [8080, 8081] };
  const { stdout } = await ns.exec([process.execPath, '--import', 'tsx', probe, JSON.stringify(args)], { timeout: 30_000 });
  const [given, notGiven] = JSON.parse(stdout) as { error: string | null }[];
  // Passed through: the echo comes back and the connection ends cleanly.
  t.deepEqual(given, { port: 8080, passthrough: true, original: { address: '198.51.100.7', port: 8080 }, got: 'ping', error: null });
  // Not given: the owner decides (here it refuses it with closeAccepted(id, reset)), so the echo
  // never comes and the client is reset: ECONNRESET, or EPIPE when the RST beat its write.
  const { error, ...rest } = notGiven!;
  t.deepEqual(rest, { port: 8081, passthrough: false, original: { address: '198.51.100.7', port: 8081 }, got: '' });
  t.true(error === 'ECONNRESET' || error === 'EPIPE', `the refused client ended with ${error}, expected a reset`);
});
