/**
 * The node's primary CNI network configuration and interpose-cni's place in it: the lexically
 * first *.conf / *.conflist / *.json of the conf dir (libcni's ConfFiles + sort, which kubelet,
 * containerd and CRI-O use to pick the network), interpose-cni appended as its last plugin, a
 * `.conf` (one plugin) turned into a `.conflist` holding it as its first plugin, as libcni's
 * ConfListFromConf does. Pure functions over names and bytes; the conf dir's I/O is
 * conf-dir-edit.ts.
 */
import { InterceptError } from '../../errors/intercept-error.js';

/** The extensions libcni reads network configurations from. */
const CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];

export const PLUGIN_TYPE = 'interpose-cni';

/** Our plugin's entry in the conflist (plugin-config.ts's keys). */
export type PluginEntry = Readonly<Record<string, unknown>> & { readonly type: typeof PLUGIN_TYPE };

/** The file a runtime takes as the node's network: lexically first, as libcni sorts. */
export function primaryConfName(names: readonly string[]): string | undefined {
  return names.filter((n) => CONF_EXTENSIONS.some((e) => n.endsWith(e))).sort()[0];
}

interface Conflist {
  cniVersion?: unknown;
  name?: unknown;
  plugins: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

/** The file's bytes as a conflist (a single-plugin .conf becomes one); an error names the file. */
export function parseNetworkConf(file: string, bytes: Buffer): { conflist: Conflist; wasSinglePlugin: boolean } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InterceptError(`cannot parse the CNI network configuration ${file}: ${(err as Error).message}; nothing was changed`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InterceptError(`the CNI network configuration ${file} is not a JSON object; nothing was changed`);
  }
  const obj = parsed as Record<string, unknown>;
  // As libcni reads them: a .conflist is a list, anything else one plugin's configuration.
  if (file.endsWith('.conflist')) {
    if (!Array.isArray(obj.plugins) || obj.plugins.some((p) => typeof p !== 'object' || p === null || Array.isArray(p))) {
      throw new InterceptError(`the CNI network configuration ${file} has a "plugins" that is not a list of objects; nothing was changed`);
    }
    return { conflist: obj as Conflist, wasSinglePlugin: false };
  }
  if (typeof obj.type !== 'string') {
    throw new InterceptError(`the CNI network configuration ${file} has no plugin "type" (a list of plugins belongs in a .conflist); nothing was changed`);
  }
  // libcni's ConfListFromConf: the list takes the single plugin's cniVersion and name.
  return { conflist: { cniVersion: obj.cniVersion, name: obj.name, plugins: [obj] }, wasSinglePlugin: true };
}

export const hasPlugin = (c: Conflist): boolean => c.plugins.some((p) => p.type === PLUGIN_TYPE);

/** True when our entry is the last plugin, exactly as wanted, and the only one of ours. */
export function holdsExactly(c: Conflist, entry: PluginEntry): boolean {
  const ours = c.plugins.filter((p) => p.type === PLUGIN_TYPE);
  return ours.length === 1 && c.plugins.at(-1) === ours[0] && JSON.stringify(ours[0]) === JSON.stringify(entry);
}

/** The conflist with our entry (only) at the end. */
export function withPlugin(c: Conflist, entry: PluginEntry): Conflist {
  return { ...c, plugins: [...c.plugins.filter((p) => p.type !== PLUGIN_TYPE), entry] };
}

export function withoutPlugin(c: Conflist): Conflist {
  return { ...c, plugins: c.plugins.filter((p) => p.type !== PLUGIN_TYPE) };
}

export function renderConflist(c: Conflist): Buffer {
  return Buffer.from(`${JSON.stringify(c, null, 2)}\n`);
}

/** `10-bridge.conf` → `10-bridge.conflist` (and `.json` likewise). */
export function conflistNameFor(file: string): string {
  return `${file.replace(/\.(conf|json)$/, '')}.conflist`;
}
