import { DiscoveryError } from './discovery-error.js';

// Reading platform CLIs' JSON without trusting its shape: every miss becomes an error that
// names the command and the path, never an exception from deep inside a platform module.

/** Parses a CLI's JSON output, or says plainly which command printed something else. */
export function parseJsonOutput(stdout: string, what: string): unknown {
  try {
    return JSON.parse(stdout) as unknown;
  } catch (cause) {
    const shown = stdout.length > 120 ? `${stdout.slice(0, 120)}…` : stdout;
    throw new DiscoveryError(
      `${what} printed output that is not JSON: ${JSON.stringify(shown)}`,
      'run the command by hand to see what it says; an old CLI version or a wrapper script may print text instead',
      { cause },
    );
  }
}

/** Reads a nested field from parsed JSON without trusting its shape. */
export function field(value: unknown, ...path: Array<string | number>): unknown {
  let cur: unknown = value;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return cur;
}

/** Like field(), but an object must be there: malformed output is an error naming the path. */
export function requireObject(value: unknown, what: string, ...path: Array<string | number>): Record<string, unknown> {
  const v = field(value, ...path);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new DiscoveryError(
      `${what}: expected an object at ${path.length ? path.join('.') : 'the top level'}, found ${JSON.stringify(v) ?? 'nothing'}`,
      'the output is malformed or from an unsupported CLI version; run the command by hand to check',
    );
  }
  return v as Record<string, unknown>;
}
