/**
 * commander's own usage errors quote the argument whole (`argument 'AAAA…' is invalid. Allowed
 * choices are …`): a 100 KB value made a 100 KB message. Here every overlong word of such a
 * message is shortened as interpose's own errors shorten values.
 */
import type { Command } from 'commander';
import { shortened } from '../errors/value-text.js';

/** On `cmd` and every subcommand (addCommand does not pass output settings on). */
export function boundUsageErrors(cmd: Command): Command {
  cmd.configureOutput({ outputError: (message, write) => write(message.replace(/\S{201,}/g, (word) => shortened(word))) });
  for (const sub of cmd.commands) boundUsageErrors(sub);
  return cmd;
}
