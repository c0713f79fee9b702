import { InterceptError } from './intercept-error.js';

/**
 * The kernel already holds interpose/istio rules that differ from what this configuration
 * would install. Nothing was changed; `--reconcile` replaces them.
 */
export class DriftError extends InterceptError {
  override name = 'DriftError';
  override readonly exitCode = 1;

  constructor(
    readonly differences: readonly string[],
    what = 'rules',
  ) {
    super(
      `existing ${what} differ from this configuration (nothing changed; rerun with --reconcile to replace them):\n` +
        differences.map((d) => `  ${d}`).join('\n'),
    );
  }
}
