/** The edges of a CIDR as address bytes, and stepping one address up or down (boundary probes). */
import type { Cidr } from '../../src/net/cidr.js';

/** The address one above or below, or undefined past either end of the family's space. */
export function stepBytes(bytes: readonly number[], delta: 1 | -1): number[] | undefined {
  const out = [...bytes];
  for (let i = out.length - 1; i >= 0; i--) {
    const v = out[i]! + delta;
    if (v >= 0 && v <= 255) {
      out[i] = v;
      return out;
    }
    out[i] = delta > 0 ? 0 : 255;
  }
  return undefined;
}

/** First and last address of the CIDR, and the ones just outside it (when they exist). */
export function boundaryBytes(c: Cidr): number[][] {
  const first = c.address.toByteArray();
  const last = [...first];
  const hostBits = (c.family === 4 ? 32 : 128) - c.prefixLength;
  for (let bit = 0; bit < hostBits; bit++) last[last.length - 1 - (bit >> 3)] |= 1 << (bit & 7);
  return [first, last, stepBytes(first, -1), stepBytes(last, 1)].filter((b): b is number[] => b !== undefined);
}
