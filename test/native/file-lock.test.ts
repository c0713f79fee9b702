/**
 * tryLockExclusive (flock LOCK_EX|LOCK_NB through the addon), which the namespace lock takes
 * before it falls back to waiting in flock(1): held per open file description, refused while
 * another description or another process holds it, errno for bad descriptors.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeError } from '../../src/errors/index.js';
import { tryLockExclusive } from '../../src/native.js';

function lockFile(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-file-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'lock');
}

test('one open file description holds the lock; another is refused until it is closed', (t) => {
  const file = lockFile(t);
  const a = openSync(file, 'a');
  const b = openSync(file, 'a');
  t.teardown(() => {
    for (const fd of [a, b]) {
      try {
        closeSync(fd);
      } catch {
        // already closed by the test
      }
    }
  });
  t.true(tryLockExclusive(a));
  t.true(tryLockExclusive(a), 'taking it again through the same description succeeds');
  t.false(tryLockExclusive(b));
  closeSync(a);
  t.true(tryLockExclusive(b));
});

test('a lock held by another process (flock(1)) is refused, and free once that process ends', async (t) => {
  const file = lockFile(t);
  // A process group of its own, so the teardown ends sleep too.
  const holder = spawn('flock', ['--exclusive', '--close', file, 'sleep', '30'], { stdio: 'ignore', detached: true });
  const killGroup = () => {
    try {
      process.kill(-holder.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  t.teardown(killGroup);
  // --close: sleep does not inherit the lock, so killing flock(1) drops it.
  // flock(1) creates and locks the file once it has started: wait until that is so (each probe's
  // description is closed, which drops a lock it took while flock(1) had not started yet).
  const heldElsewhere = () => {
    const probe = openSync(file, 'a');
    try {
      return !tryLockExclusive(probe);
    } finally {
      closeSync(probe);
    }
  };
  for (let i = 0; i < 500 && !heldElsewhere(); i++) await new Promise((r) => setTimeout(r, 10));
  const fd = openSync(file, 'a');
  t.teardown(() => closeSync(fd));
  t.false(tryLockExclusive(fd));
  killGroup();
  await new Promise((r) => holder.once('exit', r));
  // flock(1)'s child holds the locked description too until it has closed it (--close) or is
  // gone: SIGKILLed between fork and close, it may outlive flock(1) by a moment under load.
  const groupAlive = () => {
    try {
      process.kill(-holder.pid!, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 500 && groupAlive(); i++) await new Promise((r) => setTimeout(r, 10));
  t.false(groupAlive(), 'the holder and its child are gone');
  t.true(tryLockExclusive(fd));
});

test('bad descriptors: a NativeError with errno, or a TypeError before the addon', (t) => {
  const err = t.throws(() => tryLockExclusive(2 ** 30), { instanceOf: NativeError });
  t.is(err!.code, 'EBADF');
  t.regex(err!.syscall, /flock/);
  t.throws(() => tryLockExclusive(-1), { instanceOf: RangeError });
  t.throws(() => tryLockExclusive(1.5), { instanceOf: TypeError });
  t.throws(() => tryLockExclusive('3' as unknown as number), { instanceOf: TypeError });
});
