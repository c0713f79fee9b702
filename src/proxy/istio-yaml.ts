/**
 * Reads a multi-document Istio YAML file (as the seeds write it, unchanged) into a validated
 * ProxyConfig. Accepts the mesh setting in three shapes people already have at hand: a bare
 * `outboundTrafficPolicy:` document, an IstioOperator-style `meshConfig:`/`spec.meshConfig`,
 * and the `istio` ConfigMap whose `data.mesh` is itself YAML (those are not CRDs: read as
 * before). Each Istio resource is first checked against Istio's CRD schema (istio-schema.ts:
 * unknown fields are errors) and the field policy (istio-field-policy.ts: a field the proxy
 * does not implement is refused or, if it cannot change traffic, warned about), and only then
 * read. Errors name the resource (kind namespace/name) and field; unknown kinds are reported
 * in `ignored`, not rejected.
 */
import { dirname, resolve as resolvePath } from 'node:path';
import { FileRefusedError, formatBytes, readBoundedFile } from '../config/bounded-file.js';
import { yamlDocument, yamlDocuments, YamlInputError } from '../config/yaml-input.js';
import { ValidationError, valueText } from '../errors/index.js';
import { shortened } from '../errors/value-text.js';
import { parseCidr, isAddress, type Cidr } from '../net/cidr.js';
import { goDurationMs } from '../config/value-parsers.js';
import { isPort, portFromText } from '../net/port.js';
import { printable } from './istio-field-error.js';
import { applyFieldPolicy } from './istio-field-policy.js';
import { checkIstioSchema, ISTIO_KINDS } from './istio-schema.js';
import { fullMatchRegex } from './re2-match.js';
import { readHeaders } from './http-rewrite.js';
import { readRouteActions } from './http-route-actions.js';
import {
  MESH_GATEWAY,
  PORT_PROTOCOLS,
  RESOLUTIONS,
  LOAD_BALANCERS,
  type ClientTls,
  type DestinationRule,
  type GatewayServer,
  type Subset,
  type TopTrafficPolicy,
  type TrafficPolicy,
  type Gateway,
  type HttpMatch,
  type HttpRoute,
  type NamedMatch,
  type OutboundMode,
  type PortProtocol,
  type ProxyConfig,
  type RouteDestination,
  type ServiceEntry,
  type StringMatch,
  type TcpRoute,
  type TlsRoute,
  type VirtualService,
} from './istio-types.js';

const API_GROUP = 'networking.istio.io/';
const API_VERSIONS = ['v1alpha3', 'v1beta1', 'v1'];

type Obj = Record<string, unknown>;

/** Where a value sits, for error messages: `ServiceEntry "httpbin-ext" spec.ports[0].number`. */
class Path {
  constructor(
    readonly resource: string,
    readonly field: string,
  ) {}
  at(key: string | number): Path {
    const field = typeof key === 'number' ? `${this.field}[${key}]` : this.field ? `${this.field}.${key}` : key;
    return new Path(this.resource, field);
  }
  fail(value: unknown, accepted: string): never {
    throw new ValidationError(`${this.resource} ${this.field}`, printable(value), accepted);
  }
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, p: Path): Obj {
  if (!isObj(v)) p.fail(v, 'a mapping');
  return v;
}

function optObj(v: unknown, p: Path): Obj | undefined {
  return v === undefined || v === null ? undefined : obj(v, p);
}

function str(v: unknown, p: Path): string {
  if (typeof v !== 'string' || v === '') p.fail(v, 'a non-empty string');
  return v;
}

function optStr(v: unknown, p: Path): string | undefined {
  return v === undefined || v === null ? undefined : str(v, p);
}

function list(v: unknown, p: Path): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) p.fail(v, 'a list');
  return v;
}

function strList(v: unknown, p: Path): string[] {
  return list(v, p).map((item, i) => str(item, p.at(i)));
}

function port(v: unknown, p: Path): number {
  const n = typeof v === 'string' ? portFromText(v) : v;
  if (!isPort(n)) p.fail(v, 'a port number 1-65535');
  return n;
}

/** An address or CIDR, as Istio's destinationSubnets and sourceSubnet take them. */
function subnet(v: unknown, p: Path): Cidr {
  const cidr = typeof v === 'string' ? parseCidr(v) : undefined;
  return cidr ?? p.fail(v, 'an IP address or CIDR (192.0.2.0/24, 2001:db8::/32)');
}

/** destinationSubnets: undefined when absent or empty (an empty list matches everything). */
function optSubnets(v: unknown, p: Path): Cidr[] | undefined {
  if (v === undefined || v === null) return undefined;
  const cidrs = list(v, p).map((item, i) => subnet(item, p.at(i)));
  return cidrs.length > 0 ? cidrs : undefined;
}

function optPort(v: unknown, p: Path): number | undefined {
  return v === undefined || v === null ? undefined : port(v, p);
}

function oneOf<T extends string>(v: unknown, accepted: readonly T[], p: Path): T {
  if (typeof v !== 'string' || !(accepted as readonly string[]).includes(v.toUpperCase())) {
    p.fail(v, `one of ${accepted.join(', ')}`);
  }
  return v.toUpperCase() as T;
}

function hostName(v: unknown, p: Path): string {
  const h = str(v, p).toLowerCase();
  // Istio allows a leading "*." wildcard (or "*" alone) and plain DNS names.
  if (!/^(\*|(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$/.test(h)) {
    p.fail(v, 'a DNS name, optionally with a leading "*." wildcard');
  }
  return h;
}

/** Strips Istio's `namespace/` or `./` prefix from gateway and host references. */
function withoutNamespace(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash === -1 ? name : name.slice(slash + 1);
}

/**
 * The largest --config file read. A mesh's egress configuration is kilobytes; a 50 MB file
 * took 40 s and 1 GB to parse, during which the proxy served nothing (or, on reload, stalled).
 */
export const PROXY_CONFIG_MAX_BYTES = 8 * 1024 * 1024;

/** Reads FILE (a regular file, at most PROXY_CONFIG_MAX_BYTES); see parseProxyConfig. */
export function loadProxyConfig(file: string): ProxyConfig {
  let text: string;
  try {
    text = readBoundedFile(file, PROXY_CONFIG_MAX_BYTES);
  } catch (err) {
    const reason = err instanceof FileRefusedError ? err.reason : ((err as NodeJS.ErrnoException).code ?? String(err));
    throw new ValidationError('--config', file, `a readable file (${reason}): a regular file of at most ${formatBytes(PROXY_CONFIG_MAX_BYTES)}`);
  }
  return { ...parseProxyConfig(text, file), baseDir: dirname(resolvePath(file)) };
}

/** Parses multi-document YAML text into a validated ProxyConfig. */
export function parseProxyConfig(text: string, source = 'config'): ProxyConfig {
  const config: ProxyConfig = {
    mode: 'ALLOW_ANY',
    serviceEntries: [],
    virtualServices: [],
    destinationRules: [],
    gateways: [],
    ignored: [],
    warnings: [],
  };
  let values: unknown[];
  try {
    values = yamlDocuments(text);
  } catch (err) {
    if (!(err instanceof YamlInputError)) throw err;
    throw new ValidationError(`${source} document ${err.document}`, err.reason, err.accepted);
  }
  values.forEach((value, index) => {
    const where = `${source} document ${index + 1}`;
    if (value === null || value === undefined) return;
    if (!isObj(value)) new Path(where, '').fail(value, 'a mapping (an Istio resource or mesh config)');
    readDocument(value as Obj, where, config);
  });
  return config;
}

function readDocument(doc: Obj, where: string, config: ProxyConfig): void {
  const kind = doc['kind'];
  if (kind === undefined) {
    const mode = meshMode(doc, new Path(where, ''));
    if (mode) config.mode = mode;
    else config.ignored.push(`${where} (no kind and no outboundTrafficPolicy)`);
    return;
  }
  if (kind === 'ConfigMap' || kind === 'IstioOperator') {
    const mode = meshMode(doc, new Path(`${kind} ${JSON.stringify(metaName(doc))}`, ''));
    if (mode) config.mode = mode;
    else config.ignored.push(`${kind} ${JSON.stringify(metaName(doc))} (no outboundTrafficPolicy)`);
    return;
  }
  const istioKind = ISTIO_KINDS.find((k) => k === kind);
  if (!istioKind) {
    // A kind as written (AuthorizationPolicy), anything else as JSON; either shortened.
    const name = metaName(doc);
    const kindText = shortened(typeof kind === 'string' ? kind : valueText(kind));
    config.ignored.push(name === undefined ? `${kindText} (no metadata.name)` : `${kindText} ${shortened(JSON.stringify(name))}`);
    return;
  }
  const maybeName = metaName(doc);
  const meta0 = doc['metadata'];
  const ns0 = isObj(meta0) && typeof meta0['namespace'] === 'string' && meta0['namespace'] ? meta0['namespace'] : 'default';
  const p: Path = new Path(`${where.replace(/ document \d+$/, '')}: ${kind} ${ns0}/${maybeName ?? ''}`, '');
  const name: string = maybeName || p.at('metadata.name').fail(maybeName, 'a non-empty string');
  const apiVersion = doc['apiVersion'];
  if (
    typeof apiVersion !== 'string' ||
    !apiVersion.startsWith(API_GROUP) ||
    !API_VERSIONS.includes(apiVersion.slice(API_GROUP.length))
  ) {
    p.at('apiVersion').fail(apiVersion, API_VERSIONS.map((v) => API_GROUP + v).join(', '));
  }
  const fields = checkIstioSchema(doc, istioKind, (apiVersion as string).slice(API_GROUP.length), p.resource);
  const warning = applyFieldPolicy(istioKind, fields, p.resource);
  if (warning) config.warnings.push(warning);
  const meta = obj(doc['metadata'], p.at('metadata'));
  const namespace = optStr(meta['namespace'], p.at('metadata.namespace')) ?? 'default';
  const spec = obj(doc['spec'], p.at('spec'));
  const sp = p.at('spec');
  switch (kind) {
    case 'ServiceEntry':
      config.serviceEntries.push(readServiceEntry(spec, sp, name, namespace));
      break;
    case 'VirtualService':
      config.virtualServices.push(readVirtualService(spec, sp, name, namespace));
      break;
    case 'DestinationRule':
      config.destinationRules.push(readDestinationRule(spec, sp, name, namespace));
      break;
    case 'Gateway':
      config.gateways.push(readGateway(spec, sp, name, namespace));
      break;
  }
}

function metaName(doc: Obj): string | undefined {
  const meta = doc['metadata'];
  return isObj(meta) && typeof meta['name'] === 'string' ? meta['name'] : undefined;
}

/** Finds outboundTrafficPolicy.mode in any of the accepted mesh-config shapes. */
function meshMode(doc: Obj, p: Path): OutboundMode | undefined {
  const candidates: [unknown, Path][] = [
    [doc['outboundTrafficPolicy'], p.at('outboundTrafficPolicy')],
    [isObj(doc['meshConfig']) ? doc['meshConfig']['outboundTrafficPolicy'] : undefined, p.at('meshConfig.outboundTrafficPolicy')],
  ];
  const spec = doc['spec'];
  if (isObj(spec) && isObj(spec['meshConfig'])) {
    candidates.push([spec['meshConfig']['outboundTrafficPolicy'], p.at('spec.meshConfig.outboundTrafficPolicy')]);
  }
  const data = doc['data'];
  if (isObj(data) && typeof data['mesh'] === 'string') {
    let mesh: unknown;
    try {
      mesh = yamlDocument(data['mesh']);
    } catch (err) {
      if (!(err instanceof YamlInputError)) throw err;
      p.at('data.mesh').fail(err.reason, err.accepted);
    }
    if (isObj(mesh)) candidates.push([mesh['outboundTrafficPolicy'], p.at('data.mesh.outboundTrafficPolicy')]);
  }
  for (const [value, at] of candidates) {
    if (value === undefined || value === null) continue;
    const policy = obj(value, at);
    if (policy['mode'] === undefined) return 'ALLOW_ANY';
    return oneOf(policy['mode'], ['ALLOW_ANY', 'REGISTRY_ONLY'] as const, at.at('mode'));
  }
  return undefined;
}

function readServiceEntry(spec: Obj, p: Path, name: string, namespace: string): ServiceEntry {
  const hosts = strList(spec['hosts'], p.at('hosts')).map((h, i) => hostName(h, p.at('hosts').at(i)));
  if (hosts.length === 0) p.at('hosts').fail(spec['hosts'], 'at least one host');
  const addresses = strList(spec['addresses'], p.at('addresses'));
  addresses.forEach((a, i) => {
    if (!parseCidr(a)) p.at('addresses').at(i).fail(a, 'an IP address or CIDR');
  });
  const ports = list(spec['ports'], p.at('ports')).map((raw, i) => {
    const pp = p.at('ports').at(i);
    const o = obj(raw, pp);
    const targetPort = optPort(o['targetPort'], pp.at('targetPort'));
    return {
      number: port(o['number'], pp.at('number')),
      name: optStr(o['name'], pp.at('name')) ?? `port-${i}`,
      protocol: oneOf<PortProtocol>(o['protocol'] ?? 'TCP', PORT_PROTOCOLS, pp.at('protocol')),
      ...(targetPort !== undefined ? { targetPort } : {}),
    };
  });
  if (ports.length === 0) p.at('ports').fail(spec['ports'], 'at least one port');
  const resolution = oneOf(spec['resolution'] ?? 'NONE', RESOLUTIONS, p.at('resolution'));
  const location = oneOf(spec['location'] ?? 'MESH_EXTERNAL', ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const, p.at('location'));
  const endpoints = list(spec['endpoints'], p.at('endpoints')).map((raw, i) => {
    const ep = p.at('endpoints').at(i);
    const o = obj(raw, ep);
    const address = str(o['address'], ep.at('address'));
    if (resolution === 'STATIC' && !isAddress(address)) ep.at('address').fail(address, 'an IP address (resolution STATIC)');
    const portsObj = optObj(o['ports'], ep.at('ports'));
    // fromEntries defines own properties: a port named __proto__ is kept, not assigned to the prototype.
    const epPorts: Record<string, number> = Object.fromEntries(Object.entries(portsObj ?? {}).map(([k, v]) => [k, port(v, ep.at('ports').at(k))]));
    const labels = readLabels(o['labels'], ep.at('labels'));
    const weight = o['weight'] ?? undefined;
    if (weight !== undefined && (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > 0xffffffff)) {
      ep.at('weight').fail(weight, 'an integer 0-4294967295 (0 means 1)');
    }
    return {
      address,
      ...(portsObj ? { ports: epPorts } : {}),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(weight !== undefined ? { weight: weight as number } : {}),
    };
  });
  if (resolution === 'STATIC' && endpoints.length === 0) p.at('endpoints').fail([], 'at least one endpoint (resolution STATIC)');
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0) {
    hosts.forEach((h, i) => {
      if (h.startsWith('*')) p.at('hosts').at(i).fail(h, 'a non-wildcard host (resolution DNS without endpoints resolves the host itself)');
    });
  }
  return { kind: 'ServiceEntry', name, namespace, hosts, addresses, ports, resolution, location, endpoints };
}

function readStringMatch(v: unknown, p: Path): StringMatch | undefined {
  const o = optObj(v, p);
  if (!o) return undefined;
  const m: StringMatch = {};
  if (o['exact'] !== undefined) m.exact = str(o['exact'], p.at('exact'));
  if (o['prefix'] !== undefined) m.prefix = str(o['prefix'], p.at('prefix'));
  if (o['regex'] !== undefined) {
    m.regex = str(o['regex'], p.at('regex'));
    try {
      fullMatchRegex(m.regex);
    } catch (err) {
      p.at('regex').fail(m.regex, `an RE2 regular expression, as Envoy compiles it (${(err as Error).message.replace(/^.*: /, '')})`);
    }
  }
  if (Object.keys(m).length === 0) p.fail(v, 'one of exact, prefix, regex');
  return m;
}

/**
 * `headers`/`withoutHeaders`/`queryParams`: name → StringMatch. Istio turns `{}` and the
 * catch-all regexes "*" and ".*" into a presence check (no `match`).
 */
function readNamedMatches(v: unknown, p: Path, lowerCase: boolean): NamedMatch[] | undefined {
  const o = optObj(v, p);
  if (!o) return undefined;
  return Object.entries(o).map(([rawName, raw]) => {
    const np = p.at(rawName);
    if (rawName === '' || rawName.startsWith(':')) {
      np.fail(rawName, 'a header or parameter name (pseudo-headers such as ":path" are matched through uri, authority, method, scheme)');
    }
    const name = lowerCase ? rawName.toLowerCase() : rawName;
    const mo = optObj(raw, np);
    if (!mo || Object.keys(mo).length === 0 || mo['regex'] === '*' || mo['regex'] === '.*') return { name };
    return { name, match: readStringMatch(mo, np)! };
  });
}

function readDestinations(v: unknown, p: Path): RouteDestination[] {
  const raws = list(v, p);
  const routes = raws.map((raw, i) => {
    const rp = p.at(i);
    const o = obj(raw, rp);
    const d = obj(o['destination'], rp.at('destination'));
    const dp = rp.at('destination');
    const portObj = optObj(d['port'], dp.at('port'));
    const destPort = portObj ? port(portObj['number'], dp.at('port.number')) : undefined;
    const subset = optStr(d['subset'], dp.at('subset'));
    const weight = o['weight'] === undefined ? undefined : o['weight'];
    if (weight !== undefined && (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0)) {
      rp.at('weight').fail(weight, 'a non-negative integer');
    }
    return {
      destination: {
        host: hostName(d['host'], dp.at('host')),
        ...(destPort !== undefined ? { port: destPort } : {}),
        ...(subset !== undefined ? { subset } : {}),
      },
      weight: (weight as number | undefined) ?? (raws.length === 1 ? 100 : 0),
    };
  });
  if (routes.length === 0) p.fail(v, 'at least one route destination');
  // Istio: a lone destination without weight takes all traffic; several need weights.
  if (routes.length === 1 && routes[0]!.weight === 0) routes[0]!.weight = 100;
  if (routes.every((r) => r.weight === 0)) routes.forEach((r) => (r.weight = 1));
  return routes;
}

function gatewayRefs(v: unknown, p: Path): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  return strList(v, p).map(withoutNamespace);
}

function readVirtualService(spec: Obj, p: Path, name: string, namespace: string): VirtualService {
  const hosts = strList(spec['hosts'], p.at('hosts')).map((h, i) => hostName(withoutNamespace(h), p.at('hosts').at(i)));
  if (hosts.length === 0) p.at('hosts').fail(spec['hosts'], 'at least one host');
  const gateways = gatewayRefs(spec['gateways'], p.at('gateways')) ?? [MESH_GATEWAY];
  const http: HttpRoute[] = list(spec['http'], p.at('http')).map((raw, i) => {
    const hp = p.at('http').at(i);
    const o = obj(raw, hp);
    const match: HttpMatch[] = list(o['match'], hp.at('match')).map((m, j) => {
      const mp = hp.at('match').at(j);
      const mo = obj(m, mp);
      const out: HttpMatch = {};
      const uri = readStringMatch(mo['uri'], mp.at('uri'));
      if (uri) out.uri = uri;
      const authority = readStringMatch(mo['authority'], mp.at('authority'));
      if (authority) out.authority = authority;
      const method = readStringMatch(mo['method'], mp.at('method'));
      if (method) out.method = method;
      const scheme = readStringMatch(mo['scheme'], mp.at('scheme'));
      if (scheme) out.scheme = scheme;
      if (mo['ignoreUriCase'] === true) out.ignoreUriCase = true;
      const headers = readNamedMatches(mo['headers'], mp.at('headers'), true);
      if (headers) out.headers = headers;
      const withoutHeaders = readNamedMatches(mo['withoutHeaders'], mp.at('withoutHeaders'), true);
      if (withoutHeaders) out.withoutHeaders = withoutHeaders;
      const queryParams = readNamedMatches(mo['queryParams'], mp.at('queryParams'), false);
      if (queryParams) out.queryParams = queryParams;
      const mport = optPort(mo['port'], mp.at('port'));
      if (mport !== undefined) out.port = mport;
      const gws = gatewayRefs(mo['gateways'], mp.at('gateways'));
      if (gws) out.gateways = gws;
      return out;
    });
    let timeoutMs: number | undefined;
    if (o['timeout'] !== undefined) {
      const t = typeof o['timeout'] === 'string' ? goDurationMs(o['timeout']) : undefined;
      if (t === undefined) hp.at('timeout').fail(o['timeout'], 'a duration such as "3s" or "500ms"');
      timeoutMs = t;
    }
    const routeName = optStr(o['name'], hp.at('name'));
    const actions = readRouteActions(o, (field, value, accepted) => hp.at(field).fail(value, accepted));
    // With redirect or directResponse the proxy answers itself: no destination (Istio forbids both).
    const answersItself = actions.redirect !== undefined || actions.directResponse !== undefined;
    if (answersItself && o['route'] !== undefined) hp.at('route').fail(o['route'], 'no route next to redirect or directResponse');
    const route = answersItself ? [] : readDestinations(o['route'], hp.at('route'));
    (Array.isArray(o['route']) ? o['route'] : []).forEach((r: unknown, j) => {
      const h = isObj(r) ? r['headers'] : undefined;
      if (h !== undefined && route[j]) route[j]!.headers = readHeaders(h, 'headers', (field, value, accepted) => hp.at('route').at(j).at(field).fail(value, accepted));
    });
    return {
      ...(routeName ? { name: routeName } : {}),
      match,
      route,
      ...(timeoutMs !== undefined && timeoutMs > 0 ? { timeoutMs } : {}),
      ...actions,
    };
  });
  const tls: TlsRoute[] = list(spec['tls'], p.at('tls')).map((raw, i) => {
    const tp = p.at('tls').at(i);
    const o = obj(raw, tp);
    const match = list(o['match'], tp.at('match')).map((m, j) => {
      const mp = tp.at('match').at(j);
      const mo = obj(m, mp);
      const sniHosts = strList(mo['sniHosts'] ?? mo['sni_hosts'], mp.at('sniHosts')).map((h, k) =>
        hostName(h, mp.at('sniHosts').at(k)),
      );
      if (sniHosts.length === 0) mp.at('sniHosts').fail(mo['sniHosts'], 'at least one SNI host');
      const mport = optPort(mo['port'], mp.at('port'));
      const gws = gatewayRefs(mo['gateways'], mp.at('gateways'));
      const subnets = optSubnets(mo['destinationSubnets'], mp.at('destinationSubnets'));
      return { sniHosts, ...(mport !== undefined ? { port: mport } : {}), ...(gws ? { gateways: gws } : {}), ...(subnets ? { destinationSubnets: subnets } : {}) };
    });
    if (match.length === 0) tp.at('match').fail(o['match'], 'at least one match with sniHosts');
    return { match, route: readDestinations(o['route'], tp.at('route')) };
  });
  const tcp: TcpRoute[] = list(spec['tcp'], p.at('tcp')).map((raw, i) => {
    const tp = p.at('tcp').at(i);
    const o = obj(raw, tp);
    const match = list(o['match'], tp.at('match')).map((m, j) => {
      const mp = tp.at('match').at(j);
      const mo = obj(m, mp);
      const mport = optPort(mo['port'], mp.at('port'));
      const gws = gatewayRefs(mo['gateways'], mp.at('gateways'));
      const subnets = optSubnets(mo['destinationSubnets'], mp.at('destinationSubnets'));
      const source = mo['sourceSubnet'] === undefined ? undefined : subnet(mo['sourceSubnet'], mp.at('sourceSubnet'));
      return {
        ...(mport !== undefined ? { port: mport } : {}),
        ...(gws ? { gateways: gws } : {}),
        ...(subnets ? { destinationSubnets: subnets } : {}),
        ...(source ? { sourceSubnet: source } : {}),
      };
    });
    return { match, route: readDestinations(o['route'], tp.at('route')) };
  });
  return { kind: 'VirtualService', name, namespace, hosts, gateways, http, tls, tcp };
}

function readDestinationRule(spec: Obj, p: Path, name: string, namespace: string): DestinationRule {
  const host = hostName(spec['host'], p.at('host'));
  const trafficPolicy = readTopTrafficPolicy(spec['trafficPolicy'], p.at('trafficPolicy'));
  const subsets: Subset[] = list(spec['subsets'], p.at('subsets')).map((raw, i) => {
    const sp = p.at('subsets').at(i);
    const o = obj(raw, sp);
    const labels = readLabels(o['labels'], sp.at('labels'));
    const stp = readTopTrafficPolicy(o['trafficPolicy'], sp.at('trafficPolicy'));
    return { name: str(o['name'], sp.at('name')), labels, ...(stp ? { trafficPolicy: stp } : {}) };
  });
  const seen = new Set<string>();
  subsets.forEach((s, i) => {
    if (seen.has(s.name)) p.at('subsets').at(i).at('name').fail(s.name, 'a subset name not used before in this DestinationRule');
    seen.add(s.name);
  });
  return { kind: 'DestinationRule', name, namespace, host, ...(trafficPolicy ? { trafficPolicy } : {}), subsets };
}

function readLabels(v: unknown, p: Path): Record<string, string> {
  const entries = Object.entries(optObj(v, p) ?? {});
  for (const [k, val] of entries) if (typeof val !== 'string') p.at(k).fail(val, 'a string label value');
  // fromEntries defines own properties: a label named __proto__ is kept, not assigned to the prototype.
  return Object.fromEntries(entries) as Record<string, string>;
}

function readTopTrafficPolicy(v: unknown, p: Path): TopTrafficPolicy | undefined {
  const o = optObj(v, p);
  if (!o) return undefined;
  const portLevelSettings = new Map<number, TrafficPolicy>();
  list(o['portLevelSettings'], p.at('portLevelSettings')).forEach((raw, i) => {
    const pp = p.at('portLevelSettings').at(i);
    const po = obj(raw, pp);
    const portObj = obj(po['port'], pp.at('port'));
    const number = port(portObj['number'], pp.at('port.number'));
    // Istio keeps the first setting for a port and ignores later ones; saying so is better.
    if (portLevelSettings.has(number)) pp.at('port.number').fail(number, 'a port not already listed in portLevelSettings');
    portLevelSettings.set(number, readTrafficPolicy(po, pp));
  });
  return { ...readTrafficPolicy(o, p), portLevelSettings };
}

function readTrafficPolicy(o: Obj, p: Path): TrafficPolicy {
  const out: TrafficPolicy = {};
  const tls = optObj(o['tls'], p.at('tls'));
  if (tls) out.tls = readClientTls(tls, p.at('tls'));
  const pool = optObj(o['connectionPool'], p.at('connectionPool'));
  if (pool) {
    const cp = p.at('connectionPool');
    const tcp = optObj(pool['tcp'], cp.at('tcp')) ?? {};
    const http = optObj(pool['http'], cp.at('http')) ?? {};
    const count = (value: unknown, at: Path) => optCount(value, at);
    const maxConnections = count(tcp['maxConnections'], cp.at('tcp.maxConnections'));
    const http1MaxPendingRequests = count(http['http1MaxPendingRequests'], cp.at('http.http1MaxPendingRequests'));
    const maxRequestsPerConnection = count(http['maxRequestsPerConnection'], cp.at('http.maxRequestsPerConnection'));
    const connectTimeoutMs = optDuration(tcp['connectTimeout'], cp.at('tcp.connectTimeout'));
    const idleTimeoutMs = optDuration(http['idleTimeout'], cp.at('http.idleTimeout'));
    out.connectionPool = {
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
      ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
      // Istio: 0 means "not set" (Envoy's default, effectively unlimited) for these fields.
      ...(maxConnections ? { maxConnections } : {}),
      ...(http1MaxPendingRequests ? { http1MaxPendingRequests } : {}),
      ...(maxRequestsPerConnection ? { maxRequestsPerConnection } : {}),
    };
  }
  const od = optObj(o['outlierDetection'], p.at('outlierDetection'));
  if (od) {
    const op = p.at('outlierDetection');
    const c5 = optCount(od['consecutive5xxErrors'], op.at('consecutive5xxErrors'));
    const cg = optCount(od['consecutiveGatewayErrors'], op.at('consecutiveGatewayErrors'));
    const intervalMs = optDuration(od['interval'], op.at('interval'));
    const baseEjectionTimeMs = optDuration(od['baseEjectionTime'], op.at('baseEjectionTime'));
    const maxEjectionPercent = optCount(od['maxEjectionPercent'], op.at('maxEjectionPercent'));
    if (maxEjectionPercent !== undefined && maxEjectionPercent > 100) op.at('maxEjectionPercent').fail(maxEjectionPercent, 'a percentage 0-100');
    out.outlierDetection = {
      ...(c5 !== undefined ? { consecutive5xxErrors: c5 } : {}),
      ...(cg !== undefined ? { consecutiveGatewayErrors: cg } : {}),
      ...(intervalMs !== undefined ? { intervalMs } : {}),
      ...(baseEjectionTimeMs !== undefined ? { baseEjectionTimeMs } : {}),
      ...(maxEjectionPercent !== undefined ? { maxEjectionPercent } : {}),
    };
  }
  const lb = optObj(o['loadBalancer'], p.at('loadBalancer'));
  if (lb && lb['simple'] !== undefined) {
    const given = lb['simple'];
    const simple = typeof given === 'string' ? given.toUpperCase() : given;
    // LEAST_CONN is Istio's deprecated name for LEAST_REQUEST.
    out.loadBalancer = oneOf(simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : simple, LOAD_BALANCERS, p.at('loadBalancer.simple'));
  }
  return out;
}

function readClientTls(o: Obj, p: Path): ClientTls {
  const mode = oneOf(o['mode'] ?? 'DISABLE', ['DISABLE', 'SIMPLE', 'MUTUAL'] as const, p.at('mode'));
  const file = (key: string) => optStr(o[key], p.at(key));
  const tls: ClientTls = { mode, field: `${p.resource} ${p.field}` };
  const ca = file('caCertificates');
  const cert = file('clientCertificate');
  const key = file('privateKey');
  const sni = optStr(o['sni'], p.at('sni'));
  const sans = strList(o['subjectAltNames'], p.at('subjectAltNames'));
  if (ca) tls.caCertificates = ca;
  if (cert) tls.clientCertificate = cert;
  if (key) tls.privateKey = key;
  if (sni) tls.sni = sni;
  if (sans.length > 0) tls.subjectAltNames = sans;
  if (o['insecureSkipVerify'] === true) tls.insecureSkipVerify = true;
  if (mode === 'MUTUAL' && (!cert || !key)) {
    p.at(cert ? 'privateKey' : 'clientCertificate').fail(undefined, 'a file path (tls.mode MUTUAL needs clientCertificate and privateKey)');
  }
  if (mode !== 'MUTUAL' && (cert || key)) {
    p.at(cert ? 'clientCertificate' : 'privateKey').fail(cert ?? key, `nothing under tls.mode ${mode} (a client certificate is sent only with MUTUAL)`);
  }
  if (mode === 'DISABLE' && (ca || sni || sans.length > 0)) {
    p.at(ca ? 'caCertificates' : sni ? 'sni' : 'subjectAltNames').fail(ca ?? sni ?? sans, 'nothing under tls.mode DISABLE (no TLS is spoken)');
  }
  return tls;
}

function optCount(v: unknown, p: Path): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) p.fail(v, 'a non-negative integer');
  return v;
}

function optDuration(v: unknown, p: Path): number | undefined {
  if (v === undefined || v === null) return undefined;
  const ms = typeof v === 'string' ? goDurationMs(v) : undefined;
  if (ms === undefined || ms <= 0) p.fail(v, 'a positive duration such as "10s" or "500ms"');
  return ms;
}

function readGateway(spec: Obj, p: Path, name: string, namespace: string): Gateway {
  const servers = list(spec['servers'], p.at('servers')).map((raw, i) => {
    const sp = p.at('servers').at(i);
    const o = obj(raw, sp);
    const po = obj(o['port'], sp.at('port'));
    const protocol = oneOf<PortProtocol>(po['protocol'], PORT_PROTOCOLS, sp.at('port.protocol'));
    const hosts = strList(o['hosts'], sp.at('hosts')).map((h, k) => hostName(withoutNamespace(h), sp.at('hosts').at(k)));
    if (hosts.length === 0) sp.at('hosts').fail(o['hosts'], 'at least one host');
    const tlsObj = optObj(o['tls'], sp.at('tls'));
    const tlsMode = tlsObj?.['mode'] !== undefined
      ? oneOf(tlsObj['mode'], ['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL'] as const, sp.at('tls.mode'))
      : undefined;
    if ((protocol === 'TLS' || protocol === 'HTTPS') && tlsMode !== 'PASSTHROUGH' && !(protocol === 'HTTPS' && tlsMode === 'SIMPLE')) {
      // Passthrough relays TLS; SIMPLE terminates it (HTTPS servers only: behind it is HTTP routing).
      sp.at('tls.mode').fail(tlsObj?.['mode'], protocol === 'HTTPS' ? 'PASSTHROUGH or SIMPLE' : 'PASSTHROUGH (protocol TLS; terminating TLS needs protocol HTTPS)');
    }
    if (tlsMode === 'SIMPLE' && !(protocol === 'HTTPS')) sp.at('tls.mode').fail(tlsMode, 'PASSTHROUGH, or SIMPLE on an HTTPS server');
    let credential: GatewayServer['credential'];
    if (tlsMode === 'SIMPLE') {
      const tp = sp.at('tls');
      const credentialName = optStr(tlsObj!['credentialName'], tp.at('credentialName'));
      const cert = optStr(tlsObj!['serverCertificate'], tp.at('serverCertificate'));
      const key = optStr(tlsObj!['privateKey'], tp.at('privateKey'));
      if (credentialName && (cert || key)) tp.at('credentialName').fail(credentialName, 'either credentialName or serverCertificate/privateKey, not both');
      if (credentialName) {
        credential = { certFile: `${credentialName}/tls.crt`, keyFile: `${credentialName}/tls.key`, field: `${tp.resource} ${tp.field}.credentialName` };
      } else if (cert && key) {
        credential = { certFile: cert, keyFile: key, field: `${tp.resource} ${tp.field}.serverCertificate` };
      } else {
        tp.at(cert ? 'privateKey' : 'credentialName').fail(undefined, 'credentialName (a directory with tls.crt and tls.key) or serverCertificate and privateKey (tls.mode SIMPLE)');
      }
    }
    return {
      port: { number: port(po['number'], sp.at('port.number')), name: optStr(po['name'], sp.at('port.name')) ?? `port-${i}`, protocol },
      hosts,
      ...(tlsMode ? { tlsMode } : {}),
      ...(credential ? { credential } : {}),
    };
  });
  if (servers.length === 0) p.at('servers').fail(spec['servers'], 'at least one server');
  return { kind: 'Gateway', name, namespace, servers };
}
