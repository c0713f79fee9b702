/**
 * Where a redirected connection was going: SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST through the
 * native addon (the REDIRECT target rewrites the destination, conntrack remembers it).
 */
import type { Socket } from 'node:net';
import { originalDst } from '../native.js';
import { unmapIPv4 } from './address-format.js';

export interface Endpoint {
  address: string;
  port: number;
}

/**
 * The original destination of a REDIRECTed connection, or undefined when the connection was
 * not redirected (someone connected to the listener directly).
 */
export function originalDestination(socket: Socket): Endpoint | undefined {
  try {
    const dst = originalDst(socket);
    return { address: unmapIPv4(dst.address), port: dst.port };
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}
