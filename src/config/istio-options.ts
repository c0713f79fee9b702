/**
 * istio-iptables settings (flags + environment) → a validated InterceptConfig and RunOptions.
 * Every value is checked before anything runs; the first bad one raises a ValidationError
 * naming the flag or variable, the value and what is accepted.
 */
import { ValidationError } from '../errors/validation-error.js';
import { quotedItem } from '../errors/value-text.js';
import { parseCidr } from '../net/cidr.js';
import type {
  InboundPorts,
  InterceptConfig,
  InterceptionMode,
  IptablesBinaryChoice,
  OwnerGroupFilter,
  RunOptions,
} from './intercept-config.js';
import type { RawSetting, RawSettings } from './istio-flags.js';
import { checkNetworkNamespace } from './network-namespace.js';
import { nameserversFromResolvConf } from './resolv-conf.js';
import type { SystemLookups } from './system-lookups.js';
import {
  parseBool,
  parseCidrList,
  parseDurationMs,
  parseInterfaceList,
  parsePort,
  parsePortList,
  parseUint32,
  splitList,
} from './value-parsers.js';

/** Used when neither --proxy-uid nor the $ENVOY_USER user exists, as in istio. */
export const DEFAULT_PROXY_UID = 1337;

export interface IstioOptions {
  readonly config: InterceptConfig;
  readonly run: RunOptions;
  /** Non-fatal remarks worth printing (e.g. an ignored env var). */
  readonly warnings: readonly string[];
}

export async function buildIstioOptions(settings: RawSettings, system: SystemLookups): Promise<IstioOptions> {
  const get = (long: string): RawSetting => {
    const s = settings.get(long);
    if (!s) throw new Error(`no setting ${long}`);
    return s;
  };
  const str = (long: string) => get(long).value;
  const bool = (long: string) => parseBool(get(long).value, get(long).source);
  const warnings: string[] = [];

  const port = (long: string) => parsePort(str(long), get(long).source);
  const proxyPort = port('envoy-port');
  const inboundCapturePort = port('inbound-capture-port');
  const inboundTunnelPort = port('inbound-tunnel-port');
  const probePort = port('iptables-probe-port');

  const modeSetting = get('istio-inbound-interception-mode');
  const modeText = modeSetting.value === '' ? 'REDIRECT' : modeSetting.value;
  if (modeText !== 'REDIRECT' && modeText !== 'TPROXY') {
    throw new ValidationError(modeSetting.source, modeSetting.value, 'REDIRECT or TPROXY');
  }
  const interceptionMode: InterceptionMode = modeText;

  const inboundSetting = get('istio-inbound-ports');
  const inboundPorts: InboundPorts =
    inboundSetting.value.trim() === '*'
      ? { kind: 'all' }
      : splitList(inboundSetting.value).length === 0
        ? { kind: 'none' }
        : { kind: 'list', ports: parsePortList(inboundSetting.value, inboundSetting.source) };
  const portList = (long: string) => parsePortList(str(long), get(long).source);
  const inboundPortsExclude = portList('istio-local-exclude-ports');
  const outboundPortsInclude = portList('istio-outbound-ports');
  const outboundPortsExclude = portList('istio-local-outbound-ports-exclude');

  const includeSetting = get('istio-service-cidr');
  const wildcard = includeSetting.value.trim() === '*';
  const outboundInclude = {
    wildcard,
    cidrs: wildcard ? [] : parseCidrList(includeSetting.value, includeSetting.source),
  };
  const excludeSetting = get('istio-service-exclude-cidr');
  if (excludeSetting.value.trim() === '*') {
    throw new ValidationError(excludeSetting.source, excludeSetting.value, 'a list of CIDRs ("*" is not allowed here)');
  }
  const outboundExclude = parseCidrList(excludeSetting.value, excludeSetting.source);

  const ifaces = (long: string) => parseInterfaceList(str(long), get(long).source);
  const excludeInterfaces = ifaces('istio-exclude-interfaces');
  const kubeVirtInterfaces = ifaces('kube-virt-interfaces');

  const markSetting = get('istio-inbound-tproxy-mark');
  const tproxyMark = parseUint32(markSetting.value, markSetting.source, 'a packet mark', 1);
  const tableSetting = get('istio-inbound-tproxy-route-table');
  const tproxyRouteTable = parseUint32(tableSetting.value, tableSetting.source, 'a routing table id', 1);
  if ([253, 254, 255].includes(tproxyRouteTable)) {
    throw new ValidationError(
      tableSetting.source,
      tableSetting.value,
      'a routing table id other than the kernel\'s own default (253), main (254) and local (255)',
    );
  }

  const loopbackSetting = get('outbound-ipv4-loopback-cidr');
  const hostIPv4LoopbackCidr = parseCidr(loopbackSetting.value);
  if (!hostIPv4LoopbackCidr || hostIPv4LoopbackCidr.family !== 4 || hostIPv4LoopbackCidr.address.range() !== 'loopback') {
    throw new ValidationError(loopbackSetting.source, loopbackSetting.value, 'an IPv4 CIDR inside 127.0.0.0/8, such as 127.0.0.1/32');
  }

  const timeoutSetting = get('probe-timeout');
  const probeTimeoutMs = parseDurationMs(timeoutSetting.value, timeoutSetting.source);

  const binarySetting = get('force-iptables-binary');
  let forceIptablesBinary: IptablesBinaryChoice | undefined;
  if (binarySetting.value !== '') {
    if (binarySetting.value !== 'iptables-legacy' && binarySetting.value !== 'iptables-nft') {
      throw new ValidationError(binarySetting.source, binarySetting.value, 'iptables-legacy or iptables-nft');
    }
    forceIptablesBinary = binarySetting.value;
  }

  const nsSetting = get('network-namespace');
  const networkNamespace = nsSetting.value === '' ? undefined : nsSetting.value;
  if (networkNamespace !== undefined) await checkNetworkNamespace(networkNamespace, nsSetting.source, system);

  const dryRun = bool('dry-run');
  const redirectDns = bool('redirect-dns');
  const captureAllDns = bool('capture-all-dns');
  const dropInvalid = bool('drop-invalid');
  const dualStack = bool('dual-stack');
  const enableIPv6Flag = bool('enable-ipv6');
  const run: RunOptions = {
    dryRun,
    cleanupOnly: bool('cleanup-only'),
    reconcile: bool('reconcile'),
    forceApply: bool('force-apply'),
    nativeNftables: bool('native-nftables'),
    runValidation: bool('run-validation'),
    skipRuleApply: bool('skip-rule-apply'),
    probePort,
    probeTimeoutMs,
    cniMode: bool('cni-mode'),
    ...(forceIptablesBinary ? { forceIptablesBinary } : {}),
    ...(networkNamespace ? { networkNamespace } : {}),
  };

  if (run.nativeNftables && forceIptablesBinary) {
    // The nftables backend runs no iptables binary: accepting both would ignore one of them.
    throw new ValidationError(
      binarySetting.source,
      binarySetting.value,
      `no iptables binary together with ${get('native-nftables').source} (the nftables backend runs no iptables binary: give one or the other)`,
    );
  }

  // Owners: numbers pass through, names must resolve (iptables would refuse them later).
  const uidSetting = get('proxy-uid');
  let proxyUids: number[];
  if (uidSetting.value.trim() === '') {
    const envoyUser = str('envoy-user');
    proxyUids = [(await system.lookupUser(envoyUser)) ?? DEFAULT_PROXY_UID];
  } else {
    proxyUids = await resolveIds(uidSetting, (n) => system.lookupUser(n), 'user');
  }
  const gidSetting = get('proxy-gid');
  const proxyGids =
    gidSetting.value.trim() === '' ? [...proxyUids] : await resolveIds(gidSetting, (n) => system.lookupGroup(n), 'group');

  const ownerGroups = await buildOwnerGroupFilter(get('outbound-owner-groups'), get('outbound-owner-groups-exclude'), system, warnings);

  let dnsServersV4: InterceptConfig['dnsServersV4'] = [];
  let dnsServersV6: InterceptConfig['dnsServersV6'] = [];
  if (redirectDns && !captureAllDns) {
    const servers = nameserversFromResolvConf(await system.readResolvConf(networkNamespace));
    dnsServersV4 = servers.v4;
    dnsServersV6 = servers.v6;
    if (servers.v4.length === 0 && servers.v6.length === 0) {
      warnings.push('--redirect-dns is set but resolv.conf lists no nameserver and --capture-all-dns is off: DNS capture disabled (as istio does)');
    }
  }

  const enableIPv6 = enableIPv6Flag || dualStack || (await system.hasGlobalIPv6(networkNamespace));

  const config: InterceptConfig = {
    proxyPort,
    inboundCapturePort,
    inboundTunnelPort,
    proxyUids,
    proxyGids,
    interceptionMode,
    inboundPorts,
    inboundPortsExclude,
    excludeInterfaces,
    outboundInclude,
    outboundExclude,
    outboundPortsInclude,
    outboundPortsExclude,
    kubeVirtInterfaces,
    tproxyMark,
    tproxyRouteTable,
    redirectDns,
    captureAllDns,
    dnsServersV4,
    dnsServersV6,
    dropInvalid,
    ownerGroups,
    hostIPv4LoopbackCidr,
    enableIPv6,
  };
  return { config, run, warnings };
}

async function resolveIds(
  setting: RawSetting,
  lookup: (name: string) => Promise<number | undefined>,
  what: 'user' | 'group',
): Promise<number[]> {
  const items = splitList(setting.value);
  const ids: number[] = [];
  for (const item of items) {
    ids.push(await resolveId(item, setting, lookup, what));
  }
  return [...new Set(ids)];
}

async function resolveId(
  item: string,
  setting: RawSetting,
  lookup: (name: string) => Promise<number | undefined>,
  what: 'user' | 'group',
): Promise<number> {
  if (/^\d+$/.test(item)) {
    const n = Number(item);
    if (n <= 0xfffffffe) return n;
  } else if (/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(item)) {
    const id = await lookup(item);
    if (id !== undefined) return id;
    throw new ValidationError(setting.source, setting.value, `numeric ${what} ids or ${what} names that exist on this host (${quotedItem(item)} does not resolve)`);
  }
  throw new ValidationError(setting.source, setting.value, `a comma-separated list of numeric ${what} ids (0-4294967294) or ${what} names (bad item ${quotedItem(item)})`);
}

/** istio's ParseInterceptFilter: "*" or empty include means "all groups except the exclude list". */
async function buildOwnerGroupFilter(
  include: RawSetting,
  exclude: RawSetting,
  system: SystemLookups,
  warnings: string[],
): Promise<OwnerGroupFilter> {
  const lookup = (n: string) => system.lookupGroup(n);
  const includeText = include.value.trim();
  if (includeText !== '*' && includeText !== '') {
    if (splitList(exclude.value).length > 0) {
      warnings.push(`${exclude.source} is ignored because ${include.source} is set (istio gives the include list precedence)`);
    }
    return { except: false, gids: await resolveIds(include, lookup, 'group') };
  }
  return { except: true, gids: await resolveIds(exclude, lookup, 'group') };
}
