/**
 * The one door to external commands. Everything in src/kernel runs argv through an Executor,
 * so apply logic can be unit-tested with a recording fake and pointed at a network namespace
 * by wrapping.
 */
import { CommandFailedError } from '../errors/command-failed-error.js';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Executor {
  /** Runs argv; never throws for a non-zero exit (callers decide), throws if it cannot start. */
  run(argv: readonly string[], options?: { input?: string }): Promise<CommandResult>;
}

/** Runs commands on this machine through execa. */
export class SystemExecutor implements Executor {
  constructor(private readonly timeoutMs = 60_000) {}

  async run(argv: readonly string[], options: { input?: string } = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty argv');
    // Loaded on first use: execa costs ~150 ms of start-up, which a run that fails validation
    // (or only prints) should not pay.
    const { execa } = await import('execa');
    try {
      const r = await execa(file, args, {
        reject: false,
        timeout: this.timeoutMs,
        stripFinalNewline: false,
        ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' }),
      });
      if (r.failed && r.exitCode === undefined) {
        throw new CommandFailedError(argv, undefined, String(r.stderr || r.shortMessage), { cause: r.cause });
      }
      return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
    } catch (err) {
      if (err instanceof CommandFailedError) throw err;
      throw new CommandFailedError(argv, undefined, String(err), { cause: err });
    }
  }
}

/**
 * Runs every command inside a network namespace: a name from `ip netns` (via `ip netns exec`,
 * which also bind-mounts /etc/netns/NAME files) or a path such as /proc/PID/ns/net (via nsenter).
 */
export class NamespacedExecutor implements Executor {
  constructor(
    private readonly inner: Executor,
    readonly networkNamespace: string,
  ) {}

  run(argv: readonly string[], options?: { input?: string }): Promise<CommandResult> {
    const prefix = this.networkNamespace.startsWith('/')
      ? ['nsenter', `--net=${this.networkNamespace}`, '--']
      : ['ip', 'netns', 'exec', this.networkNamespace];
    return this.inner.run([...prefix, ...argv], options);
  }
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
