/**
 * The container image run as Kubernetes runs it, for every argument list Istio's sidecar
 * injector writes (../shared/reference/istio/injector-args.json): podman (runc) starts the image
 * with the case's args in a network namespace of the test's own, under the case's security
 * context (istio-init: root, every capability dropped but NET_ADMIN and NET_RAW; istio-validation:
 * uid/gid 1337, no capabilities, read-only root filesystem without podman's tmpfs mounts).
 *
 * The rules the image leaves in its namespace must equal those the checked-out CLI leaves in a
 * second namespace with the same args, and be non-empty; validation must exit 0 where the rules
 * are in place and 126 where they are not.
 *
 * Needs root, podman and the image: scripts/build-image.sh builds it (INTERPOSE_IMAGE names
 * another). Outside CI a missing image skips these tests; under CI it fails them.
 */
import test from 'ava';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { runCli } from '../helpers/cli.js';
import { isRoot, kernelTest, Netns } from '../helpers/kernel.js';
import { INJECTOR_CASES_FILE, kernelRules, loadInjectorCases, type InjectorCase } from '../helpers/injector-cases.js';
import { IMAGE, PODMAN_GLOBAL, PODMAN_LIMITS, podmanImageSkipReason } from '../helpers/podman-image.js';

async function imageSkipReason(): Promise<string | undefined> {
  if (!existsSync(INJECTOR_CASES_FILE)) return `${INJECTOR_CASES_FILE} is absent (../shared is not beside the repository)`;
  if (!isRoot) return undefined; // kernelTest skips and says why
  return podmanImageSkipReason();
}

const skipReason = await imageSkipReason();
const cases: InjectorCase[] = skipReason === undefined ? loadInjectorCases() : [];

/** Runs the image with `args` in `ns` under the security context of `c`, as the kubelet would. */
function runImage(ns: Netns, c: InjectorCase, args: readonly string[]) {
  const security = ['--cap-drop', 'ALL', ...c.capabilities.flatMap((cap) => ['--cap-add', cap])];
  security.push('--user', `${c.runAsUser}:${c.runAsUser}`, '--security-opt', 'no-new-privileges');
  // readOnlyRootFilesystem: podman would mount writable tmpfs on /run, /tmp and /var/tmp; the
  // kubelet does not.
  if (c.readOnlyRootFilesystem) security.push('--read-only', '--read-only-tmpfs=false');
  return execa('podman', [...PODMAN_GLOBAL, 'run', '--rm', '--network', `ns:/run/netns/${ns.name}`, ...PODMAN_LIMITS, ...security, IMAGE, ...args], {
    reject: false,
    timeout: 180_000,
  });
}

if (skipReason !== undefined) {
  console.log(`SKIP: image tests: ${skipReason}`);
  test.skip(`the image runs every injector case (skipped: ${skipReason})`, () => {});
}

for (const c of cases.filter((c) => c.container === 'istio-init')) {
  kernelTest(`image, injector case ${c.name}: rules as the CLI writes them`, async (t) => {
    const inImage = await Netns.create(t, 'img');
    const run = await runImage(inImage, c, c.args);
    t.is(run.exitCode, 0, `podman run … ${c.args.join(' ')}\n${run.stderr}`);

    const byCli = await Netns.create(t, 'imgcli');
    const cli = await runCli(c.args, { netns: byCli.name });
    t.is(cli.exitCode, 0, `interpose ${c.args.join(' ')}\n${cli.stderr}`);

    const rules = await kernelRules(inImage);
    t.regex(rules, /ISTIO_OUTPUT|istio/i, 'the image wrote Istio chains');
    t.is(rules, await kernelRules(byCli));
  });
}

for (const c of cases.filter((c) => c.container === 'istio-validation')) {
  kernelTest(`image, injector case ${c.name}: exit 0 with the redirect in place, 126 without`, async (t) => {
    // istio-cni applies the rules before the validation container starts: here the image does,
    // as istio-init, with the same capture arguments.
    const applyArgs = c.args.filter((a) => a !== '--run-validation' && a !== '--skip-rule-apply');
    const asInit = { ...c, runAsUser: 0, capabilities: ['NET_ADMIN', 'NET_RAW'], readOnlyRootFilesystem: false };
    const withRules = await Netns.create(t, 'imgval');
    const apply = await runImage(withRules, asInit, applyArgs);
    t.is(apply.exitCode, 0, `podman run … ${applyArgs.join(' ')}\n${apply.stderr}`);

    const ok = await runImage(withRules, c, c.args);
    t.is(ok.exitCode, 0, `validation with rules in place\n${ok.stderr}`);

    const bare = await Netns.create(t, 'imgval');
    const failed = await runImage(bare, c, c.args);
    t.is(failed.exitCode, 126, `validation without rules\n${failed.stderr}`);
    t.is(await kernelRules(bare), await kernelRules(await Netns.create(t, 'imgref')), 'validation wrote no rules');
  });
}
