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

/**
 * A message part cut to a readable length: a value of thousands of CIDRs, or a 100 KB argument,
 * is named by its start and its length. The whole value is the user's; the message only has
 * to let them find it.
 */
export function shortened(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(20, max - 80))}… (${text.length} characters)`;
}

/**
 * One item of a user's value (a list entry, a key, a path) as a quoted message part: JSON quotes
 * show control characters instead of letting them move the terminal's cursor, and a long item is
 * shortened.
 */
export function quotedItem(item: string): string {
  return shortened(JSON.stringify(item));
}
