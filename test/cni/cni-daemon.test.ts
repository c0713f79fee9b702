/**
 * The node daemon's socket and the native shim: the wire format refuses what it must, the
 * server survives hostile clients (garbage, an endless request, a client that never sends)
 * without stalling anyone else, calls for different containers overlap while calls for one
 * container queue, the socket is root's alone, and the shim runs the Node plugin when no
 * daemon listens (absent socket, a stale one, a daemon that was stopped).
 */
import test, { type ExecutionContext, type Implementation } from 'ava';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCniServer, type CniServer } from '../../src/cni/cni-server.js';
import { decodeAnswer, encodeFrame, FRAME_MAGIC, MAX_ENV, parseFrame } from '../../src/cni/daemon-frame.js';
import { installPluginFiles } from '../../src/cni/install/plugin-files.js';
import { nativeExecutablePath } from '../../src/native-loader.js';
import { CniError } from '../../src/cni/cni-error.js';
import { CniDaemon } from './helpers/cni-daemon.js';
import { CniNetwork, cniSkipReason } from './helpers/cni-network.js';
import { INJECTED } from './helpers/kube-stand-in.js';

const shimBuilt = nativeExecutablePath('interpose-cni-shim') !== undefined;
const shimTest: (title: string, fn: Implementation<[]>) => void = shimBuilt ? test.serial : (title: string, fn: Implementation<[]>) => test.skip(`${title} (skipped: no native shim; npm run build:native)`, fn);
const cniSkip = cniSkipReason() ?? (shimBuilt ? undefined : 'no native shim; npm run build:native');
const cniTest: (title: string, fn: Implementation<[]>) => void = cniSkip ? (title: string, fn: Implementation<[]>) => test.skip(`${title} (skipped: ${cniSkip})`, fn) : test.serial;

const VERSION_CALL = { env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}' };

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-cni-daemon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Connects, sends `bytes` (if any), and resolves with everything received until the server closes. */
function exchange(path: string, bytes?: Buffer, keepSending?: { everyMs: number }): Promise<{ received: Buffer; ms: number }> {
  const start = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const c: Socket = createConnection(path);
    let timer: NodeJS.Timeout | undefined;
    c.on('connect', () => {
      if (bytes) c.write(bytes);
      if (keepSending) timer = setInterval(() => c.writable && c.write(Buffer.alloc(64, 0x41)), keepSending.everyMs);
    });
    c.on('data', (d) => chunks.push(d));
    c.on('error', () => undefined);
    c.on('close', () => {
      clearInterval(timer);
      resolve({ received: Buffer.concat(chunks), ms: performance.now() - start });
    });
  });
}

const errorOf = (received: Buffer) => {
  const a = decodeAnswer(received);
  return a ? { exitCode: a.exitCode, ...(JSON.parse(a.stdout) as { code: number; msg: string }) } : undefined;
};

test('the frame: a request survives any split; wrong magic, oversized lengths, foreign variables and trailing bytes are refused', (t) => {
  const frame = encodeFrame({ env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'K8S_POD_NAME=a=b;x' }, stdin: '{"cniVersion":"1.0.0","name":"ü"}' });
  for (let cut = 0; cut < frame.length; cut++) t.is(parseFrame(frame.subarray(0, cut)), undefined, `incomplete at ${cut}`);
  t.deepEqual(parseFrame(frame), { env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'K8S_POD_NAME=a=b;x' }, stdin: '{"cniVersion":"1.0.0","name":"ü"}' });

  const refused = (buf: Buffer, re: RegExp) => t.throws(() => parseFrame(buf), { instanceOf: CniError, message: re });
  refused(Buffer.from('GET / HTTP/1.1\r\n'), /frame header/);
  refused(Buffer.from('IC'.concat('X')), /frame header/);
  const u32 = (n: number) => Buffer.from([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  refused(Buffer.concat([FRAME_MAGIC, u32(MAX_ENV + 1)]), /environment is 65537 bytes/);
  refused(Buffer.concat([FRAME_MAGIC, u32(0), u32(0xffffffff)]), /network configuration is 4294967295 bytes/);
  refused(encodeFrame({ env: { LD_PRELOAD: '/x.so' }, stdin: '' }), /"LD_PRELOAD" is not one of CNI_COMMAND/);
  const twice = Buffer.from('CNI_COMMAND=ADD\0CNI_COMMAND=DEL\0');
  refused(Buffer.concat([FRAME_MAGIC, u32(twice.length), twice, u32(0)]), /names CNI_COMMAND twice/);
  refused(Buffer.concat([frame, Buffer.from('x')]), /bytes after its end/);
});

test('the socket is root\'s alone: directory 0700 and socket 0600; a directory open to others is refused naming --socket', async (t) => {
  const dir = scratch(t);
  const server = await startCniServer({ socketPath: join(dir, 'run', 'cni.sock'), requestTimeoutMs: 1000, maxConnections: 8, log: () => undefined });
  t.teardown(() => server.close());
  t.is(statSync(join(dir, 'run')).mode & 0o777, 0o700);
  t.is(statSync(server.socketPath).mode & 0o777, 0o600);
  // A second daemon on the same socket is refused; the first keeps serving.
  await t.throwsAsync(startCniServer({ socketPath: server.socketPath, requestTimeoutMs: 1000, maxConnections: 8, log: () => undefined }), { message: /another daemon already serves/ });
  t.is(errorOf((await exchange(server.socketPath, encodeFrame(VERSION_CALL))).received)?.exitCode, 0);

  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o755);
  await t.throwsAsync(startCniServer({ socketPath: join(open, 'cni.sock'), requestTimeoutMs: 1000, maxConnections: 8, log: () => undefined }), { message: /--socket: the directory .*open is mode 755 .* must be 0700/ });
  await t.throwsAsync(startCniServer({ socketPath: 'relative.sock', requestTimeoutMs: 1000, maxConnections: 8, log: () => undefined }), { message: /--socket: "relative\.sock"/ });
});

shimTest('hostile clients (garbage, an endless request, clients that never send) get errors or are cut off; the shim is answered meanwhile', async (t) => {
  const dir = scratch(t);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // Long enough that a daemon the silent clients stalled would keep the shim waiting that long.
  const timeoutMs = 3000;
  const logged: string[] = [];
  const server: CniServer = await startCniServer({ socketPath: join(dir, 'run', 'cni.sock'), requestTimeoutMs: timeoutMs, maxConnections: 256, log: (m) => logged.push(m) });
  t.teardown(() => server.close());
  installPluginFiles({ binDir: bin, socket: server.socketPath });

  // Fifty clients that connect and say nothing, held open while the others run.
  const silent = Array.from({ length: 50 }, () => exchange(server.socketPath));
  const garbage = exchange(server.socketPath, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  const huge = exchange(server.socketPath, Buffer.concat([FRAME_MAGIC, Buffer.from([0xff, 0xff, 0xff, 0xff])]));
  // A header announcing 1 MiB of configuration, then a trickle that would never end.
  const endless = exchange(server.socketPath, Buffer.concat([FRAME_MAGIC, Buffer.from([0, 0, 0, 0, 0, 16, 0, 0])]), { everyMs: 20 });
  const half = createConnection(server.socketPath, () => half.end(encodeFrame(VERSION_CALL).subarray(0, 7)));
  half.on('error', () => undefined);

  // The shim (the runtime's executable) is answered while the hostile clients still hold their
  // connections, not after they are cut off.
  const t0 = performance.now();
  const shim = await execa(join(bin, 'interpose-cni'), [], { input: VERSION_CALL.stdin, env: { CNI_COMMAND: 'VERSION', PATH: '/nonexistent' }, extendEnv: false, reject: false });
  const shimMs = performance.now() - t0;
  t.is(shim.exitCode, 0, String(shim.stdout) + String(shim.stderr));
  t.deepEqual(JSON.parse(String(shim.stdout)).supportedVersions, ['0.4.0', '1.0.0', '1.1.0']);
  t.true(shimMs < timeoutMs, `the shim waited ${shimMs.toFixed(0)} ms`);

  const g = errorOf((await garbage).received);
  t.is(g?.exitCode, 1);
  t.is(g?.code, 6);
  t.regex(String(g?.msg), /frame header/);
  t.is(errorOf((await huge).received)?.code, 4);
  const e = await endless;
  t.regex(String(errorOf(e.received)?.msg), new RegExp(`not complete within ${timeoutMs} ms`));
  t.true(e.ms < timeoutMs + 3000, `the endless client was cut off after ${e.ms.toFixed(0)} ms`);
  for (const s of await Promise.all(silent)) {
    t.is(errorOf(s.received)?.code, 6);
    t.true(s.ms < timeoutMs + 3000);
  }
  // Still serving, and it said why it refused each.
  t.is(errorOf((await exchange(server.socketPath, encodeFrame(VERSION_CALL))).received)?.exitCode, 0);
  t.true(logged.filter((l) => /refused a request/.test(l)).length >= 53, logged.join('\n'));
});

test('calls for different containers run concurrently; calls for one container in order', async (t) => {
  const dir = scratch(t);
  const order: string[] = [];
  const server = await startCniServer({
    socketPath: join(dir, 'run', 'cni.sock'),
    requestTimeoutMs: 1000,
    maxConnections: 16,
    log: () => undefined,
    run: async (call) => {
      order.push(`start ${call.env.CNI_CONTAINERID} ${call.env.CNI_COMMAND}`);
      await new Promise((r) => setTimeout(r, 300));
      order.push(`end ${call.env.CNI_CONTAINERID} ${call.env.CNI_COMMAND}`);
      if (call.env.CNI_COMMAND === 'DEL') throw new Error('boom');
      return { exitCode: 0, stdout: '{}\n' };
    },
  });
  t.teardown(() => server.close());
  const call = (id: string, command: string) => exchange(server.socketPath, encodeFrame({ env: { CNI_COMMAND: command, CNI_CONTAINERID: id }, stdin: '{}' }));
  const t0 = performance.now();
  const [a, b] = await Promise.all([call('a', 'ADD'), call('b', 'ADD')]);
  t.true(performance.now() - t0 < 580, 'a and b overlapped');
  t.is(decodeAnswer(a.received)?.exitCode, 0);
  t.is(decodeAnswer(b.received)?.exitCode, 0);
  order.length = 0;
  const [add, del] = await Promise.all([call('c', 'ADD'), call('c', 'DEL')]);
  t.deepEqual(order, ['start c ADD', 'end c ADD', 'start c DEL', 'end c DEL']);
  t.is(decodeAnswer(add.received)?.exitCode, 0);
  // A plugin that throws (runPlugin never does) is still an answer: a CNI error, not a crash.
  t.regex(decodeAnswer(del.received)!.stdout, /"code":100,"msg":"internal error: boom"/);
});

shimTest('the real daemon: garbage and a silent client neither crash nor stall it; stopped, the shim runs the Node plugin', async (t) => {
  const dir = scratch(t);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const daemon = await CniDaemon.start({ dir, binDir: bin, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  t.teardown(() => daemon.stop());
  const version = () => execa(join(bin, 'interpose-cni'), [], { input: VERSION_CALL.stdin, env: { CNI_COMMAND: 'VERSION' }, reject: false });
  const idle = createConnection(daemon.socket);
  idle.on('error', () => undefined);
  t.teardown(() => idle.destroy());
  const garbage = await exchange(daemon.socket, Buffer.alloc(200_000, 0xff));
  t.is(errorOf(garbage.received)?.code, 6);
  const t0 = performance.now();
  const r = await version();
  t.is(r.exitCode, 0, String(r.stdout));
  t.true(performance.now() - t0 < 5000);
  t.true(daemon.running);
  t.regex(daemon.output(), /serving CNI calls on .*cni\.sock/);

  await daemon.stop();
  t.false(existsSync(daemon.socket), 'a stopped daemon removes its socket');
  const fallback = await version();
  t.is(fallback.exitCode, 0, String(fallback.stderr));
  t.deepEqual(JSON.parse(String(fallback.stdout)).supportedVersions, ['0.4.0', '1.0.0', '1.1.0']);
});

shimTest('a daemon that takes the call and goes away without answering: the shim gives the Node plugin the configuration it read', async (t) => {
  const dir = scratch(t);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  mkdirSync(join(dir, 'run'), { mode: 0o700 });
  const socket = join(dir, 'run', 'cni.sock');
  let requests = 0;
  // Reads the whole request, then hangs up: a daemon killed mid-call.
  const dying = createServer((c) => {
    let buf = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (parseFrame(buf)) {
        requests++;
        c.destroy();
      }
    });
    c.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => dying.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => dying.close(() => resolve())));
  installPluginFiles({ binDir: bin, socket });
  const r = await execa(join(bin, 'interpose-cni'), [], { input: '{"cniVersion":"0.4.0"}', env: { CNI_COMMAND: 'VERSION' }, reject: false });
  t.is(requests, 1);
  t.is(r.exitCode, 0, String(r.stdout) + String(r.stderr));
  // The Node plugin saw the configuration the shim had already consumed from stdin.
  t.is(JSON.parse(String(r.stdout)).cniVersion, '0.4.0');
});

cniTest('fallback: with no daemon (socket absent, or stale with nothing listening) ADD, CHECK and DEL through the shim work as the Node plugin\'s', async (t) => {
  const net = await CniNetwork.create(t, { path: 'fallback' });
  net.api.addPod('shop', 'web', { annotations: INJECTED });
  const pod = await net.sandbox({ namespace: 'shop', name: 'web' });
  const add = await net.runtime.add(pod);
  t.true(add.ok, JSON.stringify(add.failed));
  t.regex(net.log(), /rules installed/);
  t.true((await net.runtime.check(pod)).ok);

  // A socket file nobody listens on (a daemon that died): connect is refused, the shim falls back.
  mkdirSync(join(net.dir, 'run'), { mode: 0o700 });
  await execa('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(join(net.dir, 'run', 'cni.sock'))})`]);
  t.true(statSync(join(net.dir, 'run', 'cni.sock')).isSocket());
  t.true((await net.runtime.check(pod)).ok);
  t.deepEqual(await net.runtime.del(pod), []);
  t.deepEqual(net.records(), []);
  t.regex(net.log(), /DEL started/);
  // Each call was its own Node process: several pids, none of them this test's.
  t.true(net.logPids().size >= 4, [...net.logPids()].join(' '));
});
