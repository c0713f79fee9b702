/**
 * InterceptConfig → Ruleset, with istio-iptables' semantics rule for rule (tools/istio-iptables
 * capture/run.go): the same chains, the same order, the same per-family choices. Pure: no I/O.
 *
 * The same calls build the merged inet view istio-nftables installs (tools/istio-nftables); the
 * few places where the two differ say so. Matches are listed in the order istio-nftables writes
 * them (the nftables renderer keeps IR order; the iptables renderer puts them in iptables-save
 * order itself), so reordering matches here must keep iptables' relative order of the non-header
 * matches (ports, owner, conntrack, marks).
 */
import type { InterceptConfig } from '../config/intercept-config.js';
import type { Cidr, IpFamily } from '../net/cidr.js';
import { isLoopbackCidr } from '../net/cidr.js';
import type { Match, Ruleset, TableName } from './ir.js';
import {
  RETURN,
  cidr,
  dport,
  dst,
  gidOwner,
  inIf,
  jump,
  markIs,
  outIf,
  proto,
  rule,
  sport,
  src,
  uidOwner,
} from './match.js';
import { RulesetBuilder, type FamilySelector } from './ruleset-builder.js';

/** istio-init's chain names. */
export const CHAIN = {
  INBOUND: 'ISTIO_INBOUND',
  REDIRECT: 'ISTIO_REDIRECT',
  IN_REDIRECT: 'ISTIO_IN_REDIRECT',
  OUTPUT: 'ISTIO_OUTPUT',
  OUTPUT_DNS: 'ISTIO_OUTPUT_DNS',
  DIVERT: 'ISTIO_DIVERT',
  TPROXY: 'ISTIO_TPROXY',
  DROP: 'ISTIO_DROP',
} as const;

/** Port istio-agent's DNS proxy listens on. */
export const AGENT_DNS_PORT = 15053;
/** Mark Envoy's outbound-to-inbound loopback traffic carries in TPROXY mode. */
export const OUTBOUND_MARK = 1338;

const IPV6_LOOPBACK = cidr('::1/128');
const INBOUND_PASSTHROUGH_V4 = cidr('127.0.0.6/32');
const INBOUND_PASSTHROUGH_V6 = cidr('::6/128');

export function buildIstioRuleset(cfg: InterceptConfig): Ruleset {
  const families: IpFamily[] = cfg.enableIPv6 ? [4, 6] : [4];
  const b = new RulesetBuilder(families);
  const tproxy = cfg.interceptionMode === 'TPROXY';
  const loopback = (f: IpFamily): Cidr => (f === 4 ? cfg.hostIPv4LoopbackCidr : IPV6_LOOPBACK);
  /** A rule whose loopback/passthrough address differs by family (istio's AppendVersionedRule). */
  const versioned = (table: TableName, chain: string, make: (f: IpFamily) => ReturnType<typeof rule>) => {
    for (const f of families) b.append(f, table, chain, make(f));
  };

  const dns = dnsCapture(cfg);
  const includeHasLoopback = cfg.outboundInclude.cidrs.some(isLoopbackCidr);

  // Excluded interfaces: neither direction is captured.
  for (const name of cfg.excludeInterfaces) {
    b.append('both', 'nat', 'PREROUTING', rule(RETURN, inIf(name)));
    b.append('both', 'nat', 'OUTPUT', rule(RETURN, outIf(name)));
  }
  if (tproxy) {
    for (const name of cfg.excludeInterfaces) {
      b.append('both', 'mangle', 'PREROUTING', rule(RETURN, inIf(name)));
      b.append('both', 'mangle', 'OUTPUT', rule(RETURN, outIf(name)));
    }
  }
  // KubeVirt interfaces: inbound from a VM is treated as outbound, so skip inbound capture.
  for (const name of cfg.kubeVirtInterfaces) b.insert('both', 'nat', 'PREROUTING', 1, rule(RETURN, inIf(name)));

  if (cfg.dropInvalid) {
    const invalid: Match = { kind: 'conntrackState', states: ['INVALID'] };
    // istio-iptables drops every invalid packet; istio-nftables only invalid TCP.
    b.appendFamilyView('both', 'mangle', 'PREROUTING', rule(jump(CHAIN.DROP), invalid));
    b.appendInetView('both', 'mangle', 'PREROUTING', rule(jump(CHAIN.DROP), proto('tcp'), invalid));
    b.append('both', 'mangle', CHAIN.DROP, rule({ kind: 'drop' }));
  }

  b.append('both', 'nat', CHAIN.INBOUND, rule(RETURN, proto('tcp'), dport(cfg.inboundTunnelPort)));
  b.append('both', 'nat', CHAIN.REDIRECT, rule({ kind: 'redirect', toPort: cfg.proxyPort }, proto('tcp')));
  b.append('both', 'nat', CHAIN.IN_REDIRECT, rule({ kind: 'redirect', toPort: cfg.inboundCapturePort }, proto('tcp')));

  addInbound(b, cfg, families, loopback);

  b.append('both', 'nat', 'OUTPUT', rule(jump(CHAIN.OUTPUT)));
  for (const port of cfg.outboundPortsExclude) {
    b.append('both', 'nat', CHAIN.OUTPUT, rule(RETURN, proto('tcp'), dport(port)));
    b.append('both', 'nat', CHAIN.OUTPUT, rule(RETURN, proto('udp'), dport(port)));
  }
  // Envoy's inbound passthrough binds 127.0.0.6 / ::6: never capture it again.
  versioned('nat', CHAIN.OUTPUT, (f) => rule(RETURN, outIf('lo'), src(f === 4 ? INBOUND_PASSTHROUGH_V4 : INBOUND_PASSTHROUGH_V6)));

  const owners: Array<{ owner: (negate?: boolean) => Match; isUid: boolean }> = [
    ...cfg.proxyUids.map((uid) => ({ owner: (n = false) => uidOwner(uid, n), isUid: true })),
    ...cfg.proxyGids.map((gid) => ({ owner: (n = false) => gidOwner(gid, n), isUid: false })),
  ];
  for (const { owner, isUid } of owners) {
    // App → own service VIP → Envoy outbound → back over lo: send it to Envoy inbound. With DNS
    // capture, port 53 stays out (istio only does this for uids; gids keep the single port).
    const skipPorts: Match =
      dns.enabled && isUid
        ? { kind: 'destinationPorts', ports: [53, cfg.inboundTunnelPort], negate: true }
        : dport(cfg.inboundTunnelPort, true);
    versioned('nat', CHAIN.OUTPUT, (f) =>
      rule(jump(CHAIN.IN_REDIRECT), outIf('lo'), dst(loopback(f), true), proto('tcp'), skipPorts, owner()),
    );
    // App → itself over lo by endpoint address: leave alone, unless loopback was asked for.
    if (!includeHasLoopback) {
      const lo = dns.enabled
        ? rule(RETURN, outIf('lo'), proto('tcp'), dport(53, true), owner(true))
        : rule(RETURN, outIf('lo'), owner(true));
      b.append('both', 'nat', CHAIN.OUTPUT, lo);
    }
    // The proxy's own traffic is never redirected (no loops), whatever the protocol.
    b.append('both', 'nat', CHAIN.OUTPUT, rule(RETURN, owner()));
  }

  addOwnerGroupFilter(b, cfg);
  if (dns.enabled) addDnsRedirect(b, cfg);

  versioned('nat', CHAIN.OUTPUT, (f) => rule(RETURN, dst(loopback(f))));
  // IPv4 exclusions before IPv6 ones (each family's order is unchanged; the inet view interleaves).
  for (const family of [4, 6] as const) {
    for (const c of cfg.outboundExclude.filter((x) => x.family === family)) b.append(family, 'nat', CHAIN.OUTPUT, rule(RETURN, dst(c)));
  }
  for (const port of cfg.outboundPortsInclude) {
    b.append('both', 'nat', CHAIN.OUTPUT, rule(jump(CHAIN.REDIRECT), proto('tcp'), dport(port)));
  }
  addOutboundInclude(b, cfg);

  if (tproxy) addTproxyOutput(b, cfg, families, loopback);

  const tproxyRoutes =
    tproxy && cfg.inboundPorts.kind !== 'none'
      ? { mark: cfg.tproxyMark, table: cfg.tproxyRouteTable, families }
      : undefined;
  const built = { families: b.build(), inet: b.buildInet() };
  return tproxyRoutes ? { ...built, tproxyRoutes } : built;
}

interface DnsCapture {
  enabled: boolean;
}

/** istio disables DNS capture when it would match nothing: no servers and not capture-all. */
function dnsCapture(cfg: InterceptConfig): DnsCapture {
  const enabled =
    cfg.redirectDns && (cfg.captureAllDns || cfg.dnsServersV4.length > 0 || cfg.dnsServersV6.length > 0);
  return { enabled };
}

function addInbound(
  b: RulesetBuilder,
  cfg: InterceptConfig,
  families: IpFamily[],
  loopback: (f: IpFamily) => Cidr,
): void {
  if (cfg.inboundPorts.kind === 'none') return;
  const tproxy = cfg.interceptionMode === 'TPROXY';
  const table: TableName = tproxy ? 'mangle' : 'nat';
  const established: Match = { kind: 'conntrackState', states: ['RELATED', 'ESTABLISHED'] };
  if (tproxy) {
    b.append('both', 'mangle', CHAIN.DIVERT, rule({ kind: 'setMark', mark: cfg.tproxyMark }));
    b.append('both', 'mangle', CHAIN.DIVERT, rule({ kind: 'accept' }));
    for (const f of families) {
      b.append(
        f,
        'mangle',
        CHAIN.TPROXY,
        rule(
          { kind: 'tproxy', onPort: cfg.inboundCapturePort, mark: cfg.tproxyMark, mask: 0xffffffff },
          proto('tcp'),
          dst(loopback(f), true),
        ),
      );
    }
  }
  b.append('both', table, 'PREROUTING', rule(jump(CHAIN.INBOUND), proto('tcp')));

  if (cfg.inboundPorts.kind === 'all') {
    for (const port of cfg.inboundPortsExclude) b.append('both', table, CHAIN.INBOUND, rule(RETURN, proto('tcp'), dport(port)));
    if (tproxy) {
      b.append('both', 'mangle', CHAIN.INBOUND, rule(jump(CHAIN.DIVERT), proto('tcp'), established));
      b.append('both', 'mangle', CHAIN.INBOUND, rule(jump(CHAIN.TPROXY), proto('tcp')));
    } else {
      b.append('both', 'nat', CHAIN.INBOUND, rule(jump(CHAIN.IN_REDIRECT), proto('tcp')));
    }
    return;
  }
  for (const port of cfg.inboundPorts.ports) {
    if (tproxy) {
      b.append('both', 'mangle', CHAIN.INBOUND, rule(jump(CHAIN.DIVERT), proto('tcp'), dport(port), established));
      b.append('both', 'mangle', CHAIN.INBOUND, rule(jump(CHAIN.TPROXY), proto('tcp'), dport(port)));
    } else {
      b.append('both', 'nat', CHAIN.INBOUND, rule(jump(CHAIN.IN_REDIRECT), proto('tcp'), dport(port)));
    }
  }
}

function addOwnerGroupFilter(b: RulesetBuilder, cfg: InterceptConfig): void {
  const { except, gids } = cfg.ownerGroups;
  if (except) {
    for (const gid of gids) b.append('both', 'nat', CHAIN.OUTPUT, rule(RETURN, gidOwner(gid)));
  } else if (gids.length > 0) {
    // Capture only these groups: return for packets whose group is none of them.
    b.append('both', 'nat', CHAIN.OUTPUT, rule(RETURN, ...gids.map((gid) => gidOwner(gid, true))));
  }
}

function addDnsRedirect(b: RulesetBuilder, cfg: InterceptConfig): void {
  const all = cfg.captureAllDns;
  const toAgent = { kind: 'redirect', toPort: AGENT_DNS_PORT } as const;
  b.append('both', 'raw', 'OUTPUT', rule(jump(CHAIN.OUTPUT_DNS)));
  // istio-iptables jumps only in the families that have servers; istio-nftables jumps once for
  // both (the jumped-to chain holds only rules of the families with servers: same outcome).
  if (all || cfg.dnsServersV4.length > 0) b.appendFamilyView(4, 'nat', CHAIN.OUTPUT, rule(jump(CHAIN.OUTPUT_DNS)));
  if (all || cfg.dnsServersV6.length > 0) b.appendFamilyView(6, 'nat', CHAIN.OUTPUT, rule(jump(CHAIN.OUTPUT_DNS)));
  b.appendInetView('both', 'nat', CHAIN.OUTPUT, rule(jump(CHAIN.OUTPUT_DNS)));

  const servers: Array<[FamilySelector, Cidr]> = [
    ...cfg.dnsServersV4.map((c): [FamilySelector, Cidr] => [4, c]),
    ...cfg.dnsServersV6.map((c): [FamilySelector, Cidr] => [6, c]),
  ];
  for (const protocol of ['tcp', 'udp'] as const) {
    if (all) {
      b.append('both', 'nat', CHAIN.OUTPUT_DNS, rule(toAgent, proto(protocol), dport(53)));
    } else {
      for (const [f, server] of servers) {
        b.append(f, 'nat', CHAIN.OUTPUT_DNS, rule(toAgent, proto(protocol), dst(server), dport(53)));
      }
    }
  }

  // Conntrack zones keep the proxy's upstream DNS flows (zone 1) apart from the app's flows
  // to the proxy (zone 2), avoiding UDP conntrack races.
  const zone = (z: number) => ({ kind: 'ctZone', zone: z }) as const;
  const owners: Array<(n?: boolean) => Match> = [
    ...cfg.proxyUids.map((uid) => (n = false) => uidOwner(uid, n)),
    ...cfg.proxyGids.map((gid) => (n = false) => gidOwner(gid, n)),
  ];
  for (const owner of owners) {
    b.append('both', 'raw', CHAIN.OUTPUT_DNS, rule(zone(1), proto('udp'), dport(53), owner()));
    b.append('both', 'raw', CHAIN.OUTPUT_DNS, rule(zone(2), proto('udp'), sport(AGENT_DNS_PORT), owner()));
  }
  if (all) {
    b.append('both', 'raw', 'PREROUTING', rule(jump(CHAIN.INBOUND)));
    b.append('both', 'raw', CHAIN.OUTPUT_DNS, rule(zone(2), proto('udp'), dport(53)));
    b.append('both', 'raw', CHAIN.INBOUND, rule(zone(1), proto('udp'), sport(53)));
    return;
  }
  // As for the nat jump above: per family in iptables, once in the inet table.
  if (cfg.dnsServersV4.length > 0 || cfg.dnsServersV6.length > 0) {
    b.appendInetView('both', 'raw', 'PREROUTING', rule(jump(CHAIN.INBOUND)));
  }
  for (const family of [4, 6] as const) {
    const list = family === 4 ? cfg.dnsServersV4 : cfg.dnsServersV6;
    if (list.length > 0) b.appendFamilyView(family, 'raw', 'PREROUTING', rule(jump(CHAIN.INBOUND)));
    for (const server of list) {
      b.append(family, 'raw', CHAIN.OUTPUT_DNS, rule(zone(2), proto('udp'), dport(53), dst(server)));
      b.append(family, 'raw', CHAIN.INBOUND, rule(zone(1), proto('udp'), sport(53), src(server)));
    }
  }
}

function addOutboundInclude(b: RulesetBuilder, cfg: InterceptConfig): void {
  if (cfg.outboundInclude.wildcard) {
    // The same rules in both families: one shared rule in the inet table.
    b.append('both', 'nat', CHAIN.OUTPUT, rule(jump(CHAIN.REDIRECT)));
    for (const name of cfg.kubeVirtInterfaces) b.insert('both', 'nat', 'PREROUTING', 1, rule(jump(CHAIN.REDIRECT), inIf(name)));
    return;
  }
  for (const family of [4, 6] as const) {
    for (const c of cfg.outboundInclude.cidrs.filter((x) => x.family === family)) {
      for (const name of cfg.kubeVirtInterfaces) {
        b.insert(family, 'nat', 'PREROUTING', 1, rule(jump(CHAIN.REDIRECT), inIf(name), dst(c)));
      }
      b.append(family, 'nat', CHAIN.OUTPUT, rule(jump(CHAIN.REDIRECT), dst(c)));
    }
  }
}

function addTproxyOutput(
  b: RulesetBuilder,
  cfg: InterceptConfig,
  families: IpFamily[],
  loopback: (f: IpFamily) => Cidr,
): void {
  const mark = cfg.tproxyMark;
  // Save the mark Envoy's original_src sets as the connection mark …
  b.append('both', 'mangle', 'PREROUTING', rule({ kind: 'connmarkSave' }, proto('tcp'), markIs(mark)));
  // … and do not mark Envoy → app traffic twice.
  b.append('both', 'mangle', 'OUTPUT', rule(RETURN, outIf('lo'), proto('tcp'), markIs(mark)));
  const owners: Match[] = [...cfg.proxyUids.map((u) => uidOwner(u)), ...cfg.proxyGids.map((g) => gidOwner(g))];
  for (const owner of owners) {
    for (const f of families) {
      b.append(
        f,
        'mangle',
        'OUTPUT',
        rule({ kind: 'setMark', mark: OUTBOUND_MARK }, outIf('lo'), proto('tcp'), dst(loopback(f), true), owner),
      );
    }
  }
  b.append('both', 'mangle', 'OUTPUT', rule({ kind: 'connmarkRestore' }, proto('tcp'), { kind: 'connmark', value: mark }));
  b.insert('both', 'mangle', CHAIN.INBOUND, 1, rule(RETURN, proto('tcp'), markIs(mark)));
  b.insert(4, 'mangle', CHAIN.INBOUND, 2, rule(RETURN, inIf('lo'), proto('tcp'), src(INBOUND_PASSTHROUGH_V4)));
  b.insert(6, 'mangle', CHAIN.INBOUND, 2, rule(RETURN, inIf('lo'), proto('tcp'), src(INBOUND_PASSTHROUGH_V6)));
  b.insert('both', 'mangle', CHAIN.INBOUND, 3, rule(RETURN, inIf('lo'), proto('tcp'), markIs(OUTBOUND_MARK, true)));
}
