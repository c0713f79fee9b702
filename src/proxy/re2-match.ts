/**
 * Regular expressions with Envoy's semantics: Istio's `regex` string matches become Envoy
 * `safe_regex` matchers, which are Google RE2 (linear time, no backreferences or lookaround)
 * and must match the whole value. JavaScript's RegExp backtracks, so a pattern like `(a+)+$`
 * could stall the proxy on a hostile header; RE2 itself, compiled to WebAssembly by Google
 * (npm `re2-wasm`, no native build), runs the pattern instead, so syntax and semantics are
 * Envoy's, and RE2-only syntax such as `(?i)` or `[[:alpha:]]` works as in Istio.
 *
 * The WebAssembly module takes a few hundred milliseconds to load and is loaded only when a
 * config has a regex. Compiled patterns are cached by text: RE2 objects live in the module's
 * memory, which JavaScript's garbage collector does not reclaim, so a reload that keeps its
 * patterns allocates nothing new.
 */
import { createRequire } from 'node:module';

export interface FullMatcher {
  test(value: string): boolean;
}

type Re2Class = new (pattern: string, flags: string) => FullMatcher;

let re2: Re2Class | undefined;
const compiled = new Map<string, FullMatcher>();

function re2Class(): Re2Class {
  // Loaded synchronously on first use: config parsing is synchronous.
  re2 ??= (createRequire(import.meta.url)('re2-wasm') as { RE2: Re2Class }).RE2;
  return re2;
}

/**
 * A matcher for `pattern` anchored at both ends, as Envoy's safe_regex matches. Throws
 * SyntaxError (with RE2's reason) for a pattern RE2 does not accept.
 */
export function fullMatchRegex(pattern: string): FullMatcher {
  const known = compiled.get(pattern);
  if (known) return known;
  const RE2 = re2Class();
  // Compiled alone first, so that "a)|(b" is refused instead of balancing the anchoring group.
  new RE2(pattern, 'u');
  const matcher = new RE2(`^(?:${pattern})$`, 'u');
  compiled.set(pattern, matcher);
  return matcher;
}
