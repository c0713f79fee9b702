/**
 * Builds the plain C++ core and its test binaries (native/test/*.cc: the trie's differential
 * test, the HTTP fast path's parsers and loop over loopback, and, as root, the splice relay's
 * and the netlink code's) with AddressSanitizer +
 * UndefinedBehaviorSanitizer and runs them: exit 0 and no sanitizer report.
 * The build directory is native/build/sanitize (ignored by git, reused between runs).
 */
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { kernelTest } from '../helpers/kernel.js';

const nativeDir = fileURLToPath(new URL('../../native', import.meta.url));
const buildDir = `${nativeDir}/build/sanitize`;

test.serial('C++ core passes its differential test under ASan + UBSan', async (t) => {
  await execa('cmake', ['-S', nativeDir, '-B', buildDir, '-DINTERPOSE_SANITIZE_TESTS=ON', '-DCMAKE_BUILD_TYPE=Debug']);
  await execa('cmake', ['--build', buildDir, '--parallel', '2']);
  const seed = String((Date.now() % 2 ** 31) >>> 0);
  const run = await execa(`${buildDir}/core_test`, [seed, '80'], {
    reject: false,
    all: true,
    // Fail loudly on the first finding, and report leaks too.
    env: { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
  });
  t.log(`core_test seed ${seed}`);
  t.is(run.exitCode, 0, run.all);
  t.notRegex(run.all ?? '', /ERROR: AddressSanitizer|runtime error:|LeakSanitizer/);
  t.regex(run.all ?? '', /core_test ok/);
});

/** Builds one test binary of the sanitizer build and runs it; asserts a clean run ending in `<name> ok`. */
async function runSanitized(t: ExecutionContext, name: string, args: string[] = []): Promise<void> {
  // One build directory for all of them; the tests are serial so they never build it at once.
  await execa('cmake', ['-S', nativeDir, '-B', buildDir, '-DINTERPOSE_SANITIZE_TESTS=ON', '-DCMAKE_BUILD_TYPE=Debug']);
  await execa('cmake', ['--build', buildDir, '--parallel', '2', '--target', name]);
  const run = await execa(`${buildDir}/${name}`, args, {
    reject: false,
    all: true,
    env: { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
  });
  t.is(run.exitCode, 0, run.all);
  t.notRegex(run.all ?? '', /ERROR: AddressSanitizer|runtime error:|LeakSanitizer/);
  t.regex(run.all ?? '', new RegExp(`${name} ok`));
}

// Loopback only (no root): the parsers fuzzed with a fresh seed, then the loop on real sockets.
test.serial('the HTTP fast path passes its parser fuzzing and socket tests under ASan + UBSan', async (t) => {
  const seed = String((Date.now() % 2 ** 31) >>> 0);
  t.log(`http_fast_path_test seed ${seed}`);
  await runSanitized(t, 'http_fast_path_test', [seed]);
});

// Root only, both: each binary moves itself into a fresh network namespace (unshare), so nothing
// in the host's namespace — conntrack, NAT rules, sysctls — can change what it sees.
kernelTest('splice relay passes its socket tests under ASan + UBSan', (t) => runSanitized(t, 'relay_test'));
kernelTest('the netlink batch and dump code passes its kernel tests under ASan + UBSan', (t) => runSanitized(t, 'netlink_test'));
