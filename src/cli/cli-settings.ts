/** Flags and environment variables → raw settings, with `@FILE` lists read: what every command that takes istio-iptables' flags starts from. */
import { resolveSettings, type RawSettings } from '../config/istio-flags.js';
import { readBoundedFile } from '../config/bounded-file.js';
import { expandListFiles } from '../config/list-files.js';

export function settingsFromCommandLine(opts: Readonly<Record<string, string | boolean | undefined>>): RawSettings {
  return expandListFiles(resolveSettings(opts, process.env), readBoundedFile);
}
