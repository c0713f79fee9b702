#!/usr/bin/env node
// Every `interpose` command; dist/interpose-main.js once bundled (see launcher.ts).
import { commands } from './commands.js';
import { runProgram } from './program.js';

await runProgram(commands);
