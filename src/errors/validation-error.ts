import { InterceptError } from './intercept-error.js';

/**
 * Bad input: names the flag (or field), the value given and what is accepted. Raised before
 * anything touches the kernel.
 */
export class ValidationError extends InterceptError {
  override name = 'ValidationError';
  override readonly exitCode = 1;

  constructor(
    readonly flag: string,
    readonly value: unknown,
    readonly accepted: string,
  ) {
    super(`invalid value for ${flag}: ${shorten(quote(value))}: expected ${accepted}`);
  }
}

/**
 * The value as JSON. JSON.stringify returns undefined (not a string) for undefined, functions
 * and symbols, and throws on bigints and cycles: a missing YAML field once turned its error
 * into `internal error: TypeError` here. Those are named in words instead.
 */
function quote(value: unknown): string {
  if (value === undefined) return '(not set)';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A value of thousands of CIDRs is quoted by its start and length: the bad item is named apart. */
function shorten(quoted: string): string {
  return quoted.length <= 200 ? quoted : `${quoted.slice(0, 120)}… (${quoted.length} characters)`;
}
