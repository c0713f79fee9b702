/**
 * The npm package as a user gets it: `npm pack` of this checkout (with the prebuilt addons
 * scripts/build-prebuilds.sh makes, as "prepack" does), installed into a fresh project from the
 * tarball, then used the three ways a user would: the CLI through npx, an ESM import of CidrTrie
 * doing a lookup (the native addon loading from the shipped prebuild), and a TypeScript
 * consumer type-checking against the shipped .d.ts files. A second test removes the prebuild
 * and checks that the package builds its addon from source with cmake-js.
 *
 * Dependencies come from the npm cache or registry; the package itself only from the tarball.
 */
import test, { type ExecutionContext } from 'ava';
import { execa, type Options } from 'execa';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
const version = manifest.version;
const devDependency = (name: string): string => manifest.devDependencies[name]!;
const tsc = join(repo, 'node_modules/.bin/tsc');
const arch = process.arch;

const skipReason =
  process.platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')
    ? `prebuilds are made for linux-x64/arm64, this is ${process.platform}-${arch}`
    : !existsSync(join(repo, 'dist/cli/main.js'))
      ? 'dist/ is not built (npm run build:ts)'
      : undefined;

/** Packs once per test file run: the prebuilds, then the tarball in its own directory. */
let packed: Promise<string> | undefined;
function pack(): Promise<string> {
  packed ??= (async () => {
    await execa('bash', ['scripts/build-prebuilds.sh'], { cwd: repo });
    const dir = mkdtempSync(join(tmpdir(), 'interpose-pack-'));
    // --ignore-scripts: prepack would rebuild the prebuilds just made, and prepare would rebuild
    // dist/ under the other tests that run from it.
    const { stdout } = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repo });
    const [info] = JSON.parse(stdout) as { filename: string }[];
    return join(dir, info!.filename);
  })();
  return packed;
}

/** One project with the tarball installed, made once per test file run: each test gets a copy. */
let installed: Promise<string> | undefined;
function install(): Promise<string> {
  installed ??= (async () => {
    const tarball = await pack();
    const dir = mkdtempSync(join(tmpdir(), 'interpose-installed-'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: dir });
    return dir;
  })();
  return installed;
}
test.after.always(async () => {
  for (const made of [await installed?.catch(() => undefined), await packed?.then(dirname, () => undefined)]) {
    if (made) rmSync(made, { recursive: true, force: true });
  }
});

/**
 * A fresh project with the tarball installed (a copy of the one install: what npm put there is
 * the same for both tests, and an install costs more than either test); deleted when the test ends.
 */
async function consumer(t: ExecutionContext): Promise<{ dir: string; pkg: string; run: (file: string, args: string[], o?: Options) => ReturnType<typeof execa> }> {
  const source = await install();
  const dir = mkdtempSync(join(tmpdir(), 'interpose-consumer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(source, dir, { recursive: true, verbatimSymlinks: true });
  const run = (file: string, args: string[], o: Options = {}) => execa(file, args, { cwd: dir, reject: false, ...o });
  return { dir, pkg: join(dir, 'node_modules/interpose'), run };
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const lookupScript = `import { CidrTrie } from 'interpose';
const trie = new CidrTrie();
trie.insert('192.0.2.0/24', 7);
trie.insert('2001:db8::/32', 9);
console.log(trie.lookup('192.0.2.55'), trie.lookup('2001:db8::1'), trie.lookup('198.51.100.1'));`;

const packageTest = skipReason ? test.skip : test.serial;
if (skipReason) console.log(`SKIP: package tests: ${skipReason}`);

packageTest('the packed tarball installs and works: npx interpose, ESM CidrTrie lookup, TypeScript types', async (t) => {
  t.timeout(15 * 60_000);
  const { dir, pkg, run } = await consumer(t);

  // What the tarball holds: a license, prebuilds for both arches, no maps, no VM-only scripts,
  // no local build (so the lookup below can only have used a prebuild).
  const files = walk(pkg).map((f) => f.slice(pkg.length + 1));
  t.true(files.includes('LICENSE'));
  t.regex(readFileSync(join(pkg, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004/);
  t.true(files.includes('native/prebuilds/linux-x64/interpose_native.napi.glibc.node'), 'linux-x64 prebuild shipped');
  t.true(files.includes('native/prebuilds/linux-arm64/interpose_native.napi.glibc.node'), 'linux-arm64 prebuild shipped');
  t.deepEqual(files.filter((f) => f.endsWith('.map')), []);
  t.deepEqual(files.filter((f) => /^scripts\/(provision-vm|vm-|install-system-deps)/.test(f)), []);
  t.false(existsSync(join(pkg, 'native/build')), 'no addon was built at install');

  // The install script finds the prebuild and builds nothing (npm 11 may not have run it).
  const install = await run('sh', [join(pkg, 'scripts/build-native-if-needed.sh')]);
  t.is(install.exitCode, 0, String(install.stderr));
  t.false(existsSync(join(pkg, 'native/build')), 'the install script built although a prebuild fits');

  const cli = await run('npx', ['--no-install', 'interpose', '--version']);
  t.is(cli.exitCode, 0, String(cli.stderr));
  t.is(String(cli.stdout).trim(), version);

  const lookup = await run(process.execPath, ['--input-type=module', '-e', lookupScript]);
  t.is(lookup.exitCode, 0, String(lookup.stderr));
  t.is(String(lookup.stdout).trim(), '7 9 undefined');

  // A strict NodeNext consumer with Node's types (the API takes net.Socket and Buffer): the types
  // resolve through "exports", and a wrong use is caught (so the check is not passing on `any`).
  await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--save-dev', `@types/node@${devDependency('@types/node')}`], { cwd: dir });
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true },
    files: ['consumer.ts'],
  }));
  writeFileSync(join(dir, 'consumer.ts'),
    "import { CidrTrie } from 'interpose';\nconst trie = new CidrTrie();\ntrie.insert('192.0.2.0/24', 7);\n" +
    "const hit: number | undefined = trie.lookup('192.0.2.1');\nexport const size: number = trie.size + (hit ?? 0);\n");
  const typecheck = await run(tsc, ['-p', '.']);
  t.is(typecheck.exitCode, 0, `${String(typecheck.stdout)}${String(typecheck.stderr)}`);

  writeFileSync(join(dir, 'consumer.ts'), "import { CidrTrie } from 'interpose';\nexport const wrong: string = new CidrTrie().lookup('192.0.2.1');\n");
  const wrong = await run(tsc, ['-p', '.']);
  t.is(wrong.exitCode, 2);
  t.regex(String(wrong.stdout), /consumer\.ts.*error TS2322: Type 'number \| undefined' is not assignable to type 'string'/);
});

packageTest('without a prebuild for this machine the package builds its addon from source with cmake-js', async (t) => {
  t.timeout(15 * 60_000);
  const { pkg, run } = await consumer(t);
  rmSync(join(pkg, `native/prebuilds/linux-${arch}`), { recursive: true });

  const before = await run(process.execPath, ['--input-type=module', '-e', lookupScript]);
  t.not(before.exitCode, 0);
  t.regex(String(before.stderr), /native addon not found .*scripts\/build-native-if-needed\.sh/s);

  const build = await run('sh', [join(pkg, 'scripts/build-native-if-needed.sh')]);
  t.is(build.exitCode, 0, String(build.stderr));
  t.regex(String(build.stderr), new RegExp(`no prebuilt native addon loads on linux-${arch}: building it from source with cmake-js`));
  t.true(existsSync(join(pkg, 'native/build/Release/interpose_native.node')));
  t.false(existsSync(join(pkg, 'native/node_modules')), 'the build-time tools were removed again');

  const after = await run(process.execPath, ['--input-type=module', '-e', lookupScript]);
  t.is(after.exitCode, 0, String(after.stderr));
  t.is(String(after.stdout).trim(), '7 9 undefined');
});
