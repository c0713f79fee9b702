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
import { parseCidr } from '../net/cidr.js';
import { FileRefusedError, formatBytes } from './bounded-file.js';
import type { RawSetting, RawSettings } from './istio-flags.js';

/** The settings whose value may be `@FILE`. */
export const LIST_FILE_SETTINGS: readonly string[] = ['istio-service-cidr', 'istio-service-exclude-cidr'];

/**
 * The largest list file read: 100k IPv6 CIDRs with comments fit in a few MiB; a file far
 * beyond that is a mistake (or an attack on an init container's memory), not a list.
 */
export const LIST_FILE_MAX_BYTES = 16 * 1024 * 1024;

/** Reads a list file, at most `maxBytes` of it; throws FileRefusedError or an fs error. */
export type ListFileReader = (path: string, maxBytes: number) => string;

/** One item of a list file and the line it is on (1-based), for error messages. */
export interface ListFileItem {
  readonly text: string;
  readonly line: number;
}

/** The items of a list file, in order, with their line numbers. */
export function listFileEntries(text: string): ListFileItem[] {
  const out: ListFileItem[] = [];
  text.split('\n').forEach((raw, i) => {
    for (const item of raw.replace(/#.*/, '').split(/[\s,]+/)) {
      if (item !== '') out.push({ text: item, line: i + 1 });
    }
  });
  return out;
}

/** The items of a list file, comma-joined as the flag would take them. */
export function listFileItems(text: string): string {
  return listFileEntries(text)
    .map((e) => e.text)
    .join(',');
}

/**
 * `settings` with every `@FILE` value of LIST_FILE_SETTINGS replaced by the file's items.
 * Every item is checked here, where its line is known: an error names the flag, the file, the
 * line and the bad item (shortened), and never quotes anything else from the file: `-i
 * @/etc/shadow` must not print the file's lines.
 */
export function expandListFiles(settings: RawSettings, readFile: ListFileReader): RawSettings {
  const out = new Map(settings);
  for (const long of LIST_FILE_SETTINGS) {
    const setting = settings.get(long);
    if (!setting || !setting.value.startsWith('@')) continue;
    const path = setting.value.slice(1);
    if (path === '') throw new ValidationError(setting.source, setting.value, 'a file path after "@" (@FILE reads the list from FILE)');
    let text: string;
    try {
      text = readFile(path, LIST_FILE_MAX_BYTES);
    } catch (err) {
      const reason = err instanceof FileRefusedError ? err.reason : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      throw new ValidationError(
        setting.source,
        setting.value,
        `@FILE naming a readable regular file of CIDRs, at most ${formatBytes(LIST_FILE_MAX_BYTES)} (${path}: ${reason})`,
      );
    }
    const entries = listFileEntries(text);
    // "*" (every destination) is a whole value of -i, never one item among CIDRs.
    const wildcard = long === 'istio-service-cidr' && entries.length === 1 && entries[0]!.text === '*';
    if (!wildcard) {
      for (const entry of entries) {
        if (parseCidr(entry.text)) continue;
        throw new ValidationError(
          `${setting.source} (${path} line ${entry.line})`,
          shortenEntry(entry.text),
          'one IPv4 or IPv6 CIDR per item, such as 10.0.0.0/8 or 2001:db8::/32 (items are separated by commas, spaces or newlines; # starts a comment)',
        );
      }
    }
    const expanded: RawSetting = { value: entries.map((e) => e.text).join(','), source: `${setting.source} (from ${path})` };
    out.set(long, expanded);
  }
  return out;
}

/**
 * The longest CIDR is 49 characters (`ffff:…:255.255.255.255/128`); a longer item is not a
 * mistyped CIDR but something else (a shadow line, binary data), so only its start is shown.
 */
const ENTRY_SHOWN = 49;

function shortenEntry(item: string): string {
  return item.length <= ENTRY_SHOWN ? item : `${item.slice(0, 16)}… (${item.length} characters)`;
}
