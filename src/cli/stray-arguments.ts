/**
 * commander refuses an unexpected positional argument with "too many arguments … Expected 0
 * arguments but got 1", which does not say which word it was; in a long init-container
 * command line (a value with a space in it, a flag missing its dash) that is the one thing
 * the user needs. This replaces that check with one that names the argument.
 */
import type { Command } from 'commander';
import { quotedItem } from '../errors/value-text.js';

/** On `cmd` and every subcommand: an argument beyond the declared ones is an error naming it. */
export function refuseStrayArguments(cmd: Command): Command {
  for (const sub of cmd.commands) refuseStrayArguments(sub);
  const declared = cmd.registeredArguments;
  if (declared.at(-1)?.variadic) return cmd;
  // commander's own check runs first and would say only "too many arguments".
  cmd.allowExcessArguments(true);
  cmd.hook('preAction', (_hooked, action) => {
    if (action !== cmd) return;
    const stray = action.args.slice(declared.length);
    if (stray.length === 0) return;
    const takes = declared.length === 0 ? 'takes no arguments' : `takes at most ${declared.map((a) => `[${a.name()}]`).join(' ')}`;
    action.error(
      `error: unexpected argument ${quotedItem(stray[0]!)} for '${action.name()}': it ${takes}; options start with - or --, and a value with spaces must be quoted`,
      { code: 'commander.excessArguments' },
    );
  });
  return cmd;
}
