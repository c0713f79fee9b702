/**
 * The `*-save -c` reads iptables detection makes (iptables-binaries.linux.ts), without a shell:
 * for commands that run in this process's own network namespace (Executor.realNamespace ''),
 * and for any namespace where every save is known to print nothing. Whether a tool is
 * installed is read here, and the saves that remain are spawned directly and at the same time,
 * where the shell script used otherwise runs them one after the other.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Executor } from './executor.js';

export interface SaveRead {
  /** e.g. iptables-nft-save; run as `TOOL -c`. */
  readonly tool: string;
  /** Known to print nothing here (its family holds no table): not run, taken as empty. */
  readonly knownEmpty: boolean;
}

/**
 * Output of each read, by tool: undefined when the tool is not installed, failed or could not
 * start, as the shell script reports them.
 */
export async function readSavesDirectly(executor: Executor, reads: readonly SaveRead[]): Promise<Map<string, string | undefined>> {
  const outputs = await Promise.all(
    reads.map(async ({ tool, knownEmpty }): Promise<[string, string | undefined]> => {
      if (!onPath(tool)) return [tool, undefined];
      if (knownEmpty) return [tool, ''];
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
