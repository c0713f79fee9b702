#!/usr/bin/env node
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { commands } from './commands.js';
import { applyHelpLayout } from './help-layout.js';
import { reportAndExit } from './run-action.js';
import { refuseStrayArguments } from './stray-arguments.js';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

const program = new Command('interpose')
  .description(
    'Kernel-level traffic interception: istio-init compatible redirect rules, an in-process ' +
      'redirect target, and tools that explain what the kernel will do.',
  )
  .version(version)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

try {
  // Load just the command being run; anything else (help, a typo) loads them all so commander
  // can list them or suggest the right one.
  const requested = commands.find((c) => c.name === process.argv[2]);
  for (const entry of requested ? [requested] : commands) program.addCommand((await entry.load()).exitOverride());
  applyHelpLayout(program);
  refuseStrayArguments(program);
  await program.parseAsync(process.argv);
} catch (err) {
  reportAndExit(err);
}
