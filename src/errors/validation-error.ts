import { InterceptError } from './intercept-error.js';
import { valueText } from './value-text.js';

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
    super(`invalid value for ${flag}: ${shorten(valueText(value))}: expected ${accepted}`);
  }
}

/** A value of thousands of CIDRs is quoted by its start and length: the bad item is named apart. */
function shorten(quoted: string): string {
  return quoted.length <= 200 ? quoted : `${quoted.slice(0, 120)}… (${quoted.length} characters)`;
}
