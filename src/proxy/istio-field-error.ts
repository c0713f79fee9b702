import { ValidationError } from '../errors/index.js';
import { valueText } from '../errors/value-text.js';

/**
 * A field of an Istio resource that cannot be used as written: unknown to Istio's schema,
 * required but missing, or valid Istio that interpose proxy does not implement. It is a
 * ValidationError (same exit code, same handling on reload), with a message that says what is
 * wrong with the field rather than "invalid value".
 */
export class IstioFieldError extends ValidationError {
  override name = 'IstioFieldError';

  constructor(
    /** `mesh.yaml: VirtualService default/reviews` */
    readonly resource: string,
    /** `spec.http[0].retries` */
    readonly path: string,
    value: unknown,
    /** What is wrong and what is accepted instead. */
    readonly problem: string,
  ) {
    super(`${resource} ${path}`, printable(value), problem);
    this.message = `${resource} ${path}: ${problem}${value === undefined ? '' : ` (value: ${quote(value)})`}`;
  }
}

/** The value itself when JSON can print it (YAML aliases can make cycles), else its text. */
export function printable(value: unknown): unknown {
  if (value === undefined) return undefined; // ValidationError prints it as "(not set)"
  try {
    JSON.stringify(value);
    return value;
  } catch {
    return valueText(value);
  }
}

function quote(value: unknown): string {
  const text = valueText(value);
  return text.length <= 120 ? text : `${text.slice(0, 80)}… (${text.length} characters)`;
}
