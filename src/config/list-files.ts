/**
 * `-x @FILE`: a CIDR list read from a file. Linux caps one argument or environment string at
 * 128 KiB (MAX_ARG_STRLEN), about 8,000 CIDRs, so the long lists that interval sets are for
 * (10k, 100k) cannot come on the command line at all; a file (a mounted ConfigMap, a list a
 * script writes) can hold any number.
 *
 * The file holds CIDRs separated by commas, spaces or newlines; `#` starts a comment that runs
 * to the end of its line. Its items become the setting's value, so the usual validation applies
 * and its errors name the flag and the file. Pure: the caller passes the file reader.
 */
import { ValidationError } from '../errors/validation-error.js';
import type { RawSetting, RawSettings } from './istio-flags.js';

/** The settings whose value may be `@FILE`. */
export const LIST_FILE_SETTINGS: readonly string[] = ['istio-service-cidr', 'istio-service-exclude-cidr'];

/** The items of a list file, comma-joined as the flag would take them. */
export function listFileItems(text: string): string {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join(' ')
    .split(/[\s,]+/)
    .filter((item) => item !== '')
    .join(',');
}

/** `settings` with every `@FILE` value of LIST_FILE_SETTINGS replaced by the file's items. */
export function expandListFiles(settings: RawSettings, readFile: (path: string) => string): RawSettings {
  const out = new Map(settings);
  for (const long of LIST_FILE_SETTINGS) {
    const setting = settings.get(long);
    if (!setting || !setting.value.startsWith('@')) continue;
    const path = setting.value.slice(1);
    if (path === '') throw new ValidationError(setting.source, setting.value, 'a file path after "@" (@FILE reads the list from FILE)');
    let text: string;
    try {
      text = readFile(path);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ValidationError(setting.source, setting.value, `@FILE naming a readable file of CIDRs (${path}: ${reason})`);
    }
    const expanded: RawSetting = { value: listFileItems(text), source: `${setting.source} (from ${path})` };
    out.set(long, expanded);
  }
  return out;
}
