/**
 * Every help page, as printed when stdout is not a terminal (piped, as here): no line wider
 * than 80 columns, and no line of running text broken before it had to be (the next line's
 * first word would have fitted: a hard-coded newline in a description). The descriptions
 * themselves carry no newlines; commander wraps them.
 */
import test from 'ava';
import { commands } from '../../../src/cli/commands.js';
import { wrapHelpText } from '../../../src/cli/help-layout.js';
import { runCli } from '../../helpers/cli.js';

const WIDTH = 80;

/** Lines that break running text early: [line, next line] pairs. */
function earlyBreaks(page: string): string[] {
  const lines = page.split('\n');
  const out: string[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    const a = lines[i]!;
    const b = lines[i + 1]!;
    if (a.trim() === '' || b.trim() === '') continue;
    const indentA = a.length - a.trimStart().length;
    const indentB = b.length - b.trimStart().length;
    // An item or table row ("  term   description"): its description continues at its column.
    const row = /^(\s*\S.*?\s{2,})\S/.exec(a);
    const continues = row ? indentB === row[1]!.length : indentA === 0 && indentB === 0;
    if (!continues || /[.:!?]$/.test(a)) continue;
    const next = b.trimStart().split(/\s+/)[0]!;
    if (a.length + 1 + next.length <= WIDTH) out.push(`${JSON.stringify(a)} / ${JSON.stringify(b)}`);
  }
  return out;
}

const pages = [[], ...commands.map((c) => [c.name])];
for (const page of pages) {
  test(`interpose ${page.join(' ')} --help: at most ${WIDTH} columns, no sentence broken early`, async (t) => {
    const r = await runCli([...page, '--help']);
    t.is(r.exitCode, 0, r.stderr);
    const long = r.stdout.split('\n').filter((l) => l.length > WIDTH);
    t.deepEqual(long, [], `lines wider than ${WIDTH}`);
    t.deepEqual(earlyBreaks(r.stdout), [], 'lines broken before the next word had to go to a new line');
    t.true(r.stdout.split('\n').length > 5);
  });
}

test('descriptions, summaries and option help carry no hard newline (commander wraps them)', async (t) => {
  for (const entry of commands) {
    const cmd = await entry.load();
    const texts = [cmd.description(), cmd.summary(), ...cmd.options.map((o) => o.description), ...cmd.registeredArguments.map((a) => a.description)];
    for (const text of texts) t.false(text.includes('\n'), `${entry.name}: ${JSON.stringify(text)}`);
  }
});

test('text after the options wraps under its own indent, or under a table row\'s second column', (t) => {
  t.is(wrapHelpText('alpha beta gamma delta epsilon zeta', 20), 'alpha beta gamma\ndelta epsilon zeta');
  t.is(wrapHelpText('  NAME  one two three four five six seven eight', 30), '  NAME  one two three four\n        five six seven eight');
  t.is(wrapHelpText('  example one two', 40), '  example one two');
});
