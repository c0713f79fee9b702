/**
 * The `interpose` program: its options, the commands it was given, help layout, parsing and the
 * one place errors become messages and exit codes. Run by main.ts (every command, each loaded
 * when it runs) and by istio-iptables-main.ts (that command alone, bundled into one file).
 */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import type { CommandEntry } from './commands.js';
import { boundUsageErrors } from './bounded-usage-errors.js';
import { flushedExit } from './flushed-exit.js';
import { applyHelpLayout } from './help-layout.js';
import { reportAndExit } from './run-action.js';
import { refuseStrayArguments } from './stray-arguments.js';

/** Set by the bundler (scripts/bundle-cli.mjs); the compiled tree reads package.json instead. */
declare const INTERPOSE_VERSION: string | undefined;

function version(): string {
  return typeof INTERPOSE_VERSION === 'string'
    ? INTERPOSE_VERSION
    : (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

/** Parses process.argv against `entries` and runs the command it names. */
export async function runProgram(entries: readonly CommandEntry[]): Promise<void> {
  const program = new Command('interpose')
    .description(
      'Kernel-level traffic interception: istio-init compatible redirect rules, an in-process ' +
        'redirect target, and tools that explain what the kernel will do.',
    )
    .version(version())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  try {
    // Load just the command being run, none for --version; anything else (help, a typo) loads
    // them all so commander can list them or suggest the right one.
    const requested = entries.find((c) => c.name === process.argv[2]);
    const versionOnly = process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V');
    for (const entry of requested ? [requested] : versionOnly ? [] : entries) program.addCommand((await entry.load()).exitOverride());
    applyHelpLayout(program);
    refuseStrayArguments(program);
    boundUsageErrors(program);
    await program.parseAsync(process.argv);
    if (requested?.exitWhenDone) await flushedExit();
  } catch (err) {
    reportAndExit(err);
  }
}
