/** The addon loader: a missing binary is an InterceptError that says how to build it. */
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const nativeTs = fileURLToPath(new URL('../../src/native.ts', import.meta.url));

test('a missing addon fails with a message naming the path and the build command', async (t) => {
  const script = `import(${JSON.stringify(nativeTs)}).then((m) => {
    try { new m.CidrTrie(); console.log('loaded'); }
    catch (e) { console.log(e.name + ' exit=' + e.exitCode + ': ' + e.message); }
  });`;
  const { stdout } = await execa(process.execPath, ['--import', 'tsx', '-e', script], {
    env: { INTERPOSE_NATIVE_ADDON: '/nonexistent/interpose_native.node' },
  });
  t.regex(stdout, /^InterceptError exit=1: native addon not found at \/nonexistent\/interpose_native\.node: build it with `npm run build:native`/);
});
