/**
 * The bytes the native shim (native/src/cni_shim/) and the node daemon (cni-server.ts) exchange
 * over the unix socket, one request and one answer per connection:
 *
 *   request  "ICNI" 0x01 | u32 env length | env: "KEY=VALUE\0"… | u32 stdin length | stdin
 *   answer   u32 exit code | u32 stdout length | stdout
 *
 * (u32 big-endian). Only the CNI_* variables a runtime sets travel; the daemon's own
 * environment decides everything else. Every length is checked against its limit before a
 * byte of what it announces is kept, so a hostile client costs at most the limits.
 */
import { CNI_ERROR, CniError } from './cni-error.js';
import { MAX_STDIN } from './run-plugin.js';

export const FRAME_MAGIC = Buffer.from('ICNI\x01', 'latin1');
/** CNI_ARGS is bounded at 16 KiB by cni-environment.ts; paths and ids are short. */
export const MAX_ENV = 64 * 1024;
export const FORWARDED_VARIABLES = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const;

export interface FrameRequest {
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
}

/**
 * Parses a request from what has arrived so far: undefined while it is incomplete, the request
 * once it is whole, a CniError as soon as the bytes cannot become one (wrong magic, a length
 * over its limit, an unknown or repeated variable, bytes after the end).
 */
export function parseFrame(buf: Buffer): FrameRequest | undefined {
  const head = FRAME_MAGIC.length;
  if (!FRAME_MAGIC.subarray(0, Math.min(buf.length, head)).equals(buf.subarray(0, Math.min(buf.length, head)))) {
    throw new CniError(CNI_ERROR.decodingFailure, 'the request does not start with the interpose-cni frame header (is the shim from another version?)');
  }
  if (buf.length < head + 4) return undefined;
  const envLength = buf.readUInt32BE(head);
  if (envLength > MAX_ENV) throw new CniError(CNI_ERROR.invalidEnvironment, `the request's environment is ${envLength} bytes; at most ${MAX_ENV} are accepted`);
  const stdinAt = head + 4 + envLength;
  if (buf.length < stdinAt + 4) return undefined;
  const stdinLength = buf.readUInt32BE(stdinAt);
  if (stdinLength > MAX_STDIN) throw new CniError(CNI_ERROR.decodingFailure, `the network configuration is ${stdinLength} bytes; at most ${MAX_STDIN} are accepted`);
  const end = stdinAt + 4 + stdinLength;
  if (buf.length < end) return undefined;
  if (buf.length > end) throw new CniError(CNI_ERROR.decodingFailure, 'the request has bytes after its end');
  return { env: parseEnv(buf.subarray(head + 4, stdinAt)), stdin: buf.subarray(stdinAt + 4, end).toString('utf8') };
}

function parseEnv(bytes: Buffer): Record<string, string> {
  const env: Record<string, string> = {};
  if (bytes.length === 0) return env;
  if (bytes[bytes.length - 1] !== 0) throw new CniError(CNI_ERROR.invalidEnvironment, "the request's environment does not end with a NUL");
  for (const entry of bytes.subarray(0, bytes.length - 1).toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq) : entry;
    if (!(FORWARDED_VARIABLES as readonly string[]).includes(key)) {
      throw new CniError(CNI_ERROR.invalidEnvironment, `the request's environment entry ${JSON.stringify(key.slice(0, 40))} is not one of ${FORWARDED_VARIABLES.join(', ')}`);
    }
    if (Object.hasOwn(env, key)) throw new CniError(CNI_ERROR.invalidEnvironment, `the request's environment names ${key} twice`);
    env[key] = entry.slice(eq + 1);
  }
  return env;
}

/** The request a shim sends (tests and the bench speak the protocol with it). */
export function encodeFrame(request: FrameRequest): Buffer {
  const env = Buffer.from(Object.entries(request.env).map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
  const stdin = Buffer.from(request.stdin, 'utf8');
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([FRAME_MAGIC, len(env.length), env, len(stdin.length), stdin]);
}

export function encodeAnswer(exitCode: number, stdout: string): Buffer {
  const body = Buffer.from(stdout, 'utf8');
  const head = Buffer.alloc(8);
  head.writeUInt32BE(exitCode >>> 0, 0);
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** An answer from its bytes, or undefined when they are not (yet) a whole one. */
export function decodeAnswer(buf: Buffer): { exitCode: number; stdout: string } | undefined {
  if (buf.length < 8) return undefined;
  const length = buf.readUInt32BE(4);
  if (buf.length < 8 + length) return undefined;
  return { exitCode: buf.readUInt32BE(0), stdout: buf.subarray(8, 8 + length).toString('utf8') };
}
