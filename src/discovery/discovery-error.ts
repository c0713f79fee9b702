import { InterceptError } from '../errors/index.js';

/**
 * Discovery could not produce ranges: a platform CLI is missing, its login expired, the cluster
 * does not exist, or its output was not what the platform documents. The message names the CLI
 * (or file) and says what to do about it.
 */
export class DiscoveryError extends InterceptError {
  override name = 'DiscoveryError';
  override readonly exitCode = 1;

  constructor(
    message: string,
    /** What the user should do next, printed on its own line. */
    readonly fix?: string,
    options?: { cause?: unknown },
  ) {
    super(fix ? `${message}\n  fix: ${fix}` : message, options);
  }
}
