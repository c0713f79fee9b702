#!/usr/bin/env node
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { commandFactories } from './commands.js';
import { reportAndExit } from './run-action.js';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

const program = new Command('interpose')
  .description(
    'Kernel-level traffic interception: istio-init compatible redirect rules, an in-process\n' +
      'redirect target, and tools that explain what the kernel will do.',
  )
  .version(version)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

for (const make of commandFactories) program.addCommand(make().exitOverride());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  reportAndExit(err);
}
