import { InterceptError } from './intercept-error.js';
import { shortened } from './value-text.js';

/** An external command (iptables-restore, nft, ip …) exited non-zero or could not start. */
export class CommandFailedError extends InterceptError {
  override name = 'CommandFailedError';
  override readonly exitCode = 1;

  constructor(
    readonly argv: readonly string[],
    readonly commandExitCode: number | undefined,
    readonly stderr: string,
    options?: { cause?: unknown; context?: string },
  ) {
    const what = options?.context ? `${options.context}: ` : '';
    const code = commandExitCode === undefined ? 'could not run' : `exited ${commandExitCode}`;
    // Bounded: an argument can be a user's 100 KB value, and a tool's stderr often repeats it.
    const detail = stderr.trim() ? `: ${shortened(stderr.trim(), 8000)}` : '';
    super(`${what}${argv.map((a) => shortened(a)).join(' ')} ${code}${detail}`, { cause: options?.cause });
  }
}
