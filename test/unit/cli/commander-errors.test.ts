/**
 * The bundled CLI carries its own copy of commander while `interpose lab` is the compiled
 * dist/cli/lab.js using the package's (scripts/bundle-cli.mjs): a parse error from either copy
 * must end as a usage error (exit 1, commander's message), never as an internal error.
 */
import test from 'ava';
import { runCli } from '../../helpers/cli.js';

for (const command of ['lab', 'istio-iptables']) {
  test(`interpose ${command} with an unknown option: usage error, exit 1`, async (t) => {
    const r = await runCli([command, '--no-such-option']);
    t.is(r.exitCode, 1);
    t.regex(r.stderr, /unknown option '--no-such-option'/);
    t.notRegex(r.stderr, /internal error/);
  });
}
