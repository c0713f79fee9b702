import { isInterceptError } from '../errors/intercept-error.js';
import { error as logError } from './log.js';

/**
 * Turns any error into a message on stderr and an exit code, the one place that does so.
 * InterceptErrors carry their own code; anything else is a bug (exit 2, with stack).
 */
export function reportAndExit(err: unknown): never {
  if (isCommanderError(err)) {
    // commander already printed its message (unknown option, missing argument …).
    process.exit(err.exitCode === 0 ? 0 : 1);
  }
  if (isInterceptError(err)) {
    // Through the logger, so --log_as_json and --log_output_level apply to the last line too.
    logError(err.message);
    process.exit(err.exitCode);
  }
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`interpose: internal error: ${detail}\n`);
  process.exit(2);
}

/**
 * A commander parse error (unknown option, missing argument, --help, --version). Recognised by
 * its fields, not `instanceof CommanderError`: the bundled CLI carries its own copy of commander
 * (scripts/bundle-cli.mjs) while the compiled `lab` command uses the package's, and an error
 * thrown by either must end here the same way.
 */
function isCommanderError(err: unknown): err is { code: string; exitCode: number } {
  if (!(err instanceof Error)) return false;
  const { code, exitCode } = err as { code?: unknown; exitCode?: unknown };
  return typeof code === 'string' && code.startsWith('commander.') && typeof exitCode === 'number';
}
