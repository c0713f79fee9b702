/**
 * The plugin's log: lines appended to the configuration's log_file (stdout is the runtime's,
 * stderr usually goes nowhere). Errors are always written; other lines from plugin_log_level
 * up. A log that cannot be written never fails the call it describes.
 */
import { appendFileSync } from 'node:fs';
import { LOG_LEVELS, type LogLevel } from './plugin-config.js';

export class PluginLog {
  constructor(
    private readonly file: string | undefined,
    private readonly level: LogLevel = 'info',
    private readonly context = '',
  ) {}

  withContext(context: string): PluginLog {
    return new PluginLog(this.file, this.level, context);
  }

  debug(message: string): void {
    this.write('debug', message);
  }
  info(message: string): void {
    this.write('info', message);
  }
  warn(message: string): void {
    this.write('warn', message);
  }
  error(message: string): void {
    this.write('error', message);
  }

  private write(level: LogLevel, message: string): void {
    if (!this.file || LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(this.level)) return;
    // At debug, the milliseconds since the process started: where an ADD's time goes.
    const at = this.level === 'debug' ? ` +${Math.round(performance.now())}ms` : '';
    const line = `${new Date().toISOString()}${at} ${level} interpose-cni[${process.pid}]${this.context ? ` ${this.context}` : ''}: ${message.replaceAll('\n', '\n    ')}\n`;
    try {
      appendFileSync(this.file, line, { mode: 0o640 });
    } catch {
      // Nowhere left to say it: the runtime still gets the result or error on stdout.
    }
  }
}
