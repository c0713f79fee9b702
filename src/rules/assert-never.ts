/**
 * The default branch of an exhaustive switch over an IR union (matches, targets): the
 * compiler rejects the call while a case is missing, and the throw catches a node built
 * outside the types (JSON, a cast) at run time.
 */
export function assertNever(x: never): never {
  throw new Error(`unhandled IR node ${JSON.stringify(x)}`);
}
