/**
 * Base class of every error interpose raises on purpose. The CLI maps each subclass to an
 * exit code (see src/cli/exit-codes.ts); anything that is not an InterceptError is a bug and
 * exits 2 with a stack trace.
 */
export class InterceptError extends Error {
  override name = 'InterceptError';
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
