import { InterceptError } from './intercept-error.js';

/** A system call in the native addon failed; carries errno and its symbolic code. */
export class NativeError extends InterceptError {
  override name = 'NativeError';
  override readonly exitCode = 1;

  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly code: string,
    detail?: string,
  ) {
    super(`${syscall} failed: ${code} (errno ${errno})${detail ? `: ${detail}` : ''}`);
  }
}
