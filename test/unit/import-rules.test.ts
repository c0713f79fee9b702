/**
 * The architecture's import boundaries, checked by dependency-cruiser with the rules in
 * .dependency-cruiser.cjs (pure layers, only kernel/ spawns processes or talks netlink, proxy/
 * never imports cli/, no cycles). A failure lists each broken rule as
 * `error RULE: FROM → TO`; `npm run lint:imports` prints the same.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(import.meta.dirname, '..', '..');
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

test('src/ keeps the architecture\'s import rules', async (t) => {
  const run = promisify(execFile)(
    process.execPath,
    [DEPCRUISE, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'],
    { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
  );
  // depcruise exits with the number of violations; execFile rejects on a non-zero exit.
  const outcome = await run.then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );
  t.is(outcome.code, 0, `import rules broken (see .dependency-cruiser.cjs for why each rule exists):\n${outcome.out}`);
  // A run that cruised nothing (wrong directory, config not found) must not pass as clean.
  t.regex(outcome.out, /no dependency violations found \(\d+ modules/);
});
