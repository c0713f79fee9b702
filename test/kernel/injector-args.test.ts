/**
 * Every argument list Istio's sidecar injector writes for its init container
 * (../shared/reference/istio/injector-args.json), run as the image runs it: the entry point is
 * `interpose`, so the args' leading `istio-iptables` is our subcommand. Each case runs in a fresh
 * network namespace under the security context the injector gives it:
 * - istio-init cases (root): exit 0, and the namespace then holds exactly what the same flags'
 *   --dry-run output gives when fed to iptables-restore / nft in a twin namespace.
 * - istio-validation (uid 1337, no capabilities, read-only root filesystem): exit 0 where the
 *   default case's rules are in place, 126 with istio's message where there are none.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { findNft } from '../../src/kernel/nft-binary.linux.js';
import { CLI, STATE_DIR, runCli, type CliResult } from '../helpers/cli.js';
import { Netns, isRoot, kernelTest } from '../helpers/kernel.js';
import { INJECTOR_CASES_FILE, kernelRules, loadInjectorCases, type InjectorCase } from '../helpers/injector-cases.js';


/** The system's nft: under npm, PATH starts with node_modules/.bin, which has @vercel/nft's `nft`. */
const NFT = findNft();


/** Applies --dry-run output the way its comments say: restore text per family, nft script, ip rule/route lines. */
async function applyDryRun(ns: Netns, text: string): Promise<void> {
  const sections = text.split(/^(?=# (?:ip6?tables-restore --noflush|nft -f -)$)/m).filter((s) => s.startsWith('# '));
  for (const section of sections) {
    const [header, ...rest] = section.split('\n');
    const body = rest.filter((l) => !l.startsWith('# ip ')).join('\n');
    const tool = header === '# nft -f -' ? [NFT, '-f', '-'] : [header!.slice(2).split(' ')[0]!, '--noflush'];
    await ns.exec(tool, { input: body });
  }
  for (const line of text.split('\n').filter((l) => l.startsWith('# ip '))) await ns.exec(line.slice(2).split(' '));
}

/** Runs the image's command line inside the namespace, as root (istio-init). */
function runAsInit(ns: Netns, args: string[]): Promise<CliResult> {
  return runCli(args, { netns: ns.name });
}

/**
 * Runs it as the istio-validation container does: uid/gid 1337, no capabilities (effective,
 * inheritable, bounding), and every mount it could write to (/, /run, /tmp and the state
 * directory) read-only in a private mount namespace.
 */
async function runAsValidation(ns: Netns, c: InjectorCase): Promise<CliResult> {
  const id = String(c.runAsUser);
  const readOnly = ['/', '/run', '/tmp', '/var/tmp', STATE_DIR].map((m) => `mountpoint -q ${m} && mount -o remount,bind,ro ${m};`).join(' ');
  const script = `${readOnly} touch /run/interpose-probe-write 2>/dev/null && { echo "root filesystem still writable" >&2; exit 99; }; exec "$@"`;
  const r = await ns.exec(
    ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh',
      'setpriv', `--reuid=${id}`, `--regid=${id}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all',
      process.execPath, CLI, ...c.args],
    { reject: false, timeout: 60_000, env: { INTERPOSE_STATE_DIR: STATE_DIR } },
  );
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

if (!existsSync(INJECTOR_CASES_FILE)) {
  console.log(`SKIP: ${INJECTOR_CASES_FILE} is absent (the shared reference data sits beside the repository)`);
  test.skip('injector argument lists (skipped: ../shared/reference/istio/injector-args.json is absent)', () => {});
} else {
  const cases = loadInjectorCases();
  const defaultCase = cases.find((c) => c.name === 'default')!;

  test('the reference holds the cases this test knows how to run', (t) => {
    t.true(cases.length >= 6);
    for (const c of cases) {
      t.is(c.args[0], 'istio-iptables', `${c.name}: the injector's args start with the subcommand`);
      t.true(c.container === 'istio-init' || c.container === 'istio-validation', `${c.name}: unknown container ${c.container}`);
    }
    if (!isRoot) t.log('the per-case kernel tests need root and are skipped');
  });

  for (const c of cases.filter((x) => x.container === 'istio-init')) {
    kernelTest(`injector case "${c.name}": applies, and the kernel holds exactly what its --dry-run output gives`, async (t) => {
      const ns = await Netns.create(t, 'inj');
      const run = await runAsInit(ns, c.args);
      t.is(run.exitCode, 0, run.stderr);

      const twin = await Netns.create(t, 'injx');
      const dry = await runCli([...c.args, '--dry-run'], { netns: twin.name });
      t.is(dry.exitCode, 0, dry.stderr);
      await applyDryRun(twin, dry.stdout);
      const applied = await kernelRules(ns);
      t.regex(applied, c.args.includes('--native-nftables') ? /table inet/ : /-A ISTIO_OUTPUT/);
      t.is(applied, await kernelRules(twin));

      if (c.args.includes('--log_as_json')) {
        // Every line one JSON object with the text lines' fields.
        const lines = run.stderr.trim().split('\n');
        t.true(lines.length >= 2, run.stderr);
        for (const line of lines) t.deepEqual(Object.keys(JSON.parse(line) as object).sort(), ['level', 'msg'], line);
      } else {
        t.regex(run.stderr, /^interpose: .*rules/m);
      }
      // The same command again (a restarted init container): exit 0, and nothing changes.
      const again = await runAsInit(ns, c.args);
      t.is(again.exitCode, 0, again.stderr);
      t.is(await kernelRules(ns), applied);
      if (c.args.includes('--force-apply')) t.regex(again.stderr, /reapplied \(--force-apply\)/);
    });
  }

  for (const c of cases.filter((x) => x.container === 'istio-validation')) {
    kernelTest(`injector case "${c.name}": as uid ${c.runAsUser} with no capabilities and a read-only root, exits 0 with the rules in place`, async (t) => {
      const ns = await Netns.create(t, 'injv');
      const init = await runAsInit(ns, defaultCase.args);
      t.is(init.exitCode, 0, init.stderr);
      const before = await kernelRules(ns);
      const run = await runAsValidation(ns, c);
      t.is(run.exitCode, 0, run.stderr);
      t.regex(run.stderr, /redirect validated/);
      t.notRegex(run.stderr, /setpriv|setgroups/);
      t.is(await kernelRules(ns), before, '--skip-rule-apply changes nothing');
    });

    kernelTest(`injector case "${c.name}": exits 126 with istio's message when nothing redirects`, async (t) => {
      const ns = await Netns.create(t, 'injn');
      const run = await runAsValidation(ns, c);
      t.is(run.exitCode, 126, run.stderr);
      t.regex(run.stderr, /no connection to 127\.0\.0\.6:15002 arrived redirected/);
      t.regex(run.stderr, /iptables validation failed; workload is not ready for Istio\./);
      t.regex(run.stderr, /cni\.repair\.deletePods=true/);
    });
  }
}
