/**
 * The one door to external commands. Everything in src/kernel runs argv through an Executor,
 * so apply logic can be unit-tested with a recording fake and pointed at a network namespace
 * by wrapping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CommandFailedError } from '../errors/command-failed-error.js';
import { CommandTimedOutError } from '../errors/command-timed-out-error.js';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Executor {
  /** Runs argv; never throws for a non-zero exit (callers decide), throws if it cannot start. */
  run(argv: readonly string[], options?: { input?: string }): Promise<CommandResult>;
  /**
   * The network namespace its commands really run in, when they run on this machine as given:
   * '' for this process's, else the namespace file. Code that can skip a command and talk to
   * the kernel itself (netlink) does so only then; stand-ins and wrappers that change or
   * record commands leave it undefined, and get the commands.
   */
  readonly realNamespace?: string;
}

/**
 * Runs commands on this machine through node:child_process. Not execa: its per-call set-up
 * (stream transforms, encodings, process bookkeeping) cost 5–10 ms per command here, and an
 * nftables apply is three commands whose own run time is a few ms each.
 */
export class SystemExecutor implements Executor {
  readonly realNamespace = '';

  /**
   * @param timeoutMs a command still running after this is stopped (SIGTERM) and the run
   *   rejects with a CommandTimedOutError
   * @param env variables added to this process's environment for every command (PATH in it
   *   also decides where commands are found)
   */
  constructor(
    private readonly timeoutMs = 60_000,
    private readonly env?: NodeJS.ProcessEnv,
  ) {}

  run(argv: readonly string[], options: { input?: string } = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (!file) return Promise.reject(new Error('empty argv'));
    return new Promise<CommandResult>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(file, args, {
          // Held transaction locks go to every command (as fd 3 on): see holdForCommands().
          stdio: [options.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe', ...heldDescriptors],
          ...(this.env ? { env: { ...process.env, ...this.env } } : {}),
        });
      } catch (err) {
        reject(new CommandFailedError(argv, undefined, String(err), { cause: err }));
        return;
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (b: Buffer) => out.push(b));
      child.stderr!.on('data', (b: Buffer) => err.push(b));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
      }, this.timeoutMs);
      let failedToStart: Error | undefined;
      child.once('error', (e) => {
        // ENOENT/EACCES: no 'close' with an exit code follows a failed spawn.
        failedToStart = e;
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        const stdout = Buffer.concat(out).toString('utf8');
        const stderr = Buffer.concat(err).toString('utf8');
        if (failedToStart) {
          reject(new CommandFailedError(argv, undefined, String(failedToStart), { cause: failedToStart }));
        } else if (timedOut) {
          // Even if it then exited with a status of its own: that is not its answer.
          reject(new CommandTimedOutError(argv, this.timeoutMs, stderr));
        } else if (code === null) {
          reject(new CommandFailedError(argv, undefined, stderr || `killed by ${signal}`));
        } else {
          resolve({ exitCode: code, stdout, stderr });
        }
      });
      if (options.input !== undefined) {
        // A command that exits without reading all its input (an early error) closes the pipe:
        // that EPIPE is not our failure, the exit status says what happened.
        child.stdin!.on('error', () => undefined);
        child.stdin!.end(options.input);
      }
    });
  }
}

/** Descriptors every command this process starts inherits (see holdForCommands). */
const heldDescriptors: number[] = [];

/**
 * Makes every command started from now on inherit `fd` (a locked file), until the returned
 * function is called. A flock belongs to the open file, not the process: a command that
 * inherited it keeps the lock held after this process is killed, until it ends itself — so an
 * `iptables-restore` still running for a killed apply holds off the next run until it is done.
 */
export function holdForCommands(fd: number): () => void {
  heldDescriptors.push(fd);
  return () => {
    const i = heldDescriptors.indexOf(fd);
    if (i >= 0) heldDescriptors.splice(i, 1);
  };
}

/**
 * Takes an exclusive flock on the open file `fd` with flock(1) (util-linux; Node has no
 * flock): the tool locks the file it inherits as fd 3, and since the lock belongs to the open
 * file, this process holds it once the tool exits 0. Resolves false when `waitSeconds` pass
 * without getting it.
 */
export function flockDescriptor(fd: number, waitSeconds: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', '--wait', String(waitSeconds), '--conflict-exit-code', '75', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    const err: Buffer[] = [];
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.once('error', (e) => reject(new CommandFailedError(['flock'], undefined, String(e), { cause: e })));
    child.once('close', (code) => {
      if (code === 0) resolve(true);
      else if (code === 75) resolve(false);
      else reject(new CommandFailedError(['flock', '--exclusive', '3'], code ?? undefined, Buffer.concat(err).toString('utf8')));
    });
  });
}

/**
 * Runs every command inside a network namespace: a name from `ip netns` (/run/netns/NAME) or a
 * path such as /proc/PID/ns/net, entered with `nsenter --net`. Not `ip netns exec`: that also
 * unshares a mount namespace, remounts /sys and bind-mounts /etc/netns/NAME files, which none of
 * the commands run here need (nft, ip, iptables and sysctl talk netlink or /proc/sys, both of
 * which follow the network namespace alone), at about a millisecond per command.
 */
export class NamespacedExecutor implements Executor {
  private readonly prefix: readonly string[];
  readonly realNamespace: string | undefined;

  constructor(
    private readonly inner: Executor,
    readonly networkNamespace: string,
  ) {
    const path = namespacePath(networkNamespace);
    this.prefix = ['nsenter', `--net=${path}`, '--'];
    this.realNamespace = inner.realNamespace === '' ? path : undefined;
  }

  run(argv: readonly string[], options?: { input?: string }): Promise<CommandResult> {
    return this.inner.run([...this.prefix, ...argv], options);
  }
}

/** The file behind a network namespace name, where `ip netns add` puts it; paths stay as given. */
export function namespacePath(networkNamespace: string, exists: (path: string) => boolean = existsSync): string {
  if (networkNamespace.startsWith('/')) return networkNamespace;
  const run = `/run/netns/${networkNamespace}`;
  // iproute2 built with NETNS_RUN_DIR=/var/run/netns: the same place where /var/run links to /run.
  return exists(run) || !exists(`/var/run/netns/${networkNamespace}`) ? run : `/var/run/netns/${networkNamespace}`;
}

/** Runs argv and throws CommandFailedError unless it exits 0. */
export async function runChecked(
  executor: Executor,
  argv: readonly string[],
  options: { input?: string; context?: string } = {},
): Promise<CommandResult> {
  const r = await executor.run(argv, options.input !== undefined ? { input: options.input } : {});
  if (r.exitCode !== 0) {
    throw new CommandFailedError(argv, r.exitCode, r.stderr || r.stdout, options.context ? { context: options.context } : {});
  }
  return r;
}
