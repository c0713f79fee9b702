/**
 * DestinationRules, resolved per Envoy cluster (host, port, subset) as Istio builds clusters:
 * the rule whose host matches the destination (exact, else the longest wildcard), its top-level
 * trafficPolicy, replaced part by part (tls, connectionPool, outlierDetection, loadBalancer) by
 * the portLevelSettings for the service port, then by the subset's trafficPolicy and its own
 * portLevelSettings. Built with each Registry, so certificate files are read when the config is
 * loaded or reloaded: a missing file refuses the config, naming the field, instead of failing
 * every request later. Also refuses policies on ports where interpose could not honour them.
 */
import { ValidationError } from '../errors/index.js';
import { HostTable } from './host-table.js';
import { readPemFile } from './pem-file.js';
import type {
  ClientTls,
  ConnectionPool,
  DestinationRule,
  LoadBalancer,
  OutlierDetection,
  ProxyConfig,
  Subset,
  TopTrafficPolicy,
  TrafficPolicy,
} from './istio-types.js';

/** ClientTls with its files read. */
export interface LoadedTls {
  mode: 'SIMPLE' | 'MUTUAL';
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  sni?: string;
  subjectAltNames?: string[];
  insecureSkipVerify: boolean;
}

/** Everything a DestinationRule says about one cluster. */
export interface ClusterPolicy {
  /** Where the policy came from, for the operational log. */
  rule: string;
  tls?: LoadedTls;
  connectionPool?: ConnectionPool;
  outlierDetection?: OutlierDetection;
  loadBalancer?: LoadBalancer;
  /** Set when the destination names a subset: only endpoints carrying these labels. */
  subsetLabels?: Record<string, string>;
}

/** What a destination's DestinationRule says: a policy, nothing (no rule), or an unknown subset. */
export type PolicyLookup = { kind: 'policy'; policy: ClusterPolicy } | { kind: 'none' } | { kind: 'unknown-subset'; rule: string };

type Part = keyof TrafficPolicy;
const PARTS: readonly Part[] = ['tls', 'connectionPool', 'outlierDetection', 'loadBalancer'];

/** `base` with every part `over` sets replacing base's (Istio's MergeTrafficPolicy). */
function overlay(base: TrafficPolicy, over: TrafficPolicy | undefined): TrafficPolicy {
  if (!over) return base;
  const out: TrafficPolicy = { ...base };
  for (const part of PARTS) if (over[part] !== undefined) (out as Record<Part, unknown>)[part] = over[part];
  return out;
}

function effective(top: TopTrafficPolicy | undefined, subset: Subset | undefined, port: number): TrafficPolicy {
  let policy = overlay({}, top);
  policy = overlay(policy, top?.portLevelSettings.get(port));
  policy = overlay(policy, subset?.trafficPolicy);
  return overlay(policy, subset?.trafficPolicy?.portLevelSettings.get(port));
}

const resourceOf = (dr: DestinationRule) => `DestinationRule ${dr.namespace}/${dr.name}`;

export class DestinationPolicies {
  private readonly rules = new HostTable<DestinationRule>();
  private readonly loaded = new Map<ClientTls, LoadedTls>();

  constructor(config: ProxyConfig) {
    for (const dr of config.destinationRules) this.rules.add(dr.host, dr);
    for (const dr of config.destinationRules) {
      for (const tls of tlsSettings(dr)) {
        if (tls.mode !== 'DISABLE') this.loaded.set(tls, loadTls(tls, config.baseDir));
      }
    }
    this.checkPorts(config);
  }

  /** The policy for cluster (host, port, subset). */
  lookup(host: string, port: number, subsetName?: string): PolicyLookup {
    const dr = this.rules.lookup(host);
    if (!dr) return subsetName ? { kind: 'unknown-subset', rule: '(no DestinationRule)' } : { kind: 'none' };
    let subset: Subset | undefined;
    if (subsetName !== undefined) {
      subset = dr.subsets.find((s) => s.name === subsetName);
      if (!subset) return { kind: 'unknown-subset', rule: resourceOf(dr) };
    }
    const p = effective(dr.trafficPolicy, subset, port);
    const tls = p.tls && p.tls.mode !== 'DISABLE' ? this.loaded.get(p.tls) : undefined;
    const policy: ClusterPolicy = {
      rule: resourceOf(dr),
      ...(tls ? { tls } : {}),
      ...(p.connectionPool ? { connectionPool: p.connectionPool } : {}),
      ...(p.outlierDetection ? { outlierDetection: p.outlierDetection } : {}),
      ...(p.loadBalancer ? { loadBalancer: p.loadBalancer } : {}),
      ...(subset && Object.keys(subset.labels).length > 0 ? { subsetLabels: subset.labels } : {}),
    };
    return { kind: 'policy', policy };
  }

  /**
   * TLS origination, connection pools and outlier detection act in the HTTP/1 forward path
   * only: on a TCP, TLS or HTTP/2 port they would be ignored, so the config is refused.
   */
  private checkPorts(config: ProxyConfig): void {
    for (const entry of config.serviceEntries) {
      for (const host of entry.hosts) {
        const dr = this.rules.lookup(host);
        if (!dr) continue;
        for (const port of entry.ports) {
          if (port.protocol === 'HTTP') continue;
          for (const subset of [undefined, ...dr.subsets]) {
            const p = effective(dr.trafficPolicy, subset, port.number);
            const part = p.tls && p.tls.mode !== 'DISABLE' ? 'tls' : p.connectionPool ? 'connectionPool' : p.outlierDetection ? 'outlierDetection' : undefined;
            if (!part) continue;
            throw new ValidationError(
              `${resourceOf(dr)} ${part}${subset ? ` (subset ${subset.name})` : ''}`,
              `ServiceEntry ${entry.namespace}/${entry.name} port ${port.number} ${port.protocol}`,
              `a DestinationRule ${part} only for protocol HTTP ports (interpose proxy applies it to HTTP/1 requests; set it in portLevelSettings of the HTTP port)`,
            );
          }
        }
      }
    }
  }
}

/** Every `tls` a rule holds (top, per port, per subset). */
function tlsSettings(dr: DestinationRule): ClientTls[] {
  const policies: (TopTrafficPolicy | undefined)[] = [dr.trafficPolicy, ...dr.subsets.map((s) => s.trafficPolicy)];
  return policies.flatMap((tp) => (tp ? [tp.tls, ...[...tp.portLevelSettings.values()].map((p) => p.tls)] : [])).filter((t): t is ClientTls => t !== undefined);
}

function readPem(field: string, file: string, baseDir: string | undefined): Buffer {
  const pem = readPemFile(field, file, baseDir);
  if (!pem.includes('-----BEGIN ')) throw new ValidationError(field, file, 'a readable PEM file (no PEM block)');
  return pem;
}

function loadTls(tls: ClientTls, baseDir: string | undefined): LoadedTls {
  const file = (key: 'caCertificates' | 'clientCertificate' | 'privateKey') =>
    tls[key] !== undefined ? readPem(`${tls.field}.${key}`, tls[key]!, baseDir) : undefined;
  const ca = file('caCertificates');
  const cert = file('clientCertificate');
  const key = file('privateKey');
  return {
    mode: tls.mode as 'SIMPLE' | 'MUTUAL',
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(tls.sni ? { sni: tls.sni } : {}),
    ...(tls.subjectAltNames ? { subjectAltNames: tls.subjectAltNames } : {}),
    insecureSkipVerify: tls.insecureSkipVerify === true,
  };
}
