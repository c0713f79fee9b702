/**
 * YAML (and JSON, which is YAML) from users, read into plain values the rest of the code can walk
 * without fear. The `yaml` package turns an alias inside the node it names (`a: &x [*x]`) into a
 * cyclic object, and every recursive walk of that (schema check, JSON quoting) overflowed the
 * stack; an alias bomb expands exponentially; nesting in the thousands overflows the parser.
 * Each is refused here, with the reason in words, so callers only wrap the reason in their own
 * error type (ValidationError, DiscoveryError, a CNI error).
 */
import { parseAllDocuments } from 'yaml';

/**
 * How many alias expansions one document may make (the `yaml` package's maxAliasCount, whose
 * default this is, set here so it is a decision): a "billion laughs" bomb grows exponentially
 * with each level. Real Istio and Kubernetes YAML uses few aliases or none.
 */
export const YAML_MAX_ALIASES = 100;

/** Deepest nesting accepted. Istio's deepest field is about 12 levels down. */
export const YAML_MAX_DEPTH = 64;

/** Why a document was refused: `reason` is the problem, `accepted` what would be taken instead. */
export class YamlInputError extends Error {
  override name = 'YamlInputError';
  constructor(
    /** 1-based index of the offending document. */
    readonly document: number,
    readonly reason: string,
    readonly accepted: string,
  ) {
    super(`document ${document}: ${reason}`);
  }
}

/**
 * Every document of `text` as plain JS values (null for an empty document). Throws
 * YamlInputError for a syntax error (its first line), an alias bomb, a recursive alias or
 * nesting deeper than YAML_MAX_DEPTH.
 */
export function yamlDocuments(text: string): unknown[] {
  const values: unknown[] = [];
  parseAllDocuments(text, { prettyErrors: true }).forEach((doc, i) => {
    const n = i + 1;
    const error = doc.errors[0];
    if (error) {
      // The parser itself recurses per level of flow nesting ([[[[…): its stack overflow is
      // reported as a syntax error at that point.
      if (/Maximum call stack size exceeded/.test(error.message)) throw new YamlInputError(n, 'nesting too deep for the parser', `YAML nested at most ${YAML_MAX_DEPTH} levels`);
      throw new YamlInputError(n, error.message.split('\n')[0]!, 'valid YAML');
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: YAML_MAX_ALIASES });
    } catch (err) {
      // A ReferenceError for an alias bomb or an alias whose anchor cannot be resolved.
      throw new YamlInputError(n, (err as Error).message.split('\n')[0]!, `YAML whose aliases expand at most ${YAML_MAX_ALIASES} times (an alias bomb is refused)`);
    }
    const problem = shapeProblem(value);
    if (problem) throw new YamlInputError(n, problem, `YAML without recursive aliases, nested at most ${YAML_MAX_DEPTH} levels`);
    values.push(value);
  });
  return values;
}

/** The one document of `text` (null when empty); more than one is an error. */
export function yamlDocument(text: string): unknown {
  const docs = yamlDocuments(text);
  if (docs.length > 1) throw new YamlInputError(2, `${docs.length} documents where one was expected`, 'a single YAML document');
  return docs[0] ?? null;
}

/**
 * A cycle or too deep a nesting, as a phrase, or undefined. Iterative, with the current path's
 * objects as the ancestor set: an object reached twice by different paths (a plain alias) is
 * fine, one reached from inside itself is a cycle.
 */
function shapeProblem(root: unknown): string | undefined {
  const onPath = new Set<object>();
  // Each frame: the object, its children still to visit.
  const stack: Array<{ node: object; children: unknown[] }> = [];
  const enter = (v: unknown): string | undefined => {
    if (v === null || typeof v !== 'object') return undefined;
    if (onPath.has(v)) return 'an alias refers to a node that contains it (a cycle)';
    if (stack.length >= YAML_MAX_DEPTH) return `nesting deeper than ${YAML_MAX_DEPTH} levels`;
    onPath.add(v);
    const children = v instanceof Map ? [...v.keys(), ...v.values()] : v instanceof Set ? [...v] : Array.isArray(v) ? [...v] : Object.values(v);
    stack.push({ node: v, children });
    return undefined;
  };
  let problem = enter(root);
  while (!problem && stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.children.length === 0) {
      onPath.delete(top.node);
      stack.pop();
      continue;
    }
    problem = enter(top.children.pop());
  }
  return problem;
}
