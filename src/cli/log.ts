/**
 * interpose's log lines: progress and warnings of the CLI commands, on stderr by default (stdout
 * carries data such as --dry-run output). Text lines read `interpose: MESSAGE`
 * (`interpose: warning: …`, `interpose: debug: …`); with JSON on (pilot-agent's --log_as_json)
 * each line is one object with the same fields, `{"level":"info","msg":"…"}`.
 *
 * Written by hand rather than with pino (which `interpose proxy` uses): three fields per line
 * do not justify loading a logger into every init container's start-up.
 */
import { appendFileSync } from 'node:fs';

/** pilot-agent's level names, lowest first; `none` silences everything. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal', 'none'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where lines go: pilot-agent's --log_target values (`stdout`, `stderr` or a file path). */
export type LogTarget = 'stdout' | 'stderr' | { readonly path: string };

export interface LogSettings {
  /** Lines below this level are dropped. */
  readonly level: LogLevel;
  readonly json: boolean;
  readonly targets: readonly LogTarget[];
}

export const DEFAULT_LOG_SETTINGS: LogSettings = { level: 'info', json: false, targets: ['stderr'] };

let settings: LogSettings = DEFAULT_LOG_SETTINGS;

/** Applies for the rest of the process: every later line follows these settings. */
export function configureLogging(next: LogSettings): void {
  settings = next;
}

export function logSettings(): LogSettings {
  return settings;
}

export function debug(message: string): void {
  write('debug', message);
}

/** Human-readable progress. */
export function info(message: string): void {
  write('info', message);
}

export function warn(message: string): void {
  write('warn', message);
}

/** The error a command ends with (run-action.ts reports every failure through here). */
export function error(message: string): void {
  write('error', message);
}

const TEXT_PREFIX: Record<Exclude<LogLevel, 'none'>, string> = {
  debug: 'interpose: debug: ',
  info: 'interpose: ',
  warn: 'interpose: warning: ',
  error: 'interpose: ',
  fatal: 'interpose: ',
};

function write(level: Exclude<LogLevel, 'none'>, message: string): void {
  if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(settings.level)) return;
  // JSON.stringify escapes newlines, so a multi-line message still makes one line.
  const line = settings.json ? `${JSON.stringify({ level, msg: message })}\n` : `${TEXT_PREFIX[level]}${message}\n`;
  for (const target of settings.targets) {
    if (target === 'stderr') process.stderr.write(line);
    else if (target === 'stdout') process.stdout.write(line);
    else appendFileSync(target.path, line);
  }
}
