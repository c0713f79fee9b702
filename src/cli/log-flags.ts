/**
 * pilot-agent's logging flags, which Istio's injector passes to the init container
 * (`--log_output_level=default:info`, `--log_as_json`): accepted with pilot-agent's syntax
 * (istio pkg/log/options.go), honoured where interpose has something to apply them to.
 *
 * - --log_output_level `LEVEL` or `SCOPE:LEVEL,…`: the level of scope `default` (or `all`) filters
 *   interpose's lines. Other scope names are pilot-agent's (ads, xds, …): accepted, and nothing
 *   of interpose's logs under them.
 * - --log_as_json: one JSON object per line (`{"level":…,"msg":…}`).
 * - --log_target (repeatable): `stdout`, `stderr` or a file appended to. Default stderr, not
 *   pilot-agent's stdout: interpose's stdout carries data (--dry-run output).
 * - --log_caller, --log_stacktrace_level: checked and accepted; interpose's lines carry no caller
 *   and user errors never print a stack trace, so there is nothing for them to change.
 */
import { Option } from 'commander';
import { closeSync, openSync } from 'node:fs';
import { ValidationError } from '../errors/validation-error.js';
import { quotedItem } from '../errors/value-text.js';
import { parseBool } from '../config/value-parsers.js';
import { DEFAULT_LOG_SETTINGS, LOG_LEVELS, type LogLevel, type LogSettings, type LogTarget } from './log.js';

const LEVEL_LIST = LOG_LEVELS.join(', ');
const SCOPE_NAME = /^[A-Za-z0-9_.-]+$/;

/** The flags as commander options (commander keeps their names: `opts.log_output_level`). */
export function logOptions(): Option[] {
  return [
    new Option('--log_output_level <levels>', `minimum level of the lines printed: LEVEL or SCOPE:LEVEL,… (pilot-agent's syntax); level one of ${LEVEL_LIST}; interpose logs in scope "default" (default default:info)`),
    new Option('--log_as_json [bool]', 'print each line as one JSON object {"level","msg"} (default false)'),
    new Option('--log_target <target>', 'where lines go: stdout, stderr or a file path; repeat for several (default stderr)').argParser(
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    ),
    new Option('--log_caller <scopes>', 'pilot-agent flag, accepted (interpose\'s lines carry no caller information)'),
    new Option('--log_stacktrace_level <levels>', 'pilot-agent flag, accepted (interpose prints no stack traces for errors it reports)'),
  ];
}

/** Commander's values of the flags above → settings; bad values raise a ValidationError naming the flag. */
export function logSettingsFromOptions(opts: Readonly<Record<string, unknown>>): LogSettings {
  const outputLevels = opts.log_output_level as string | undefined;
  const level = outputLevels === undefined ? DEFAULT_LOG_SETTINGS.level : defaultScopeLevel('--log_output_level', outputLevels);
  const stacktrace = opts.log_stacktrace_level as string | undefined;
  if (stacktrace !== undefined) defaultScopeLevel('--log_stacktrace_level', stacktrace);
  const callers = opts.log_caller as string | undefined;
  if (callers !== undefined) {
    for (const scope of callers.split(',')) {
      if (scope !== '' && !SCOPE_NAME.test(scope)) {
        throw new ValidationError('--log_caller', callers, 'a comma-separated list of scope names such as default or all');
      }
    }
  }
  const asJson = opts.log_as_json as string | boolean | undefined;
  const json = typeof asJson === 'boolean' ? asJson : asJson === undefined ? false : parseBool(asJson, '--log_as_json');
  const given = opts.log_target as string[] | undefined;
  const targets = given === undefined ? DEFAULT_LOG_SETTINGS.targets : given.map(parseTarget);
  return { level, json, targets };
}

/**
 * pilot-agent's `SCOPE:LEVEL,…` list → the level that applies to scope `default`. As in
 * pilot-agent, a bare LEVEL means scope default, `all` sets every scope, and later items win.
 */
function defaultScopeLevel(flag: string, text: string): LogLevel {
  const accepted = `LEVEL or SCOPE:LEVEL,… with LEVEL one of ${LEVEL_LIST} (e.g. default:info)`;
  let level: LogLevel = DEFAULT_LOG_SETTINGS.level;
  for (const item of text.split(',')) {
    const pieces = item.split(':');
    if (pieces.length > 2) throw new ValidationError(flag, text, `${accepted}; ${quotedItem(item)} has more than one ":"`);
    const [scope, name] = pieces.length === 1 ? ['default', pieces[0]!] : [pieces[0]!, pieces[1]!];
    if (!(LOG_LEVELS as readonly string[]).includes(name)) throw new ValidationError(flag, text, `${accepted}; ${quotedItem(name)} is not a level`);
    if (!SCOPE_NAME.test(scope)) throw new ValidationError(flag, text, `${accepted}; ${quotedItem(scope)} is not a scope name`);
    if (scope === 'default' || scope === 'all') level = name as LogLevel;
  }
  return level;
}

/** A file target is opened (created, for appending) now, so a path that cannot be written fails here, naming the flag. */
function parseTarget(value: string): LogTarget {
  if (value === 'stdout' || value === 'stderr') return value;
  if (value === '') throw new ValidationError('--log_target', value, 'stdout, stderr or a file path');
  try {
    closeSync(openSync(value, 'a'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ValidationError('--log_target', value, `stdout, stderr or a file path interpose can append to (${code})`);
  }
  return { path: value };
}

/** The flags that give a child process (the validation probe) these settings' level and format. */
export function logFlagsFor(settings: LogSettings): string[] {
  return [`--log_output_level=${settings.level}`, `--log_as_json=${settings.json}`];
}
