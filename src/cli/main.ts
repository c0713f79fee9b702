#!/usr/bin/env node
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { commands } from './commands.js';
import { applyHelpLayout } from './help-layout.js';
import { reportAndExit } from './run-action.js';
import { refuseStrayArguments } from './stray-arguments.js';

/** Set by the bundler (scripts/bundle-cli.mjs); the compiled tree reads package.json instead. */
declare const INTERPOSE_VERSION: string | undefined;
const version =
  typeof INTERPOSE_VERSION === 'string'
    ? INTERPOSE_VERSION
    : (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

const program = new Command('interpose')
  .description(
    'Kernel-level traffic interception: istio-init compatible redirect rules, an in-process ' +
      'redirect target, and tools that explain what the kernel will do.',
  )
  .version(version)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

try {
  // Load just the command being run, none for --version; anything else (help, a typo) loads them
  // all so commander can list them or suggest the right one.
  const requested = commands.find((c) => c.name === process.argv[2]);
  const versionOnly = process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V');
  for (const entry of requested ? [requested] : versionOnly ? [] : commands) program.addCommand((await entry.load()).exitOverride());
  applyHelpLayout(program);
  refuseStrayArguments(program);
  await program.parseAsync(process.argv);
  if (requested?.exitWhenDone) process.exit();
} catch (err) {
  reportAndExit(err);
}
