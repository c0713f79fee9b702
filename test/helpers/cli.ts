/** Runs the built CLI (dist/cli/main.js), as users and the conformance tool do. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], options: { env?: Record<string, string>; netns?: string } = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does it in pretest)`);
  const argv = options.netns ? ['ip', 'netns', 'exec', options.netns, 'node', CLI, ...args] : ['node', CLI, ...args];
  const r = await execa(argv[0]!, argv.slice(1), {
    reject: false,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...options.env },
    extendEnv: false,
    timeout: 60_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
