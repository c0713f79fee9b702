import { InterceptError } from './intercept-error.js';
import { shortened, valueText } from './value-text.js';

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
    // Each part bounded: the flag may be a key from a user's YAML, `accepted` may quote an item.
    super(`invalid value for ${shortened(flag)}: ${shortened(valueText(value))}: expected ${shortened(accepted, 2000)}`);
  }
}
