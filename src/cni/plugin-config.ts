/**
 * The plugin's entry in the conflist, as the runtime hands it on stdin: the CNI specification's
 * own keys plus interpose-cni's (istio-cni's names). Any other key is refused naming it, and
 * so is a value of the wrong kind: a typo must not silently turn interception off.
 */
import { quotedItem } from '../errors/value-text.js';
import { CNI_ERROR, CniError } from './cni-error.js';

/** The specification versions this plugin speaks (VERSION reports them). */
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface PluginConfig {
  readonly cniVersion: string;
  readonly name: string;
  readonly type: string;
  readonly kubeconfig?: string;
  readonly logFile?: string;
  readonly logLevel: LogLevel;
  readonly excludeNamespaces: readonly string[];
  readonly nativeNftables: boolean;
  /** The previous plugin's result, passed through unchanged by ADD. */
  readonly prevResult?: unknown;
  /** runtimeConfig, where GC's cni.dev/valid-attachments arrive. */
  readonly runtimeConfig?: Readonly<Record<string, unknown>>;
}

const SPEC_KEYS = ['cniVersion', 'name', 'type', 'args', 'runtimeConfig', 'capabilities', 'prevResult', 'dns', 'ipam'];
const OWN_KEYS = ['kubeconfig', 'log_file', 'plugin_log_level', 'exclude_namespaces', 'native_nftables'];

/** istio-cni's default: the control plane's own namespace is never intercepted. */
export const DEFAULT_EXCLUDED_NAMESPACES = ['kube-system'];

/** The configuration's cniVersion where one can be read from broken input, for the error result. */
export function versionOf(parsed: unknown): string {
  const v = (parsed as { cniVersion?: unknown } | null)?.cniVersion;
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v) ? v : '1.1.0';
}

export function parsePluginConfig(text: string): PluginConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI_ERROR.decodingFailure, `the network configuration on stdin is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CniError(CNI_ERROR.decodingFailure, 'the network configuration on stdin must be a JSON object');
  }
  const o = parsed as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!SPEC_KEYS.includes(key) && !OWN_KEYS.includes(key)) {
      throw new CniError(
        CNI_ERROR.unsupportedField,
        `unsupported key ${quotedItem(key)} in the interpose-cni configuration: ${shorten(JSON.stringify(o[key]))}`,
        `accepted keys: ${[...OWN_KEYS, ...SPEC_KEYS].join(', ')}`,
      );
    }
  }
  const str = (key: string, required: boolean): string | undefined => {
    const v = o[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '') throw invalid(key, v, 'a non-empty string');
    return v;
  };
  const cniVersion = str('cniVersion', true)!;
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) {
    throw new CniError(CNI_ERROR.incompatibleVersion, `cniVersion ${quotedItem(cniVersion)} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const level = str('plugin_log_level', false) ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw invalid('plugin_log_level', level, LOG_LEVELS.join(', '));
  const exclude = o.exclude_namespaces ?? DEFAULT_EXCLUDED_NAMESPACES;
  if (!Array.isArray(exclude) || exclude.some((n) => typeof n !== 'string' || n === '')) {
    throw invalid('exclude_namespaces', exclude, 'a list of namespace names');
  }
  const nft = o.native_nftables ?? false;
  if (typeof nft !== 'boolean') throw invalid('native_nftables', nft, 'true or false');
  const runtimeConfig = o.runtimeConfig;
  if (runtimeConfig !== undefined && (typeof runtimeConfig !== 'object' || runtimeConfig === null || Array.isArray(runtimeConfig))) {
    throw invalid('runtimeConfig', runtimeConfig, 'an object');
  }
  const kubeconfig = str('kubeconfig', false);
  const logFile = str('log_file', false);
  return {
    cniVersion,
    name: str('name', true)!,
    type: str('type', true)!,
    ...(kubeconfig !== undefined ? { kubeconfig } : {}),
    ...(logFile !== undefined ? { logFile } : {}),
    logLevel: level as LogLevel,
    excludeNamespaces: exclude as string[],
    nativeNftables: nft,
    ...(o.prevResult !== undefined ? { prevResult: o.prevResult } : {}),
    ...(runtimeConfig !== undefined ? { runtimeConfig: runtimeConfig as Record<string, unknown> } : {}),
  };
}

function invalid(key: string, value: unknown, accepted: string): CniError {
  return new CniError(
    CNI_ERROR.invalidNetworkConfig,
    `invalid value for "${key}" in the interpose-cni configuration: ${shorten(JSON.stringify(value) ?? '(not set)')}: expected ${accepted}`,
  );
}

function shorten(s: string): string {
  return s.length <= 120 ? s : `${s.slice(0, 100)}… (${s.length} characters)`;
}
