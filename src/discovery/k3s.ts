import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileRefusedError, readBoundedFile } from '../config/bounded-file.js';
import { yamlDocument } from '../config/yaml-input.js';
import { findingsFrom } from './cidrs.js';
import { DiscoveryError } from './discovery-error.js';
import { flagValue, kubectlJson, listItems } from './kubectl.js';
import { field } from './json-output.js';
import { DISCOVERY_CONFIG_MAX_BYTES, type CidrFinding, type CidrRole, type DiscoveryOptions, type DiscoveryResult } from './types.js';

/** k3s's built-in defaults when no flag or config sets the ranges. */
export const K3S_DEFAULTS = { pod: '10.42.0.0/16', service: '10.43.0.0/16' } as const;

/** Where k3s reads its configuration file unless told otherwise. */
export const K3S_DEFAULT_CONFIG = '/etc/rancher/k3s/config.yaml';

const FLAGS: Record<CidrRole, string> = { pod: '--cluster-cidr', service: '--service-cidr' };

interface Found {
  value: string;
  source: string;
}

/**
 * k3s: the server's --cluster-cidr and --service-cidr, looked for in order in
 * (1) the k3s.io/node-args annotation k3s puts on server nodes (the server's argv as JSON),
 * (2) the k3s config file (cluster-cidr / service-cidr keys), (3) a local `k3s server` process's
 * command line. Whatever none of them sets is k3s's default (10.42.0.0/16 pods,
 * 10.43.0.0/16 services), and the result says so plainly.
 */
export async function discoverK3s(options: DiscoveryOptions): Promise<DiscoveryResult> {
  const notes: string[] = [];
  const found: Partial<Record<CidrRole, Found>> = {};
  const take = (role: CidrRole, value: string | undefined, source: string) => {
    if (value !== undefined && value !== '' && !found[role]) found[role] = { value, source };
  };

  // (1) The API: works against a remote k3s, as long as kubectl can reach it.
  try {
    const { json, cmd } = await kubectlJson(options, ['get', 'nodes']);
    for (const node of listItems(json, cmd)) {
      const raw = field(node, 'metadata', 'annotations', 'k3s.io/node-args');
      if (typeof raw !== 'string') continue;
      let argv: unknown;
      try {
        argv = JSON.parse(raw);
      } catch (cause) {
        throw new DiscoveryError(`${cmd}: annotation k3s.io/node-args is not a JSON list`, 'run the command by hand to check the node annotations', { cause });
      }
      if (!Array.isArray(argv) || argv[0] !== 'server') continue;
      const strings = argv.filter((a): a is string => typeof a === 'string');
      const name = String(field(node, 'metadata', 'name') ?? '?');
      for (const role of ['pod', 'service'] as const) {
        take(role, flagValue(strings, FLAGS[role]), `${cmd}: node ${name} annotation k3s.io/node-args ${FLAGS[role]}`);
      }
      break;
    }
  } catch (err) {
    if (!(err instanceof DiscoveryError)) throw err;
    notes.push(`could not read the node annotations (${err.message.split('\n')[0]}); trying local sources`);
  }

  // (2) The config file on this machine.
  const configPath = options.configFile ?? K3S_DEFAULT_CONFIG;
  const configText = readConfigFile(configPath);
  if (configText !== undefined) {
    let config: unknown;
    try {
      config = yamlDocument(configText);
    } catch (cause) {
      throw new DiscoveryError(`${configPath} is not valid YAML: ${(cause as Error).message}`, 'fix the file or pass another one with --config', { cause });
    }
    for (const role of ['pod', 'service'] as const) {
      const key = FLAGS[role].slice(2);
      const v = field(config, key);
      take(role, Array.isArray(v) ? v.join(',') : typeof v === 'string' ? v : undefined, `${configPath}: ${key}`);
    }
  } else if (options.configFile) {
    throw new DiscoveryError(`cannot read the k3s config ${configPath}`, 'check the path given to --config');
  }

  // (3) A k3s server running here.
  const server = await localK3sServer(options.procRoot ?? '/proc');
  if (server) {
    for (const role of ['pod', 'service'] as const) {
      take(role, flagValue(server.argv, FLAGS[role]), `${server.source} ${FLAGS[role]}`);
    }
  }

  const findings: CidrFinding[] = [];
  for (const role of ['pod', 'service'] as const) {
    const f = found[role];
    if (f) {
      findings.push(...findingsFrom(f.value, role, f.source));
    } else {
      findings.push(...findingsFrom(K3S_DEFAULTS[role], role, `k3s default (no ${FLAGS[role]} found)`, true));
      notes.push(`no ${FLAGS[role]} in the node annotations, ${configPath} or a local k3s server: assuming k3s's default ${K3S_DEFAULTS[role]}`);
    }
  }
  return { platform: 'k3s', findings, notes };
}

/** The argv of a `k3s server` process under procRoot, if one runs. */
async function localK3sServer(procRoot: string): Promise<{ argv: string[]; source: string } | undefined> {
  const entries = await readdir(procRoot).catch(() => [] as string[]);
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    const raw = await readFile(join(procRoot, pid, 'cmdline'), 'utf8').catch(() => undefined);
    if (!raw) continue;
    const argv = raw.split('\0').filter((a) => a !== '');
    if (argv.length >= 2 && /(^|\/)k3s$/.test(argv[0]!) && argv[1] === 'server') {
      return { argv, source: `process ${pid} (${join(procRoot, pid, 'cmdline')})` };
    }
  }
  return undefined;
}

/** The config file's text; undefined when it cannot be read (k3s runs fine without one). */
function readConfigFile(path: string): string | undefined {
  try {
    return readBoundedFile(path, DISCOVERY_CONFIG_MAX_BYTES);
  } catch (err) {
    if (err instanceof FileRefusedError) throw new DiscoveryError(`${path}: ${err.reason}`, 'pass the k3s config.yaml with --config');
    return undefined;
  }
}
