/**
 * A user-given value as text, for error messages, that never throws. JSON when JSON can print it;
 * otherwise String(), which itself throws for parsed input such as `{"toString": null}` (an own
 * property shadowing Object.prototype's) or an object without a prototype. Those are named by
 * their type instead: an error message must never become the error.
 */
export function valueText(value: unknown): string {
  if (value === undefined) return '(not set)';
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // a cycle (YAML aliases) or a bigint: fall through to String()
  }
  try {
    return String(value);
  } catch {
    return Array.isArray(value) ? '(a list)' : `(${typeof value})`;
  }
}
