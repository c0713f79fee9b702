/**
 * Bundles the CLI for the package's bins. dist/interpose.js is src/cli/launcher.ts, which picks
 * one of two programs: dist/interpose-istio-iptables-main.js, the init container's command
 * bundled whole into one file (start-up is what every pod waits for: bench/startup.ts measures
 * it), or dist/interpose-main.js, every command, split into one chunk per command so each loads
 * only its own modules. dist/interpose-cni.js (the CNI plugin) shares the split build's chunks.
 *
 * The files sit directly in dist/ because modules that find the package from their own location
 * (src/native.ts: `new URL('..', import.meta.url)`) must keep their depth. `interpose lab` is not
 * bundled: its modules find the package three levels up and start dist/ scripts, so the bundle
 * imports the compiled dist/cli/lab.js. commander is bundled (as one file it loads several times
 * faster than its seven CommonJS modules); lab's compiled modules use the package's own copy, so
 * nothing may rely on the two sharing a class: src/cli/run-action.ts recognises a commander
 * error by its fields, not with instanceof.
 * Run after `tsc` (npm run build:ts does both).
 */
import { build } from 'esbuild';
import { chmodSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

for (const f of readdirSync(dist)) if (/^interpose(-.*)?\.js$/.test(f)) rmSync(join(dist, f));

const common = {
  outdir: dist,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Dependencies written as CommonJS (pino, prom-client …) call require(); give the bundle one.
  banner: { js: "import { createRequire as __interposeRequire } from 'node:module'; const require = __interposeRequire(import.meta.url);" },
  define: { INTERPOSE_VERSION: JSON.stringify(version) },
  logLevel: 'warning',
};

await build({ ...common, entryPoints: { interpose: join(root, 'src', 'cli', 'launcher.ts') } });
await build({ ...common, entryPoints: { 'interpose-istio-iptables-main': join(root, 'src', 'cli', 'istio-iptables-main.ts') } });
await build({
  ...common,
  // interpose-cni: the CNI plugin (src/cni/main.ts), a second bin a runtime runs on every pod ADD/DEL.
  entryPoints: { 'interpose-main': join(root, 'src', 'cli', 'main.ts'), 'interpose-cni': join(root, 'src', 'cni', 'main.ts') },
  chunkNames: 'interpose-[name]-[hash]',
  splitting: true,
  plugins: [
    {
      name: 'lab-stays-compiled',
      setup(b) {
        b.onResolve({ filter: /^\.\/lab\.js$/ }, (args) =>
          args.importer.endsWith(join('src', 'cli', 'commands.ts')) ? { path: './cli/lab.js', external: true } : undefined,
        );
      },
    },
  ],
});
// V8 keeps a source whose characters all fit in Latin-1 as one byte per character; a single
// "…" in a comment that esbuild keeps makes the whole file two bytes per character, slower to
// decode and scan on every start. Checked for the init container's file, where start-up counts.
const initBundle = readFileSync(join(dist, 'interpose-istio-iptables-main.js'), 'utf8');
const wide = initBundle.search(/[^\u0000-\u00ff]/u);
if (wide >= 0) {
  const line = initBundle.slice(0, wide).split('\n').length;
  throw new Error(`dist/interpose-istio-iptables-main.js:${line}: character U+${initBundle.codePointAt(wide).toString(16).toUpperCase()} is outside Latin-1; write it in ASCII in the source (scripts/bundle-cli.mjs says why)`);
}
chmodSync(join(dist, 'interpose.js'), 0o755);
chmodSync(join(dist, 'interpose-cni.js'), 0o755);
