/**
 * `interpose istio-iptables` exits as soon as its work is done rather than waiting for Node to
 * wind down: every pod's start waits for the init container (bench/startup). Shown with a
 * preloaded module holding an interval open: a CLI that waits for the event loop to empty
 * would never exit.
 */
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../../dist/interpose.js', import.meta.url));
const keepAlive = 'data:text/javascript,setInterval(() => {}, 60000)';

test('istio-iptables exits when done, whatever else holds the event loop', async (t) => {
  const r = await execa(process.execPath, ['--import', keepAlive, bin, 'istio-iptables', '--dry-run', '-p', '15001', '-i', '192.0.2.0/24'], {
    reject: false,
    timeout: 30_000,
  });
  t.false(r.timedOut, 'still running after 30 s');
  t.is(r.exitCode, 0, String(r.stderr));
  t.regex(String(r.stdout), /-A ISTIO_OUTPUT .*-d 192\.0\.2\.0\/24 .*-j ISTIO_REDIRECT/);
});
