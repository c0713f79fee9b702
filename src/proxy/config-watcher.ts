/**
 * Calls back when the configuration should be re-read: on SIGHUP, and when FILE changes.
 * Watches the directory rather than the file so editors and `kubectl`-style atomic renames
 * (write a temp file, rename over) are seen; changes are debounced.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export class ConfigWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onHup = () => this.fire('SIGHUP');

  constructor(
    private readonly file: string,
    private readonly onChange: (reason: string) => void,
    private readonly debounceMs = 100,
  ) {}

  /** Listens for SIGHUP, and watches the file's directory when asked (throws if it cannot). */
  start(watchFile: boolean): void {
    process.on('SIGHUP', this.onHup);
    if (!watchFile) return;
    const name = basename(this.file);
    this.watcher = watch(dirname(this.file), (_event, changed) => {
      if (changed === null || changed === name) this.fire('file change');
    });
    this.watcher.on('error', () => {});
  }

  private fire(reason: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onChange(reason), reason === 'SIGHUP' ? 0 : this.debounceMs);
  }

  stop(): void {
    process.off('SIGHUP', this.onHup);
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
