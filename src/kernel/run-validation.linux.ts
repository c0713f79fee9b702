/**
 * `--run-validation`: after the rules are in, prove they redirect, as istio's validation does.
 *
 * The probe must be made by the proxy's own uid: istio-init's rules send a connection over lo
 * to a non-loopback-1 address to the inbound port only when the proxy made it (that is how
 * app → own VIP → proxy → proxy inbound works), and return everyone else's. So the probe runs
 * in a child process inside the target namespace under `setpriv --reuid/--regid` — the same
 * position istio's validation container is in.
 */
import { execa } from 'execa';
import { InterceptError } from '../errors/intercept-error.js';
import { nodeScriptArgv, PACKAGE_ROOT } from '../lab/world/node-script.js';
import type { RedirectValidationOptions } from './validation.linux.js';
import { RedirectValidationError } from './validation.linux.js';

export interface RunValidationOptions extends RedirectValidationOptions {
  readonly networkNamespace: string | undefined;
  readonly uid: number;
  readonly gid: number;
}

export async function runRedirectValidation(opts: RunValidationOptions): Promise<void> {
  const { networkNamespace, uid, gid, ...probe } = opts;
  const enter = networkNamespace
    ? networkNamespace.startsWith('/')
      ? ['nsenter', `--net=${networkNamespace}`, '--']
      : ['ip', 'netns', 'exec', networkNamespace]
    : [];
  const argv = [...enter, 'setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', ...nodeScriptArgv('kernel/validation-child.linux'), JSON.stringify(probe)];
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, cwd: PACKAGE_ROOT, timeout: probe.timeoutMs + 30_000 });
  if (r.exitCode === 0) return;
  const message = String(r.stderr).trim() || `validation probe exited ${r.exitCode ?? r.signal}`;
  if (r.exitCode === 126) throw new RedirectValidationError(message);
  throw new InterceptError(`--run-validation could not run its probe (${argv.slice(0, enter.length + 4).join(' ')} …): ${message}`);
}
