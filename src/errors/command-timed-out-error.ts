import { CommandFailedError } from './command-failed-error.js';

/** An external command ran past its time limit and was stopped (a CommandFailedError too). */
export class CommandTimedOutError extends CommandFailedError {
  override name = 'CommandTimedOutError';

  constructor(
    argv: readonly string[],
    readonly timeoutMs: number,
    stderr: string,
  ) {
    super(argv, undefined, stderr || `timed out after ${timeoutMs} ms`);
  }
}
