import { getSystemErrorMap } from 'node:util';

/** `EEXIST (file already exists)` for 17: the code and libuv's description of a positive errno. */
export function errnoText(errno: number): string {
  const known = getSystemErrorMap().get(-errno);
  return known ? `${known[0]} (${known[1]})` : `errno ${errno}`;
}
