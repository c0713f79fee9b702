/**
 * validateRedirect (`--run-validation`) in fresh network namespaces: with a minimal istio-style
 * REDIRECT rule set it passes for IPv4 and IPv6; without rules it fails with exit code 126.
 */
import { fileURLToPath } from 'node:url';
import { kernelTest, Netns } from '../helpers/kernel.js';

const script = fileURLToPath(new URL('./helpers/validate-redirect.ts', import.meta.url));
const options = { outboundPort: 15001, inboundPort: 15006, probePort: 15002 };

function runValidation(ns: Netns, opts: object) {
  return ns.exec([process.execPath, '--import', 'tsx', script, JSON.stringify(opts)], { reject: false, timeout: 30_000 });
}

kernelTest('validateRedirect passes when OUTPUT REDIRECT rules send the probe to the capture port', async (t) => {
  const ns = await Netns.create(t, 'vld');
  // The probe destinations istio uses; ::6 needs a route so connect() reaches the nat hook.
  await ns.exec(['ip', '-6', 'route', 'add', '::6/128', 'dev', 'lo']);
  await ns.exec(['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '127.0.0.6', '--dport', '15002', '-j', 'REDIRECT', '--to-ports', '15001']);
  await ns.exec(['ip6tables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '::6', '--dport', '15002', '-j', 'REDIRECT', '--to-ports', '15006']);
  const run = await runValidation(ns, { ...options, timeoutMs: 10_000, ipv6: true });
  t.is(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  t.regex(String(run.stdout), /validation passed/);
});

kernelTest('validateRedirect exits 126 with a clear message when nothing is redirected', async (t) => {
  const ns = await Netns.create(t, 'vldneg');
  const run = await runValidation(ns, { ...options, timeoutMs: 800, ipv6: false });
  t.is(run.exitCode, 126, String(run.stderr));
  t.regex(String(run.stderr), /redirect validation failed after 800 ms: IPv4: no connection to 127\.0\.0\.6:15002 arrived redirected/);
  t.regex(String(run.stderr), /ECONNREFUSED/);
});

kernelTest('validateRedirect fails (126) when only IPv4 is redirected but IPv6 was asked for', async (t) => {
  const ns = await Netns.create(t, 'vldv6');
  await ns.exec(['ip', '-6', 'route', 'add', '::6/128', 'dev', 'lo']);
  await ns.exec(['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '127.0.0.6', '--dport', '15002', '-j', 'REDIRECT', '--to-ports', '15001']);
  const run = await runValidation(ns, { ...options, timeoutMs: 800, ipv6: true });
  t.is(run.exitCode, 126, String(run.stderr));
  t.regex(String(run.stderr), /IPv6: no connection to \[::6\]:15002/);
  t.notRegex(String(run.stderr), /IPv4: no connection/);
});
