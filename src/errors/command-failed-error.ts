import { InterceptError } from './intercept-error.js';

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
    const detail = stderr.trim() ? `: ${stderr.trim()}` : '';
    super(`${what}${argv.join(' ')} ${code}${detail}`, { cause: options?.cause });
  }
}
