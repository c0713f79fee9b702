/**
 * Puts the plugin into the CNI bin dir:
 *
 *   <bin>/interpose-cni       the native shim (native/src/cni_shim/): forwards the call to the
 *                             node daemon's socket, or, when nothing listens there, execs the
 *                             Node plugin below (docs/cni.md, "Architecture")
 *   <bin>/interpose-cni.d/    interpose-cni-node  a /bin/sh launcher: `exec NODE …/dist/interpose-cni.js`
 *                             daemon-socket       the socket path the shim connects to (one line)
 *                             the bundle's files the Node plugin loads (dist/interpose-cni.js and
 *                             the chunks it imports, found by following its imports), the native
 *                             addon, the one package the bundle leaves external (node-gyp-build),
 *                             and with --copy-node the node executable itself
 *
 * Without a built shim (no compiler where the package was installed) <bin>/interpose-cni is
 * the launcher itself, as before the shim existed. <bin>/interpose-cni is written last and by
 * rename(2), so a runtime executing the plugin mid-install runs the old one or the new one,
 * never a half-written one.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InterceptError } from '../../errors/intercept-error.js';
import { nativeExecutablePath } from '../../native-loader.js';
import { DEFAULT_SOCKET, checkSocketPath } from '../cni-server.js';
import { PLUGIN_TYPE } from './primary-conflist.js';

export const INSTALL_DIR = `${PLUGIN_TYPE}.d`;
/** The Node plugin's launcher inside INSTALL_DIR: what the shim execs when the daemon is absent. */
export const NODE_LAUNCHER = 'interpose-cni-node';
/** The file inside INSTALL_DIR naming the daemon's socket (the shim reads it; absent: DEFAULT_SOCKET). */
export const SOCKET_FILE = 'daemon-socket';
/** The shim's name in native/build/Release and the prebuilds (built by native/CMakeLists.txt). */
export const SHIM_EXECUTABLE = 'interpose-cni-shim';


/** The package root: the first directory up from this module with interpose's package.json. */
export function packageRoot(from = dirname(new URL(import.meta.url).pathname)): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'interpose') return dir;
    if (dirname(dir) === dir) throw new InterceptError(`cannot find the interpose package above ${from}`);
  }
}

/** dist/interpose-cni.js and every bundle chunk it imports, statically or lazily. */
export function bundleClosure(dist: string, entry = 'interpose-cni.js'): string[] {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(join(dist, file), 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)"\.\/([^"]+\.js)"/g)) queue.push(m[1]!);
  }
  return [...seen].sort();
}

/** The packages the bundle imports by name (scripts/bundle-cli.mjs bundles everything else). */
const EXTERNAL_PACKAGES = ['node-gyp-build'];

export interface PluginFilesOptions {
  readonly binDir: string;
  /** Copy this node executable next to the plugin (hosts rarely have Node.js); else `node` from PATH. */
  readonly copyNode?: string;
  /** The daemon socket the shim forwards to; DEFAULT_SOCKET when not given. */
  readonly socket?: string;
  /** Install the Node launcher as <bin>/interpose-cni even when a shim is built (tests of the Node path). */
  readonly nodeOnly?: boolean;
}

export interface InstalledFiles {
  /** False when no shim was built: <bin>/interpose-cni is the Node launcher. */
  readonly shim: boolean;
  readonly socket: string;
}

export function installPluginFiles(opts: PluginFilesOptions): InstalledFiles {
  const socket = checkSocketPath(opts.socket ?? DEFAULT_SOCKET);
  const shim = opts.nodeOnly ? undefined : nativeExecutablePath(SHIM_EXECUTABLE);
  const root = packageRoot();
  const dist = join(root, 'dist');
  if (!existsSync(join(dist, 'interpose-cni.js'))) throw new InterceptError(`${dist}/interpose-cni.js is missing: build the package (npm run build:ts)`);
  const target = join(opts.binDir, INSTALL_DIR);
  const fresh = `${target}.new-${process.pid}`;
  rmSync(fresh, { recursive: true, force: true });
  mkdirSync(join(fresh, 'dist'), { recursive: true });
  for (const f of bundleClosure(dist)) cpSync(join(dist, f), join(fresh, 'dist', f));
  // The addon, where native-loader looks for it relative to dist/: a local build or the prebuilds.
  for (const sub of ['native/package.json', 'native/build/Release', `native/prebuilds/${process.platform}-${process.arch}`]) {
    if (existsSync(join(root, sub))) cpSync(join(root, sub), join(fresh, sub), { recursive: true, filter: (src) => !src.endsWith('.o') && !src.includes('/obj.target') });
  }
  const require = createRequire(join(root, 'package.json'));
  for (const pkg of EXTERNAL_PACKAGES) cpSync(packageDir(require.resolve(pkg), pkg), join(fresh, 'node_modules', pkg), { recursive: true });
  writeFileSync(join(fresh, 'package.json'), `${JSON.stringify({ name: 'interpose', type: 'module', private: true })}\n`);
  if (opts.copyNode) cpSync(opts.copyNode, join(fresh, 'node'));
  writeFileSync(join(fresh, NODE_LAUNCHER), launcherText(opts, target), { mode: 0o755 });
  chmodSync(join(fresh, NODE_LAUNCHER), 0o755);
  writeFileSync(join(fresh, SOCKET_FILE), `${socket}\n`, { mode: 0o644 });
  const old = `${target}.old-${process.pid}`;
  if (existsSync(target)) renameSync(target, old);
  renameSync(fresh, target);
  rmSync(old, { recursive: true, force: true });

  const tmp = join(opts.binDir, `.${PLUGIN_TYPE}-${process.pid}.tmp`);
  if (shim) cpSync(shim, tmp);
  else writeFileSync(tmp, launcherText(opts, target), { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, join(opts.binDir, PLUGIN_TYPE));
  return { shim: shim !== undefined, socket };
}

function launcherText(opts: PluginFilesOptions, target: string): string {
  const node = opts.copyNode ? shellQuote(join(target, 'node')) : 'node';
  return (
    '#!/bin/sh\n' +
    '# interpose-cni as Node.js code, written by `interpose cni install`: the native shim runs this\n' +
    `# when the node daemon's socket is absent. The code is in ${INSTALL_DIR}/; \`interpose cni uninstall\` removes it.\n` +
    `exec ${node} ${shellQuote(join(target, 'dist', 'interpose-cni.js'))} "$@"\n`
  );
}

export function removePluginFiles(binDir: string): void {
  rmSync(join(binDir, PLUGIN_TYPE), { force: true });
  rmSync(join(binDir, INSTALL_DIR), { recursive: true, force: true });
  for (const n of readdirSync(binDir)) if (n.startsWith(`${INSTALL_DIR}.new-`) || n.startsWith(`${INSTALL_DIR}.old-`)) rmSync(join(binDir, n), { recursive: true, force: true });
}

/** The directory of package `name` holding `file` (a package's exports may hide its package.json from require.resolve). */
function packageDir(file: string, name: string): string {
  for (let dir = dirname(file); dirname(dir) !== dir; dir = dirname(dir)) {
    if (dir.endsWith(`/node_modules/${name}`)) return dir;
  }
  throw new InterceptError(`cannot find the directory of the package ${name} from ${file}`);
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
