/**
 * A CNI error result (CNI spec, "Error"): the code, a message and details, printed as JSON on
 * stdout with a non-zero exit. Codes 1–99 are the specification's own; 100 and up are ours.
 */
import { shortened } from '../errors/value-text.js';

export const CNI_ERROR = {
  /** The configuration's cniVersion is not one this plugin speaks. */
  incompatibleVersion: 1,
  /** A key in the network configuration this plugin does not know (message names it). */
  unsupportedField: 2,
  /** The container or its pod is unknown to the plugin or the API. */
  unknownContainer: 3,
  /** A required CNI_* environment variable is missing or malformed. */
  invalidEnvironment: 4,
  /** Reading or writing a file (state, log) failed. */
  ioFailure: 5,
  /** stdin is not the JSON a configuration must be. */
  decodingFailure: 6,
  /** The network configuration is well-formed JSON but its values are wrong. */
  invalidNetworkConfig: 7,
  /** Transient: the runtime may retry (the Kubernetes API could not be reached). */
  tryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD now. */
  pluginNotAvailable: 50,
  /** Ours: installing, removing or reading the pod's rules failed. */
  rulesFailed: 100,
  /** Ours: CHECK found the namespace's rules differ from what ADD installed. */
  rulesDiffer: 101,
  /** Ours: a pod annotation cannot be turned into rules (names the annotation). */
  badAnnotation: 102,
} as const;

export class CniError extends Error {
  override name = 'CniError';
  readonly details: string;

  constructor(
    readonly code: number,
    message: string,
    details = '',
    options?: { cause?: unknown },
  ) {
    // Bounded, whatever a message quotes: the runtime logs it, and a pipe answer must stay small.
    super(shortened(message, 4000), options);
    this.details = shortened(details, 16000);
  }

  /** The spec's error object; `cniVersion` is the configuration's (or the newest we speak). */
  toResult(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}
