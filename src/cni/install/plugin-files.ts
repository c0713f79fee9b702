/**
 * Puts the plugin into the CNI bin dir. interpose-cni is Node.js code, not one static binary
 * as istio-cni's is, so the bin dir gets two things:
 *
 *   <bin>/interpose-cni      a /bin/sh launcher the runtime executes: `exec NODE <bin>/interpose-cni.d/dist/interpose-cni.js`
 *   <bin>/interpose-cni.d/   the bundle's files the plugin loads (dist/interpose-cni.js and the
 *                            chunks it imports, found by following its imports), the native
 *                            addon, the one package the bundle leaves external (node-gyp-build),
 *                            and with --copy-node the node executable itself
 *
 * The launcher is written last and by rename(2), so a runtime executing the plugin mid-install
 * runs the old launcher or the new one, never a half-written one.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InterceptError } from '../../errors/intercept-error.js';
import { PLUGIN_TYPE } from './primary-conflist.js';

export const INSTALL_DIR = `${PLUGIN_TYPE}.d`;

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
}

export function installPluginFiles(opts: PluginFilesOptions): void {
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
  const old = `${target}.old-${process.pid}`;
  if (existsSync(target)) renameSync(target, old);
  renameSync(fresh, target);
  rmSync(old, { recursive: true, force: true });

  const node = opts.copyNode ? shellQuote(join(target, 'node')) : 'node';
  const launcher =
    '#!/bin/sh\n' +
    '# interpose-cni, written by `interpose cni install`: the CNI plugin is Node.js code in\n' +
    `# ${INSTALL_DIR}/ next to this file; \`interpose cni uninstall\` removes both.\n` +
    `exec ${node} ${shellQuote(join(target, 'dist', 'interpose-cni.js'))} "$@"\n`;
  const tmp = join(opts.binDir, `.${PLUGIN_TYPE}-${process.pid}.tmp`);
  writeFileSync(tmp, launcher, { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, join(opts.binDir, PLUGIN_TYPE));
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
