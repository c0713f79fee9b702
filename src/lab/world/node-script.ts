/**
 * How to run one of interpose's own modules as a child process, both from the sources (tsx,
 * as in tests and `npx tsx src/cli/main.ts`) and from the built dist/ tree.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Root of the package (the directory holding package.json). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * argv (node, loader flags, file) running `relative` (a path from src/ or dist/ without
 * extension, e.g. "lab/world/stand-in-servers") the same way this module itself is running.
 */
export function nodeScriptArgv(relative: string): string[] {
  const fromSources = import.meta.url.endsWith('.ts');
  if (fromSources) {
    // The loader by its resolved URL: a bare `--import tsx` resolves from the child's working
    // directory, so it would work only when that is the package root.
    return [process.execPath, '--import', import.meta.resolve('tsx'), `${PACKAGE_ROOT}src/${relative}.ts`];
  }
  const js = `${PACKAGE_ROOT}dist/${relative}.js`;
  if (!existsSync(js)) throw new Error(`missing ${js}: run \`npm run build\``);
  return [process.execPath, js];
}
