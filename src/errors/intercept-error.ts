/**
 * Base class of every error interpose raises on purpose. The CLI maps each subclass to an
 * exit code (see src/cli/exit-codes.ts); anything that is not an InterceptError is a bug and
 * exits 2 with a stack trace.
 */
/**
 * Marks every InterceptError, from whichever copy of this module made it: the bundled CLI
 * carries its own copy while `interpose lab` runs the compiled dist/cli/lab.js with the
 * package's, and `instanceof` across the two said "not ours" (a bad lab seed printed
 * "internal error" and a stack). Symbol.for is one registry for the whole process.
 */
const BRAND = Symbol.for('interpose.InterceptError');

export class InterceptError extends Error {
  override name = 'InterceptError';
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** An InterceptError from any copy of this module (see BRAND). */
export function isInterceptError(err: unknown): err is InterceptError {
  return err instanceof InterceptError || (typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true);
}
