/**
 * InterceptConfig: everything that decides which rules get installed, validated and typed.
 * Produced by src/config/istio-options.ts from istio-iptables flags and environment; consumed
 * by the pure rule builders in src/rules.
 */
import type { Cidr } from '../net/cidr.js';

export type InterceptionMode = 'REDIRECT' | 'TPROXY';

/** Inbound port selection (`-b`): nothing, everything (`*`), or a list. */
export type InboundPorts = { kind: 'none' } | { kind: 'all' } | { kind: 'list'; ports: readonly number[] };

/** Outbound CIDR selection (`-i`): `*` or a list (empty list: no outbound capture by CIDR). */
export interface OutboundInclude {
  readonly wildcard: boolean;
  readonly cidrs: readonly Cidr[];
}

/**
 * ISTIO_OUTBOUND_OWNER_GROUPS / _EXCLUDE: capture only traffic from these groups
 * (`except: false`), or from every group except these (`except: true`).
 */
export interface OwnerGroupFilter {
  readonly except: boolean;
  readonly gids: readonly number[];
}

export interface InterceptConfig {
  readonly proxyPort: number;
  readonly inboundCapturePort: number;
  readonly inboundTunnelPort: number;
  readonly proxyUids: readonly number[];
  readonly proxyGids: readonly number[];
  readonly interceptionMode: InterceptionMode;
  readonly inboundPorts: InboundPorts;
  readonly inboundPortsExclude: readonly number[];
  readonly excludeInterfaces: readonly string[];
  readonly outboundInclude: OutboundInclude;
  readonly outboundExclude: readonly Cidr[];
  readonly outboundPortsInclude: readonly number[];
  readonly outboundPortsExclude: readonly number[];
  readonly kubeVirtInterfaces: readonly string[];
  readonly tproxyMark: number;
  readonly tproxyRouteTable: number;
  readonly redirectDns: boolean;
  readonly captureAllDns: boolean;
  /** Nameservers from resolv.conf, split by family (only read when DNS capture is on). */
  readonly dnsServersV4: readonly Cidr[];
  readonly dnsServersV6: readonly Cidr[];
  readonly dropInvalid: boolean;
  readonly ownerGroups: OwnerGroupFilter;
  /** ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR, 127.0.0.1/32 by default. */
  readonly hostIPv4LoopbackCidr: Cidr;
  /** Generate the IPv6 (ip6tables / ip6) rules too. */
  readonly enableIPv6: boolean;
}

/** Settings that decide how (not what) to apply. */
export interface RunOptions {
  readonly dryRun: boolean;
  readonly cleanupOnly: boolean;
  readonly reconcile: boolean;
  readonly forceApply: boolean;
  readonly nativeNftables: boolean;
  readonly runValidation: boolean;
  readonly skipRuleApply: boolean;
  readonly probePort: number;
  readonly probeTimeoutMs: number;
  /** --cni-mode: running from the node into the pod's namespace, as istio-cni does. */
  readonly cniMode: boolean;
  readonly forceIptablesBinary?: IptablesBinaryChoice;
  /** A named namespace (`ip netns`) or a path such as /proc/PID/ns/net. */
  readonly networkNamespace?: string;
}

export type IptablesBinaryChoice = 'iptables-legacy' | 'iptables-nft';
