/**
 * The istio-iptables command line: every flag with istio's long name, short letter, default
 * and environment variable(s). One table drives argument parsing, `--help` and env lookup.
 */

export type FlagKind = 'string' | 'bool';

export interface FlagSpec {
  /** Long name without dashes, e.g. `envoy-port`. */
  readonly long: string;
  readonly short?: string;
  readonly kind: FlagKind;
  /** Environment variables read when the flag is absent, first one set wins. */
  readonly env: readonly string[];
  /** Default when neither flag nor env is set ('' = unset). */
  readonly defaultValue: string;
  readonly help: string;
  /** Not settable on the command line (istio reads these from the environment only). */
  readonly envOnly?: boolean;
  /** Placeholder shown in help. */
  readonly valueName?: string;
  /**
   * Means something only to a command that changes the kernel (istio-iptables): trace and
   * verify, which only read, refuse it rather than accept and ignore it.
   */
  readonly applyOnly?: boolean;
}

const envOf = (long: string) => long.toUpperCase().replace(/-/g, '_');

function flag(
  long: string,
  short: string | undefined,
  kind: FlagKind,
  defaultValue: string,
  help: string,
  extra: { aliases?: string[]; valueName?: string; applyOnly?: boolean } = {},
): FlagSpec {
  return {
    long,
    ...(short ? { short } : {}),
    kind,
    env: [envOf(long), ...(extra.aliases ?? [])],
    defaultValue,
    help,
    ...(extra.valueName ? { valueName: extra.valueName } : {}),
    ...(extra.applyOnly ? { applyOnly: true } : {}),
  };
}

export const ISTIO_FLAGS: readonly FlagSpec[] = [
  flag('envoy-port', 'p', 'string', '15001', 'port all redirected outbound TCP goes to', { valueName: 'port' }),
  flag('inbound-capture-port', 'z', 'string', '15006', 'port all redirected inbound TCP goes to', { valueName: 'port' }),
  flag('inbound-tunnel-port', 'e', 'string', '15008', 'istio tunnel (HBONE) port, never captured inbound', { valueName: 'port' }),
  flag('proxy-uid', 'u', 'string', '', 'comma-separated uids (or user names) whose traffic is not redirected; default: the uid of $ENVOY_USER (istio-proxy), else 1337', { valueName: 'uids' }),
  flag('proxy-gid', 'g', 'string', '', 'comma-separated gids (or group names) whose traffic is not redirected; default: same as --proxy-uid', { valueName: 'gids' }),
  flag('istio-inbound-interception-mode', 'm', 'string', 'REDIRECT', 'inbound capture mode: REDIRECT or TPROXY', { valueName: 'mode' }),
  flag('istio-inbound-ports', 'b', 'string', '', 'comma-separated inbound ports to capture, "*" for all, empty for none', { valueName: 'ports' }),
  flag('istio-local-exclude-ports', 'd', 'string', '', 'inbound ports never captured (only with -b "*")', { valueName: 'ports' }),
  flag('istio-exclude-interfaces', 'c', 'string', '', 'comma-separated interfaces whose traffic is never captured', { valueName: 'ifaces' }),
  flag('istio-service-cidr', 'i', 'string', '', 'comma-separated CIDRs whose outbound traffic is captured, "*" for all, empty for none; @FILE reads them from FILE', { valueName: 'cidrs' }),
  flag('istio-service-exclude-cidr', 'x', 'string', '', 'comma-separated CIDRs never captured outbound; @FILE reads them from FILE', { valueName: 'cidrs' }),
  flag('istio-outbound-ports', 'q', 'string', '', 'outbound ports always captured, whatever the destination', { valueName: 'ports' }),
  flag('istio-local-outbound-ports-exclude', 'o', 'string', '', 'outbound ports never captured', { valueName: 'ports' }),
  flag('kube-virt-interfaces', 'k', 'string', '', 'virtual interfaces whose inbound traffic (from a VM) is treated as outbound', { valueName: 'ifaces' }),
  flag('istio-inbound-tproxy-mark', 't', 'string', '1337', 'packet mark TPROXY mode uses', { valueName: 'mark' }),
  flag('istio-inbound-tproxy-route-table', 'r', 'string', '133', 'policy routing table TPROXY mode uses', { valueName: 'table' }),
  flag('dry-run', 'n', 'bool', 'false', 'print the rules (iptables-restore text or nft script) and change nothing', { applyOnly: true }),
  flag('redirect-dns', undefined, 'bool', 'false', "capture DNS to the resolv.conf nameservers and send it to istio-agent's port 15053", { aliases: ['ISTIO_META_DNS_CAPTURE'] }),
  flag('capture-all-dns', undefined, 'bool', 'false', 'with --redirect-dns, capture all port-53 traffic, not only to the resolv.conf nameservers'),
  flag('drop-invalid', undefined, 'bool', 'false', 'drop packets conntrack marks INVALID instead of resetting connections', { aliases: ['INVALID_DROP'] }),
  flag('dual-stack', undefined, 'bool', 'false', 'dual-stack pod: generate IPv4 and IPv6 rules', { aliases: ['ISTIO_DUAL_STACK', 'ISTIO_AGENT_DUAL_STACK'] }),
  flag('enable-ipv6', undefined, 'bool', 'false', '(interpose) generate IPv6 rules too; default: when the namespace has a global IPv6 address'),
  flag('network-namespace', undefined, 'string', '', 'apply inside this network namespace: a name from `ip netns` or a path such as /proc/PID/ns/net', { valueName: 'ns' }),
  flag('cleanup-only', undefined, 'bool', 'false', 'remove every chain, jump and route istio-init/interpose installed, and nothing else', { applyOnly: true }),
  flag('reconcile', undefined, 'bool', 'false', 'replace existing rules that differ from this configuration (default: fail with a drift report)', { applyOnly: true }),
  flag('force-apply', undefined, 'bool', 'false', 'apply even when the kernel already holds the same rules', { applyOnly: true }),
  flag('native-nftables', undefined, 'bool', 'false', 'use the native nftables backend instead of iptables'),
  flag('run-validation', undefined, 'bool', 'false', 'after applying, prove with a probe connection that redirection works (exit 126 if not)', { applyOnly: true }),
  flag('iptables-probe-port', undefined, 'string', '15002', 'port the validation probe listens on', { valueName: 'port', applyOnly: true }),
  flag('probe-timeout', undefined, 'string', '5s', 'validation timeout (Go duration: 500ms, 5s, 1m)', { valueName: 'duration', applyOnly: true }),
  flag('skip-rule-apply', undefined, 'bool', 'false', 'do not apply rules (with --run-validation: only validate)', { applyOnly: true }),
  flag('cni-mode', undefined, 'bool', 'false', "istio-cni's mode: run from the node into the pod's --network-namespace; legacy iptables then lock that namespace's file instead of the node-wide /run/xtables.lock", { applyOnly: true }),
  flag('force-iptables-binary', undefined, 'string', '', 'use this iptables: iptables-legacy or iptables-nft (default: legacy if it already holds rules, else nft)', { valueName: 'binary' }),
];

/** Settings istio-iptables reads from the environment only. */
export const ISTIO_ENV_ONLY: readonly FlagSpec[] = [
  { long: 'outbound-owner-groups', kind: 'string', env: ['ISTIO_OUTBOUND_OWNER_GROUPS'], defaultValue: '*', envOnly: true, help: 'capture outbound traffic only from these groups (names or gids; "*" = all)' },
  { long: 'outbound-owner-groups-exclude', kind: 'string', env: ['ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE'], defaultValue: '', envOnly: true, help: 'never capture outbound traffic from these groups' },
  { long: 'outbound-ipv4-loopback-cidr', kind: 'string', env: ['ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR'], defaultValue: '127.0.0.1/32', envOnly: true, help: 'IPv4 loopback range treated as local' },
  { long: 'envoy-user', kind: 'string', env: ['ENVOY_USER'], defaultValue: 'istio-proxy', envOnly: true, help: 'user whose uid is the default --proxy-uid' },
];

/** One resolved setting: its text and where it came from (for error messages). */
export interface RawSetting {
  readonly value: string;
  /** How to name it to the user: `-p/--envoy-port`, `$ENVOY_PORT`, or `default of --envoy-port`. */
  readonly source: string;
}

export type RawSettings = ReadonlyMap<string, RawSetting>;

/** Display name of a flag, e.g. `-i/--istio-service-cidr`. */
export function flagDisplay(spec: FlagSpec): string {
  if (spec.envOnly) return `$${spec.env[0]}`;
  return spec.short ? `-${spec.short}/--${spec.long}` : `--${spec.long}`;
}

/**
 * Merges command-line values with the environment: a flag wins over its env var, env over
 * the default. `cli` holds the values commander parsed (undefined = not given).
 */
export function resolveSettings(
  cli: Readonly<Record<string, string | boolean | undefined>>,
  env: Readonly<Record<string, string | undefined>>,
): RawSettings {
  const out = new Map<string, RawSetting>();
  for (const spec of [...ISTIO_FLAGS, ...ISTIO_ENV_ONLY]) {
    const given = spec.envOnly ? undefined : cli[camel(spec.long)];
    if (given !== undefined) {
      out.set(spec.long, { value: given === true ? 'true' : String(given), source: flagDisplay(spec) });
      continue;
    }
    const envName = spec.env.find((name) => env[name] !== undefined);
    if (envName !== undefined) {
      out.set(spec.long, { value: env[envName]!, source: `$${envName}` });
      continue;
    }
    out.set(spec.long, { value: spec.defaultValue, source: `default of ${flagDisplay(spec)}` });
  }
  return out;
}

/** commander's attribute name for a long option. */
export function camel(long: string): string {
  return long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
