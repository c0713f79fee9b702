/**
 * Help pages that fit the terminal (80 columns when output is not a terminal). commander wraps
 * option descriptions only while the description column keeps 40 columns, and the longest term
 * sets that column for every item: istio-iptables' `--istio-local-outbound-ports-exclude <ports>`
 * pushed it to column 52, so nothing wrapped and lines ran to 195 characters. Here the column is
 * capped; a longer term gets a line of its own with its description below it.
 *
 * Descriptions are written as running text without newlines (commander wraps them); text added
 * after the options goes through helpText, which wraps each of its lines the same way.
 */
import { Help, type Command } from 'commander';

/** Columns commander keeps for a description before it stops wrapping (its minWidthToWrap). */
const DESCRIPTION_MIN = 40;
/** The indent commander puts before an item, and the gap between term and description. */
const ITEM_INDENT = 2;
const GAP = 2;

/** The width help is wrapped to: the terminal's, or 80 when the stream is not a terminal. */
export function helpWidth(error = false): number {
  const stream = error ? process.stderr : process.stdout;
  return stream.isTTY && stream.columns > 0 ? stream.columns : 80;
}

/** Applies the layout to `cmd` and all its subcommands (configureHelp is not inherited by addCommand). */
export function applyHelpLayout(cmd: Command): Command {
  cmd.configureHelp({ formatItem });
  cmd.configureOutput({ getOutHelpWidth: () => helpWidth(false), getErrHelpWidth: () => helpWidth(true) });
  for (const sub of cmd.commands) applyHelpLayout(sub);
  return cmd;
}

function formatItem(this: Help, term: string, termWidth: number, description: string, helper: Help): string {
  const width = this.helpWidth ?? 80;
  const column = Math.max(8, Math.min(termWidth, width - ITEM_INDENT - GAP - DESCRIPTION_MIN));
  if (helper.displayWidth(term) <= column || !description) {
    return Help.prototype.formatItem.call(this, term, column, description, helper);
  }
  return `${' '.repeat(ITEM_INDENT)}${term}\n${Help.prototype.formatItem.call(this, '', column, description, helper)}`;
}

/**
 * Text for `addHelpText`, wrapped when help is printed. Each line is a paragraph, an example
 * or a table row (`  NAME  what it is`); a line too long for the terminal continues under its
 * own indent, or under a table row's second column.
 */
export function helpText(text: string): (context: { error: boolean }) => string {
  return ({ error }) => wrapHelpText(text, helpWidth(error));
}

/** helpText's wrapping, for a given width. */
export function wrapHelpText(text: string, width: number): string {
  const help = new Help();
  // The widths below are chosen here; commander's own floor would leave a narrow column unwrapped.
  help.minWidthToWrap = 1;
  return text
    .split('\n')
    .map((line) => {
      if (help.displayWidth(line) <= width) return line;
      const row = /^(\s*\S+\s{2,})\S/.exec(line);
      const indent = /^\s*/.exec(line)![0].length;
      const start = row ? row[1]!.length : indent;
      // A second column too far right for the terminal: continue under the row's indent instead.
      const hang = width - start >= 20 ? start : indent + 4;
      const first = help.boxWrap(line.slice(start), width - start).split('\n');
      const head = line.slice(0, start) + first[0];
      const rest = first.slice(1).join(' ');
      if (rest === '') return head;
      const more = help.boxWrap(rest, Math.max(20, width - hang)).split('\n');
      return [head, ...more.map((l) => ' '.repeat(hang) + l)].join('\n');
    })
    .join('\n');
}
