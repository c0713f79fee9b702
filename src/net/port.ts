/**
 * TCP/UDP port numbers, as flags, YAML fields and socket calls take them: the one check of
 * their range. Callers word their own errors (each names its flag or field).
 */

/** The highest port number. */
export const MAX_PORT = 65535;

/** True for an integer from `min` (1; 0 where 0 means "any" or "off") to 65535. */
export function isPort(n: unknown, min: 0 | 1 = 1): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= MAX_PORT;
}

/** A port written in decimal digits (as flags, env vars and YAML strings give it), or undefined. */
export function portFromText(text: string, min: 0 | 1 = 1): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return isPort(n, min) ? n : undefined;
}
