import { InterceptError } from './intercept-error.js';

/**
 * A chain of ours that a run would delete is the target of a jump from a chain that is not
 * ours: the kernel refuses to delete a referenced chain, and the jump is not ours to remove.
 * Raised before anything changes; the message names each foreign chain.
 */
export class ForeignJumpError extends InterceptError {
  override name = 'ForeignJumpError';
  override readonly exitCode = 1;

  constructor(readonly jumps: readonly string[]) {
    super(
      `cannot remove interpose's chains: a chain that is not interpose's jumps into one of them, and the kernel refuses to ` +
        `delete a chain that is still referenced:\n  ${jumps.join('\n  ')}\n` +
        'Nothing was changed. Remove that jump (it belongs to whoever added the foreign chain), then run again.',
    );
  }
}
