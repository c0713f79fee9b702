/**
 * `interpose cni install` / `uninstall`: what a DaemonSet pod does on every node, in an order
 * that changes nothing when any input is wrong — the dirs, the service account and the primary
 * configuration are all read and checked before the first write. With `watch`, the conf dir is
 * watched and interpose-cni put back whenever another CNI (or an operator) rewrites the primary
 * configuration without it.
 */
import { existsSync, renameSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBoundedBytes } from '../../config/bounded-file.js';
import { InterceptError } from '../../errors/intercept-error.js';
import { CONF_FILE_MAX_BYTES, insertPlugin, primaryIn, readConfFile, removePlugin, type InsertOutcome } from './conf-dir-edit.js';
import { checkSocketPath, startCniServer } from '../cni-server.js';
import { removePluginFiles, installPluginFiles } from './plugin-files.js';
import { PLUGIN_TYPE, parseNetworkConf, type PluginEntry } from './primary-conflist.js';
import { KUBECONFIG_FILE, serviceAccountKubeconfig } from './service-account-kubeconfig.js';

export interface InstallOptions {
  readonly binDir: string;
  readonly confDir: string;
  readonly serviceAccountDir: string;
  readonly logFile: string;
  readonly logLevel: string;
  readonly excludeNamespaces: readonly string[];
  readonly nativeNftables: boolean;
  /** The node executable to copy next to the plugin, or undefined to run `node` from PATH. */
  readonly copyNode?: string;
  /** The daemon's socket the shim forwards to (written next to it); with watch, served. */
  readonly socket?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: (message: string) => void;
}

export interface WatchOptions {
  /** Quiet time after the last change before the primary is looked at (a rewrite is often several events). */
  readonly debounceMs: number;
  /** Looked at this often even without events (fs.watch can miss some), and the token refreshed. */
  readonly recheckMs: number;
  /** More re-insertions than this per minute: someone is fighting us; stop with an error. */
  readonly maxReinsertsPerMinute: number;
  readonly signal: AbortSignal;
  /** Serve CNI calls on InstallOptions.socket while watching (the shim's fast path). */
  readonly serve?: boolean;
}

function requireDir(path: string, flag: string): void {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // named below
  }
  if (!isDir) throw new InterceptError(`${flag} ${path} is not a directory; nothing was changed`);
}

function entryFor(opts: InstallOptions): PluginEntry {
  return {
    type: PLUGIN_TYPE,
    kubeconfig: join(opts.confDir, KUBECONFIG_FILE),
    log_file: opts.logFile,
    plugin_log_level: opts.logLevel,
    exclude_namespaces: [...opts.excludeNamespaces],
    native_nftables: opts.nativeNftables,
  };
}

/** A file we wrote earlier, as it is now; undefined when it cannot be read or is not ours any more (too large). */
function currentText(path: string): string | undefined {
  try {
    return readBoundedBytes(path, CONF_FILE_MAX_BYTES).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Writes the kubeconfig when its content changed (the token rotates); true when it did. */
function writeKubeconfig(opts: InstallOptions, content: string): boolean {
  const path = join(opts.confDir, KUBECONFIG_FILE);
  if (existsSync(path) && currentText(path) === content) return false;
  const tmp = join(opts.confDir, `.${KUBECONFIG_FILE}-${process.pid}.tmp`);
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, path);
  return true;
}

function describe(o: InsertOutcome | undefined, confDir: string): string {
  if (o === undefined) return `no network configuration in ${confDir} yet`;
  if (!o.changed) return `${o.file} already ends with interpose-cni`;
  return o.from ? `turned ${o.from} into ${o.file} ending with interpose-cni` : `appended interpose-cni to ${o.file}`;
}

export async function install(opts: InstallOptions, watchOpts?: WatchOptions): Promise<void> {
  requireDir(opts.binDir, '--cni-bin-dir');
  requireDir(opts.confDir, '--cni-conf-dir');
  const kubeconfig = serviceAccountKubeconfig(opts.serviceAccountDir, opts.env);
  const primary = primaryIn(opts.confDir);
  if (primary === undefined && !watchOpts) {
    throw new InterceptError(`--cni-conf-dir ${opts.confDir} holds no network configuration (*.conf, *.conflist, *.json) to add interpose-cni to; nothing was changed (with --watch, install waits for one)`);
  }
  if (primary !== undefined) parseNetworkConf(join(opts.confDir, primary), readConfFile(join(opts.confDir, primary)));
  if (opts.socket !== undefined) checkSocketPath(opts.socket);

  // Served before the shim that forwards to it is in place: its first call finds it listening.
  const server = watchOpts?.serve && opts.socket ? await startCniServer({ socketPath: opts.socket, requestTimeoutMs: 10_000, maxConnections: 256, log: opts.log }) : undefined;
  try {
    const files = installPluginFiles({ binDir: opts.binDir, ...(opts.copyNode ? { copyNode: opts.copyNode } : {}), ...(opts.socket ? { socket: opts.socket } : {}) });
    opts.log(
      files.shim
        ? `installed ${join(opts.binDir, PLUGIN_TYPE)} (the native shim: forwards to ${files.socket}, else runs the Node plugin)`
        : `installed ${join(opts.binDir, PLUGIN_TYPE)} as the Node plugin: no native shim is built (npm run build:native), so every call starts Node.js`,
    );
    if (writeKubeconfig(opts, kubeconfig)) opts.log(`wrote ${join(opts.confDir, KUBECONFIG_FILE)}`);
    const entry = entryFor(opts);
    opts.log(describe(insertPlugin(opts.confDir, entry), opts.confDir));
    if (watchOpts) await watchConfDir(opts, entry, watchOpts);
  } finally {
    await server?.close();
  }
}

/** Until the signal aborts: re-inserts our entry whenever the primary lacks it. */
async function watchConfDir(opts: InstallOptions, entry: PluginEntry, w: WatchOptions): Promise<void> {
  const reinserts: number[] = [];
  let timer: NodeJS.Timeout | undefined;
  let failure: unknown;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));

  const look = () => {
    timer = undefined;
    try {
      if (writeKubeconfig(opts, serviceAccountKubeconfig(opts.serviceAccountDir, opts.env))) opts.log(`rewrote ${join(opts.confDir, KUBECONFIG_FILE)} (token changed)`);
      const outcome = insertPlugin(opts.confDir, entry);
      if (outcome?.changed) {
        const now = Date.now();
        reinserts.push(now);
        while (reinserts[0]! < now - 60_000) reinserts.shift();
        opts.log(`the primary configuration was rewritten: ${describe(outcome, opts.confDir)}`);
        if (reinserts.length > w.maxReinsertsPerMinute) {
          failure = new InterceptError(`${outcome.file} in ${opts.confDir} was rewritten without interpose-cni ${reinserts.length} times in a minute: another agent keeps removing it; stopping`);
          finish();
        }
      }
    } catch (err) {
      // A primary that does not parse right now may be mid-rewrite by its owner: try again on
      // the next event or recheck; only a fight ends the watch.
      opts.log(`cannot insert interpose-cni yet: ${(err as Error).message}`);
    }
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(look, w.debounceMs);
  };

  const watcher = watch(opts.confDir, { persistent: true }, schedule);
  watcher.on('error', (err) => {
    failure = new InterceptError(`watching ${opts.confDir} failed: ${err.message}`);
    finish();
  });
  const recheck = setInterval(schedule, w.recheckMs);
  w.signal.addEventListener('abort', finish, { once: true });
  if (w.signal.aborted) finish();
  opts.log(`watching ${opts.confDir} for rewrites of the primary configuration`);
  try {
    await done;
  } finally {
    watcher.close();
    clearInterval(recheck);
    if (timer) clearTimeout(timer);
  }
  if (failure) throw failure;
}

export interface UninstallOptions {
  readonly binDir: string;
  readonly confDir: string;
  readonly log: (message: string) => void;
}

export function uninstall(opts: UninstallOptions): void {
  requireDir(opts.binDir, '--cni-bin-dir');
  requireDir(opts.confDir, '--cni-conf-dir');
  opts.log(removePlugin(opts.confDir));
  rmSync(join(opts.confDir, KUBECONFIG_FILE), { force: true });
  removePluginFiles(opts.binDir);
  opts.log(`removed ${join(opts.binDir, PLUGIN_TYPE)}, ${join(opts.binDir, `${PLUGIN_TYPE}.d`)} and ${join(opts.confDir, KUBECONFIG_FILE)}`);
}
