/** Runs the built CLI (dist/interpose.js, the package's bin), as users and the conformance tool do. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** The package's bin: the bundled CLI (scripts/bundle-cli.mjs), as users run it. */
export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'interpose.js');

/** Ownership records of this test process's runs go here, not /run/interpose, and go away with it. */
export const STATE_DIR = mkdtempSync(join(tmpdir(), 'interpose-test-state-'));
process.on('exit', () => rmSync(STATE_DIR, { recursive: true, force: true }));

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
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', INTERPOSE_STATE_DIR: STATE_DIR, ...options.env },
    extendEnv: false,
    timeout: 60_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
