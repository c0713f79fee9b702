/**
 * The node daemon's side of the native shim: `interpose cni install --watch` serves CNI calls
 * on a unix socket (istio-cni's ambient plugin hands pod events to its node agent the same
 * way), so an ADD costs the shim's connect plus the plugin logic, not a Node.js start-up.
 * Each connection carries one request (daemon-frame.ts) and gets one answer from runPlugin,
 * the function the Node plugin runs. Calls for different containers run concurrently; calls
 * for one container in arrival order.
 *
 * The socket is root's alone: its directory is 0700 (created so, or refused when it is open
 * to others) and the socket 0600. A client is bounded: the request must be whole within
 * requestTimeoutMs and within the frame's size limits, or it gets a CNI error (when it still
 * listens) and is disconnected; nothing a client sends can throw out of this module.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { InterceptError } from '../errors/intercept-error.js';
import { ValidationError } from '../errors/validation-error.js';
import { CNI_ERROR, CniError } from './cni-error.js';
import { encodeAnswer, parseFrame } from './daemon-frame.js';
import { runPlugin, type PluginAnswer, type PluginCall } from './run-plugin.js';

export const DEFAULT_SOCKET = '/var/run/interpose/cni.sock';
/** sockaddr_un.sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** The path, when it can be a unix socket's the shim reads from its one-line file; else an error naming --socket. */
export function checkSocketPath(path: string): string {
  if (!path.startsWith('/') || Buffer.byteLength(path) > MAX_SOCKET_PATH || /[\n\0]/.test(path)) {
    throw new ValidationError('--socket', path, `an absolute path of at most ${MAX_SOCKET_PATH} bytes (a unix socket's limit)`);
  }
  return path;
}

export interface CniServerOptions {
  readonly socketPath: string;
  /** From connect to the last byte of the request. */
  readonly requestTimeoutMs: number;
  /** More at once are closed unanswered: their shims run the Node plugin instead. */
  readonly maxConnections: number;
  readonly log: (message: string) => void;
  /** The plugin (tests substitute a slow one). */
  readonly run?: (call: PluginCall) => Promise<PluginAnswer>;
}

export interface CniServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

/** The socket's directory: created 0700, or refused when group or others can enter it. */
function prepareDirectory(dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    return;
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw new InterceptError(`--socket: ${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    throw new InterceptError(`--socket: the directory ${dir} is mode ${(st.mode & 0o777).toString(8)} owned by uid ${st.uid}; it must be 0700 and this user's (anyone who can reach the socket can have rules written), or absent so it is created so`);
  }
}

/** A socket left by a daemon that died is removed; one a running daemon answers on is refused. */
async function clearStale(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new InterceptError(`--socket: ${path} exists and is not a socket; nothing was changed`);
  const live = await new Promise<boolean>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
  if (live) throw new InterceptError(`--socket: another daemon already serves ${path}`);
  unlinkSync(path);
}

export async function startCniServer(opts: CniServerOptions): Promise<CniServer> {
  const run = opts.run ?? runPlugin;
  checkSocketPath(opts.socketPath);
  prepareDirectory(dirname(opts.socketPath));
  await clearStale(opts.socketPath);
  // Per container: an ADD and the DEL that follows it never overlap.
  const queues = new Map<string, Promise<unknown>>();
  const serialized = <T>(key: string, job: () => Promise<T>): Promise<T> => {
    if (key === '') return job();
    const prev = queues.get(key) ?? Promise.resolve();
    const next = prev.then(job, job);
    const tail = next.catch(() => undefined);
    queues.set(key, tail);
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return next;
  };

  // Connections still reading their request: cut off at close (those being answered finish).
  const reading = new Set<Socket>();
  const inFlight = new Set<Promise<unknown>>();
  const serve = (socket: Socket) => {
    let buf = Buffer.alloc(0);
    let done = false;
    reading.add(socket);
    const answer = (a: PluginAnswer) => {
      if (!socket.destroyed) socket.end(encodeAnswer(a.exitCode, a.stdout));
    };
    const refuse = (err: CniError) => {
      done = true;
      reading.delete(socket);
      socket.pause();
      clearTimeout(timer);
      opts.log(`cni socket: refused a request: ${err.message}`);
      answer({ exitCode: 1, stdout: `${JSON.stringify(err.toResult('1.1.0'))}\n` });
      // A client that never reads the answer is not waited for.
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    const timer = setTimeout(() => {
      if (!done) refuse(new CniError(CNI_ERROR.decodingFailure, `the request was not complete within ${opts.requestTimeoutMs} ms`));
    }, opts.requestTimeoutMs);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(timer);
      reading.delete(socket);
    });
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      buf = Buffer.concat([buf, chunk]);
      let request;
      try {
        request = parseFrame(buf);
      } catch (err) {
        refuse(err instanceof CniError ? err : new CniError(CNI_ERROR.decodingFailure, String(err)));
        return;
      }
      if (!request) return;
      done = true;
      reading.delete(socket);
      clearTimeout(timer);
      const call = request;
      const job = serialized(call.env.CNI_CONTAINERID ?? '', () => run(call)).then(answer, (err: unknown) => {
        // runPlugin does not throw; a substitute might.
        answer({ exitCode: 1, stdout: `${JSON.stringify(new CniError(CNI_ERROR.rulesFailed, `internal error: ${(err as Error)?.message ?? String(err)}`).toResult('1.1.0'))}\n` });
      });
      inFlight.add(job);
      void job.finally(() => inFlight.delete(job));
    });
  };

  const server: Server = createServer({ allowHalfOpen: true }, serve);
  server.maxConnections = opts.maxConnections;
  server.on('error', (err) => opts.log(`cni socket: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(opts.socketPath, 0o600);
  const ino = statSync(opts.socketPath).ino;
  opts.log(`serving CNI calls on ${opts.socketPath}`);
  return {
    socketPath: opts.socketPath,
    close: async () => {
      // Stop accepting at once (a shim connecting from now on runs the Node plugin) and only
      // then remove the path — only our own socket: a successor may have bound a new one.
      server.close();
      try {
        if (lstatSync(opts.socketPath).ino === ino) unlinkSync(opts.socketPath);
      } catch {
        // already gone
      }
      for (const s of reading) s.destroy();
      // A call being answered finishes: an interrupted ADD would leave a half-applied namespace
      // for the runtime's retry to find (bounded: the plugin's own reads and applies time out).
      await Promise.all([...inFlight]);
    },
  };
}
