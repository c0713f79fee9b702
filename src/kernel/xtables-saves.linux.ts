/**
 * The `*-save -c` reads iptables detection makes (iptables-binaries.linux.ts), without a shell,
 * for commands that run in this process's own network namespace (Executor.realNamespace ''):
 * whether a tool is installed and whether legacy holds any table are read here, and the saves
 * that remain are spawned directly and at the same time. The shell script used otherwise runs
 * every step in series, with a `$(cat …)` subshell per legacy table list: five processes one
 * after the other where an init container then needs two at once.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Executor } from './executor.js';

export interface SaveRead {
  /** e.g. iptables-nft-save; run as `TOOL -c`. */
  readonly tool: string;
  /**
   * For legacy tools: /proc/net/ip{,6}_tables_names. When it lists no table, legacy holds
   * nothing and the save is not run (its output is taken as empty).
   */
  readonly tablesFile?: string;
  /** Known to print nothing (nf_tables holds no table of its family): not run, taken as empty. */
  readonly knownEmpty?: boolean;
}

/**
 * Output of each read, by tool: undefined when the tool is not installed, failed or could not
 * start, as the shell script reports them.
 */
export async function readSavesDirectly(executor: Executor, reads: readonly SaveRead[]): Promise<Map<string, string | undefined>> {
  const outputs = await Promise.all(
    reads.map(async ({ tool, tablesFile, knownEmpty }): Promise<[string, string | undefined]> => {
      if (!onPath(tool)) return [tool, undefined];
      if (knownEmpty || (tablesFile !== undefined && !listsATable(tablesFile))) return [tool, ''];
      try {
        const r = await executor.run([tool, '-c']);
        return [tool, r.exitCode === 0 ? r.stdout : undefined];
      } catch {
        return [tool, undefined];
      }
    }),
  );
  return new Map(outputs);
}

/** `command -v` for an executable, against this process's PATH (the one its children get). */
function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function listsATable(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').trim() !== '';
  } catch {
    return false;
  }
}
