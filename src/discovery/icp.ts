import { FileRefusedError, readBoundedFile } from '../config/bounded-file.js';
import { yamlDocument } from '../config/yaml-input.js';
import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { DISCOVERY_CONFIG_MAX_BYTES, type CidrFinding, type DiscoveryOptions, type DiscoveryResult } from './types.js';

/** ICP's installer defaults, used when config.yaml leaves the keys commented out. */
const ICP_DEFAULTS = { network_cidr: '10.1.0.0/16', service_cluster_ip_range: '10.0.0.1/24' } as const;

/** The file ICP's installer reads, relative to the installation directory. */
export const ICP_DEFAULT_CONFIG = 'cluster/config.yaml';

/**
 * IBM Cloud Private: the installer's cluster/config.yaml (network_cidr for pods,
 * service_cluster_ip_range for services). ICP writes the service range with a host address
 * (10.0.0.1/24); it is normalised to its network (10.0.0.0/24), which matches the same addresses.
 */
export async function discoverIcp(options: DiscoveryOptions): Promise<DiscoveryResult> {
  const path = options.configFile ?? ICP_DEFAULT_CONFIG;
  let text: string;
  try {
    text = readBoundedFile(path, DISCOVERY_CONFIG_MAX_BYTES);
  } catch (cause) {
    throw new DiscoveryError(
      `cannot read the ICP configuration ${path}: ${cause instanceof FileRefusedError ? cause.reason : ((cause as NodeJS.ErrnoException).code ?? String(cause))}`,
      'run from the ICP installation directory or pass --config PATH/TO/cluster/config.yaml',
      { cause },
    );
  }
  let doc: unknown;
  try {
    doc = yamlDocument(text);
  } catch (cause) {
    throw new DiscoveryError(`${path} is not valid YAML: ${(cause as Error).message}`, 'fix the file or pass the right one with --config', { cause });
  }
  if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
    throw new DiscoveryError(`${path}: expected a YAML mapping of installer settings`, 'pass the ICP cluster/config.yaml with --config');
  }
  const config = (doc ?? {}) as Record<string, unknown>;
  const findings: CidrFinding[] = [];
  const notes: string[] = [];
  for (const [key, role] of [
    ['network_cidr', 'pod'],
    ['service_cluster_ip_range', 'service'],
  ] as const) {
    if (config[key] === undefined || config[key] === null) {
      findings.push(...findingsFrom(ICP_DEFAULTS[key], role, `ICP installer default for ${key} (not set in ${path})`, true));
      notes.push(`${key} is not set in ${path}: using ICP's default ${ICP_DEFAULTS[key]}`);
    } else {
      findings.push(...findingsFrom(config[key], role, `${path}: ${key}`));
    }
  }
  return { platform: 'icp', findings, notes };
}
