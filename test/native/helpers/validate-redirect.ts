/**
 * Runs validateRedirect inside a test's network namespace and exits the way the CLI would:
 * 0 on success, the InterceptError's exit code (126) with its message on stderr otherwise.
 *
 * argv[2]: RedirectValidationOptions as JSON
 */
import { validateRedirect, type RedirectValidationOptions } from '../../../src/kernel/validation.linux.js';
import { InterceptError } from '../../../src/errors/index.js';

try {
  await validateRedirect(JSON.parse(process.argv[2]!) as RedirectValidationOptions);
  process.stdout.write('validation passed\n');
} catch (err) {
  if (!(err instanceof InterceptError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(err.exitCode);
}
