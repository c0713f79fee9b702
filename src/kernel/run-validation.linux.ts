/**
 * `--run-validation`: prove the redirect works, as istio-iptables' validation does, from where
 * this process stands.
 *
 * The probe must be made by the proxy's own uid: istio's rules send a connection over lo to a
 * non-127.0.0.1 address to the inbound port only when the proxy made it (app → own VIP → proxy →
 * proxy inbound), and return everyone else's. So:
 * - already the proxy's uid/gid in the right namespace (istio-cni's istio-validation container:
 *   uid 1337, no capabilities, read-only root filesystem): probe in this process, nothing else.
 * - another namespace (--network-namespace), or another uid with the privilege to change it
 *   (root after applying the rules): re-run this program's validation-only command,
 *   `istio-iptables --run-validation --skip-rule-apply`, through the Executor, entered into the
 *   namespace and under `setpriv` as the proxy's uid/gid — the validation container's position.
 * - another uid without that privilege: probe as we are, as istio-iptables would, and say so.
 */
import { readFileSync } from 'node:fs';
import { InterceptError } from '../errors/intercept-error.js';
import type { Executor } from './executor.js';
import { NamespacedExecutor } from './executor.js';
import type { RedirectValidationOptions } from './validation.linux.js';
import { RedirectValidationError, validateRedirect } from './validation.linux.js';

export interface RunValidationOptions extends RedirectValidationOptions {
  readonly networkNamespace: string | undefined;
  readonly uid: number;
  readonly gid: number;
  /** Runs the child (this machine's Executor; the namespace is entered here). */
  readonly executor: Executor;
  /** argv that starts this program (`node …/main.js`); default: how this process was started. */
  readonly selfArgv?: readonly string[];
  /** Extra flags for the child, such as the logging flags, so its lines look like ours. */
  readonly childFlags?: readonly string[];
  /** Progress lines (the CLI's logger). */
  readonly log?: { info(message: string): void; warn(message: string): void };
  /** Stand-in for the kernel's answer (tests). */
  readonly identity?: ProcessIdentity;
}

export interface ProcessIdentity {
  readonly uid: number;
  readonly gid: number;
  /** Holds CAP_SETUID and CAP_SETGID (root, or a container given them). */
  readonly canChangeIdentity: boolean;
}

export async function runRedirectValidation(opts: RunValidationOptions): Promise<void> {
  const { networkNamespace, uid, gid, executor, log } = opts;
  const probe: RedirectValidationOptions = {
    outboundPort: opts.outboundPort,
    inboundPort: opts.inboundPort,
    probePort: opts.probePort,
    timeoutMs: opts.timeoutMs,
    ipv6: opts.ipv6,
    ...(opts.probeAddress4 ? { probeAddress4: opts.probeAddress4 } : {}),
  };
  const me = opts.identity ?? currentIdentity();
  const isProxy = me.uid === uid && me.gid === gid;
  if (networkNamespace === undefined && (isProxy || !me.canChangeIdentity)) {
    if (!isProxy) {
      log?.warn(
        `running as uid ${me.uid} gid ${me.gid}, not the proxy's ${uid}/${gid}, without the capabilities to change ` +
          '(CAP_SETUID, CAP_SETGID): the probe is made as this uid, which istio\'s rules redirect only if it is a proxy uid',
      );
    }
    await validateRedirect(probe);
    return;
  }

  const switchUser = isProxy ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups'];
  const self = opts.selfArgv ?? [process.execPath, ...process.execArgv, process.argv[1]!];
  const argv = [...switchUser, ...self, ...validationOnlyFlags(probe, uid, gid), ...(opts.childFlags ?? [])];
  const where = networkNamespace ? ` in network namespace ${networkNamespace}` : '';
  log?.info(`running the probe as uid ${uid} gid ${gid}${where}: ${switchUser.length ? 'setpriv … ' : ''}interpose istio-iptables --run-validation --skip-rule-apply`);
  const run = networkNamespace ? new NamespacedExecutor(executor, networkNamespace) : executor;
  const r = await run.run(argv);
  // The child's lines are already formatted by its own logger (same flags): pass them on.
  if (r.stderr) process.stderr.write(r.stderr.endsWith('\n') ? r.stderr : `${r.stderr}\n`);
  if (r.exitCode === 0) return;
  if (r.exitCode === 126) throw new RedirectValidationError(`the probe as uid ${uid}${where} failed (its report is above)`, true);
  throw new InterceptError(`--run-validation could not run its probe (${argv.slice(0, switchUser.length + 1).join(' ')} …${where}): exit code ${r.exitCode}`);
}

/**
 * The validation-only command line for these probe settings. Everything that matters is given
 * explicitly, so the child's environment (ENVOY_PORT, NETWORK_NAMESPACE, DRY_RUN … inherited
 * from us) cannot change what it checks.
 */
export function validationOnlyFlags(probe: RedirectValidationOptions, uid: number, gid: number): string[] {
  return [
    'istio-iptables',
    '--run-validation',
    '--skip-rule-apply',
    '--dry-run=false',
    '--cleanup-only=false',
    '--cni-mode=false',
    '--network-namespace=',
    `--envoy-port=${probe.outboundPort}`,
    `--inbound-capture-port=${probe.inboundPort}`,
    `--iptables-probe-port=${probe.probePort}`,
    `--probe-timeout=${probe.timeoutMs}ms`,
    `--proxy-uid=${uid}`,
    `--proxy-gid=${gid}`,
    `--enable-ipv6=${probe.ipv6}`,
    '--dual-stack=false',
  ];
}

/** CAP_SETGID (6) and CAP_SETUID (7) in the effective set, from /proc/self/status. */
export function currentIdentity(status: () => string = () => readFileSync('/proc/self/status', 'utf8')): ProcessIdentity {
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status())?.[1];
  const caps = capEff === undefined ? 0n : BigInt(`0x${capEff}`);
  const needed = (1n << 6n) | (1n << 7n);
  return { uid: process.geteuid!(), gid: process.getegid!(), canChangeIdentity: (caps & needed) === needed };
}
