/**
 * Random hex strings for the trace ids Envoy adds (x-b3-traceid, x-b3-spanid), cut from a pool
 * filled 4 KiB at a time: one randomBytes() call per id costs a trip into OpenSSL on every
 * request. The ids sample nothing and authorise nothing; they only need to be unique.
 */
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(4096);
let offset = pool.length;

/** `bytes` random bytes as 2 × `bytes` lowercase hex digits. */
export function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const text = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return text;
}
