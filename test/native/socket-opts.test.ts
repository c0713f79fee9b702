/**
 * setTransparent / setMark on real sockets: success with CAP_NET_ADMIN (EPERM without), typed
 * errors carrying errno for bad descriptors, validation before the addon.
 */
import test from 'ava';
import net from 'node:net';
import { openSync, closeSync } from 'node:fs';
import { isRoot } from '../helpers/kernel.js';
import { NativeError } from '../../src/errors/index.js';
import { setMark, setTransparent, socketFd } from '../../src/native.js';

async function listening(host: string): Promise<net.Server> {
  const server = net.createServer();
  server.listen(0, host);
  await new Promise((r) => server.once('listening', r));
  return server;
}

test('setTransparent and setMark succeed on TCP sockets as root, EPERM otherwise', async (t) => {
  const v4 = await listening('127.0.0.1');
  const v6 = await listening('::1');
  t.teardown(() => {
    v4.close();
    v6.close();
  });
  const fd4 = socketFd(v4);
  const fd6 = socketFd(v6);
  if (isRoot) {
    t.notThrows(() => setTransparent(fd4, 4));
    t.notThrows(() => setTransparent(fd6, 6));
    t.notThrows(() => setMark(fd4, 0x1337));
    t.notThrows(() => setMark(fd6, 0xffffffff));
  } else {
    t.is(t.throws(() => setMark(fd4, 1), { instanceOf: NativeError })!.code, 'EPERM');
    t.is(t.throws(() => setTransparent(fd4, 4), { instanceOf: NativeError })!.code, 'EPERM');
  }
  // IPV6_TRANSPARENT on an IPv4 socket is the wrong level for the kernel.
  const wrong = t.throws(() => setTransparent(fd4, 6), { instanceOf: NativeError });
  t.regex(wrong!.syscall, /IPV6_TRANSPARENT/);
});

test('setMark and setTransparent report errno for descriptors that are not sockets', (t) => {
  const bad = t.throws(() => setMark(2 ** 30, 1), { instanceOf: NativeError });
  t.is(bad!.code, 'EBADF');
  t.is(bad!.errno, 9);
  t.is(bad!.syscall, 'setsockopt(SO_MARK)');
  t.is(t.throws(() => setTransparent(2 ** 30, 4), { instanceOf: NativeError })!.code, 'EBADF');
  const file = openSync(new URL(import.meta.url), 'r');
  t.teardown(() => closeSync(file));
  t.is(t.throws(() => setMark(file, 1), { instanceOf: NativeError })!.code, 'ENOTSOCK');
});

test('setMark and setTransparent validate arguments before the addon', (t) => {
  t.throws(() => setMark(-1, 1), { instanceOf: RangeError, message: /fd -1/ });
  t.throws(() => setMark(3, -1), { instanceOf: RangeError, message: /mark -1/ });
  t.throws(() => setMark(3, 2 ** 32), { instanceOf: RangeError, message: /mark 4294967296.*0-4294967295/ });
  t.throws(() => setMark(3, 1.5), { instanceOf: RangeError, message: /mark 1.5/ });
  t.throws(() => setTransparent(3, 5 as 4), { instanceOf: RangeError, message: /family 5.*4 or 6/ });
  t.throws(() => setTransparent('3' as unknown as number, 4), { instanceOf: TypeError, message: /fd must be/ });
});
