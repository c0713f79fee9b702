/**
 * Pod annotations → istio-iptables argv, the way Istio's sidecar injector builds istio-init's
 * arguments (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml):
 *
 *   -p 15001 -z 15006 -u 1337 -m MODE -i INCLUDE_RANGES -x EXCLUDE_RANGES -b INBOUND_PORTS
 *   -d 15090,15021,<excludeInboundPorts + status port> [-q …] [-o …] [-k …] [-c …]
 *
 * -i, -x, -b and -d are always present (with the mesh defaults when not annotated); -q, -o, -k
 * and -c only when annotated. Pure: no I/O.
 */
import { ValidationError } from '../errors/validation-error.js';
import { parseCidrList, parseInterfaceList, parsePortList } from './value-parsers.js';

/** The prefix whose keys istio-init reads; an unknown key under it is a typo we refuse. */
export const TRAFFIC_PREFIX = 'traffic.sidecar.istio.io/';

/** Every traffic.sidecar.istio.io annotation and the istio-iptables flag it becomes. */
export const TRAFFIC_ANNOTATION_FLAGS = {
  includeOutboundIPRanges: '-i',
  excludeOutboundIPRanges: '-x',
  includeInboundPorts: '-b',
  excludeInboundPorts: '-d',
  includeOutboundPorts: '-q',
  excludeOutboundPorts: '-o',
  kubevirtInterfaces: '-k',
  excludeInterfaces: '-c',
} as const;

export type TrafficAnnotation = keyof typeof TRAFFIC_ANNOTATION_FLAGS;

/** Other annotations that change istio-init's arguments. */
export const INTERCEPTION_MODE = 'sidecar.istio.io/interceptionMode';
export const STATUS_PORT = 'status.sidecar.istio.io/port';
/** Newer name for kubevirtInterfaces; the injector prefers it when both are set. */
export const REROUTE_VIRTUAL_INTERFACES = 'istio.io/reroute-virtual-interfaces';

/**
 * The mesh-wide values the injector falls back to (Istio's chart defaults:
 * global.proxy.includeIPRanges "*", includeInboundPorts "*", statusPort 15020, …).
 */
export interface InjectorDefaults {
  readonly proxyPort: string;
  readonly inboundCapturePort: string;
  readonly proxyUid: string;
  readonly interceptionMode: string;
  readonly includeIPRanges: string;
  readonly excludeIPRanges: string;
  readonly includeInboundPorts: string;
  readonly excludeInboundPorts: string;
  readonly includeOutboundPorts: string;
  readonly excludeOutboundPorts: string;
  readonly statusPort: string;
}

export const ISTIO_INJECTOR_DEFAULTS: InjectorDefaults = {
  proxyPort: '15001',
  inboundCapturePort: '15006',
  proxyUid: '1337',
  interceptionMode: 'REDIRECT',
  includeIPRanges: '*',
  excludeIPRanges: '',
  includeInboundPorts: '*',
  excludeInboundPorts: '',
  includeOutboundPorts: '',
  excludeOutboundPorts: '',
  statusPort: '15020',
};

/** Ports the injector always keeps out of inbound capture: Envoy's Prometheus and health ports. */
const ALWAYS_EXCLUDED_INBOUND = '15090,15021';

/** The argv, or why there is none. */
export interface AnnotationFlags {
  /** istio-iptables arguments (without the program name). Empty when interception is off. */
  readonly argv: readonly string[];
  /** Remarks for the user, e.g. that interceptionMode NONE means no init container. */
  readonly notes: readonly string[];
}

/**
 * Maps a pod's annotations to istio-init's arguments. Annotations outside the keys that
 * affect istio-init are ignored; an unknown traffic.sidecar.istio.io key, or a value the
 * injector's validation would reject, raises a ValidationError naming the annotation.
 */
export function annotationsToFlags(
  annotations: Readonly<Record<string, string>>,
  defaults: InjectorDefaults = ISTIO_INJECTOR_DEFAULTS,
): AnnotationFlags {
  const known = Object.keys(TRAFFIC_ANNOTATION_FLAGS);
  for (const key of Object.keys(annotations)) {
    if (key.startsWith(TRAFFIC_PREFIX) && !known.includes(key.slice(TRAFFIC_PREFIX.length))) {
      throw new ValidationError(
        `annotation ${key}`,
        annotations[key],
        `a known ${TRAFFIC_PREFIX} key: ${known.map((k) => TRAFFIC_PREFIX + k).join(', ')}`,
      );
    }
  }
  const traffic = (name: TrafficAnnotation): string | undefined => annotations[TRAFFIC_PREFIX + name];
  const get = (name: TrafficAnnotation, fallback: string) => traffic(name) ?? fallback;

  const mode = annotations[INTERCEPTION_MODE] ?? defaults.interceptionMode;
  if (!['REDIRECT', 'TPROXY', 'NONE'].includes(mode)) {
    throw new ValidationError(`annotation ${INTERCEPTION_MODE}`, mode, 'REDIRECT, TPROXY or NONE');
  }
  if (mode === 'NONE') {
    return { argv: [], notes: [`${INTERCEPTION_MODE}: NONE: the injector adds no istio-init container, so there are no flags`] };
  }

  const includeRanges = get('includeOutboundIPRanges', defaults.includeIPRanges);
  const excludeRanges = get('excludeOutboundIPRanges', defaults.excludeIPRanges);
  const inboundPorts = get('includeInboundPorts', defaults.includeInboundPorts);
  const excludeInbound = get('excludeInboundPorts', defaults.excludeInboundPorts);
  const statusPort = annotations[STATUS_PORT] ?? defaults.statusPort;

  checkRanges('includeOutboundIPRanges', includeRanges, true);
  checkRanges('excludeOutboundIPRanges', excludeRanges, false);
  checkPorts('includeInboundPorts', inboundPorts, true);
  checkPorts('excludeInboundPorts', excludeInbound, false);
  if (!/^\d{1,5}$/.test(statusPort.trim()) || Number(statusPort) > 65535) {
    throw new ValidationError(`annotation ${STATUS_PORT}`, statusPort, 'a port number from 0 (no status port) to 65535');
  }

  const excluded = withStatusPort(statusPort, excludeInbound);
  const argv: string[] = [
    '-p', defaults.proxyPort,
    '-z', defaults.inboundCapturePort,
    '-u', defaults.proxyUid,
    '-m', mode,
    '-i', includeRanges,
    '-x', excludeRanges,
    '-b', inboundPorts,
    '-d', excluded ? `${ALWAYS_EXCLUDED_INBOUND},${excluded}` : ALWAYS_EXCLUDED_INBOUND,
  ];

  // -q and -o appear only when annotated or set mesh-wide, as in the template.
  const outboundPorts = get('includeOutboundPorts', defaults.includeOutboundPorts);
  if (traffic('includeOutboundPorts') !== undefined || outboundPorts !== '') {
    checkPorts('includeOutboundPorts', outboundPorts, false);
    argv.push('-q', outboundPorts);
  }
  const excludeOutbound = get('excludeOutboundPorts', defaults.excludeOutboundPorts);
  if (traffic('excludeOutboundPorts') !== undefined || excludeOutbound !== '') {
    checkPorts('excludeOutboundPorts', excludeOutbound, false);
    argv.push('-o', excludeOutbound);
  }

  const notes: string[] = [];
  const reroute = annotations[REROUTE_VIRTUAL_INTERFACES];
  const kubevirt = traffic('kubevirtInterfaces');
  if (reroute !== undefined) {
    parseInterfaceList(reroute, `annotation ${REROUTE_VIRTUAL_INTERFACES}`);
    argv.push('-k', reroute);
    if (kubevirt !== undefined) notes.push(`${REROUTE_VIRTUAL_INTERFACES} wins over ${TRAFFIC_PREFIX}kubevirtInterfaces, as in the injector`);
  } else if (kubevirt !== undefined) {
    parseInterfaceList(kubevirt, `annotation ${TRAFFIC_PREFIX}kubevirtInterfaces`);
    argv.push('-k', kubevirt);
  }
  const excludeInterfaces = traffic('excludeInterfaces');
  if (excludeInterfaces !== undefined) {
    parseInterfaceList(excludeInterfaces, `annotation ${TRAFFIC_PREFIX}excludeInterfaces`);
    argv.push('-c', excludeInterfaces);
  }
  return { argv, notes };
}

/**
 * The injector's excludeInboundPort(): appends the status port to the excluded inbound ports
 * unless it is 0 or already there; blanks and spaces are dropped.
 */
export function withStatusPort(statusPort: string, excluded: string): string {
  const port = statusPort.trim();
  if (port === '' || port === '0') return excluded;
  const items = excluded.split(',');
  if (items.includes(port)) return excluded;
  return [...items.map((p) => p.trim()).filter((p) => p !== ''), port].join(',');
}

function checkRanges(name: TrafficAnnotation, value: string, starAllowed: boolean): void {
  if (starAllowed && value.trim() === '*') return;
  parseCidrList(value, `annotation ${TRAFFIC_PREFIX}${name}`);
}

function checkPorts(name: TrafficAnnotation, value: string, starAllowed: boolean): void {
  if (starAllowed && value.trim() === '*') return;
  parsePortList(value, `annotation ${TRAFFIC_PREFIX}${name}`);
}
