/**
 * Entry point run as a child process by runRedirectValidation(): inside the target network
 * namespace, as the proxy's uid and gid, it proves the redirect with validateRedirect().
 * argv[2] is the options as JSON. Exit 0 when proven, 126 when not, 1 on anything else.
 */
import { RedirectValidationError, validateRedirect, type RedirectValidationOptions } from './validation.linux.js';

try {
  await validateRedirect(JSON.parse(process.argv[2] ?? '{}') as RedirectValidationOptions);
  process.exit(0);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof RedirectValidationError ? 126 : 1);
}
