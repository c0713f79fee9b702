/**
 * The destination a locally made connection really has. Two kinds of address given to
 * connect()/sendto() never reach netfilter as written; the kernel rewrites them first, so a
 * trace must follow the rewritten packet:
 *
 *   - IPv4-mapped IPv6 (`::ffff:192.0.2.6`): an IPv6 socket hands the connection to the IPv4
 *     stack (tcp_v6_connect → tcp_v4_connect, udpv6_sendmsg → udp_sendmsg). The packet is
 *     IPv4 to 192.0.2.6 and the IPv4 rules (iptables, `ip` family) decide.
 *   - the unspecified address (`0.0.0.0`, `::`): "connect to self". IPv4 routing
 *     (ip_route_output_key_hash_rcu) turns daddr 0 into the socket's own source address, or
 *     127.0.0.1 when it has none, and sends it by lo; IPv6 (tcp_v6_connect,
 *     __ip6_datagram_connect, udpv6_sendmsg) always uses ::1. This happens before OUTPUT, so
 *     the rules see a loopback packet and it lands on the local application.
 *
 * A mapped unspecified address (`::ffff:0.0.0.0`) is both: IPv4, then 127.0.0.1.
 */
import ipaddr from 'ipaddr.js';
import { formatAddress } from '../net/ip-format.js';

export type Address = ipaddr.IPv4 | ipaddr.IPv6;

export interface KernelDestination {
  /** The address the packet carries when it reaches OUTPUT. */
  readonly address: Address;
  /** True when the kernel sends it by lo whatever the routing table says (unspecified). */
  readonly loopback: boolean;
  /** Why the address differs from the one given, in one sentence; undefined when it does not. */
  readonly reason?: string;
}

const LOOPBACK_V4 = ipaddr.IPv4.parse('127.0.0.1');
const LOOPBACK_V6 = ipaddr.IPv6.parse('::1');

/** An IPv4-mapped IPv6 address as the IPv4 address it stands for; any other address as is. */
export function unmapped(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address() : address;
}

/**
 * Where a connection from this host to `given` goes. `source` is the socket's own address
 * when known (a bound socket, or `--src`): an IPv4 connection to 0.0.0.0 goes there.
 */
export function kernelDestination(given: Address, source?: Address): KernelDestination {
  const reasons: string[] = [];
  let address = unmapped(given);
  if (address !== given) {
    reasons.push(`${formatAddress(given)} is an IPv4-mapped address: an IPv6 socket sends IPv4 to ${formatAddress(address)}, so the IPv4 rules decide`);
  }
  let loopback = false;
  if (address.range() === 'unspecified') {
    loopback = true;
    const before = formatAddress(address);
    if (address.kind() === 'ipv4') {
      const own = source !== undefined ? unmapped(source) : undefined;
      address = own !== undefined && own.kind() === 'ipv4' && own.range() !== 'unspecified' ? own : LOOPBACK_V4;
      reasons.push(
        address === LOOPBACK_V4
          ? `the kernel sends a connection to the unspecified address ${before} to 127.0.0.1 by lo, before OUTPUT`
          : `the kernel sends a connection to the unspecified address ${before} to the socket's own address ${formatAddress(address)} by lo, before OUTPUT`,
      );
    } else {
      address = LOOPBACK_V6;
      reasons.push(`the kernel sends a connection to the unspecified address ${before} to ::1 by lo, before OUTPUT`);
    }
  }
  return { address, loopback, ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}) };
}
