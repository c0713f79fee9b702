/**
 * /proc/net/if_inet6: the IPv6 addresses of the reading process's network namespace, one per
 * line: address, ifindex, prefix length, scope and flags (hex), interface name. What
 * `ip -6 -o addr show scope global` lists, without starting `ip`.
 */
import { readFileSync } from 'node:fs';

/** The file's text; '' when IPv6 is off (the file is then absent), as `ip` then lists nothing. */
export function readIfInet6(file = '/proc/net/if_inet6'): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The kernel's scope bits (IFA_HOST 0x10, IFA_LINK 0x20, IFA_SITE 0x40): an address with none
 * of them set is what `ip` calls scope global (the kernel's rt_scope() maps it to
 * RT_SCOPE_UNIVERSE).
 */
const NON_GLOBAL_SCOPES = 0x70;

/**
 * True when an interface other than lo holds a global-scope address. lo does not count: the
 * ::6/128 interpose (like istio) adds there for the inbound passthrough is global, and must not
 * turn IPv6 on for the next run.
 */
export function hasGlobalIPv6Address(ifInet6: string): boolean {
  return ifInet6.split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 6) return false;
    const scope = Number.parseInt(fields[3]!, 16);
    return Number.isInteger(scope) && (scope & NON_GLOBAL_SCOPES) === 0 && fields[5] !== 'lo';
  });
}
