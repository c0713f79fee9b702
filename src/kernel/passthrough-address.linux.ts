/** The `::6/128` address on lo that Envoy's (and the proxy's) inbound passthrough binds to. */
import { constants } from 'node:os';
import ipaddr from 'ipaddr.js';
import { errnoText } from '../errors/errno-text.js';
import { addonLoads, sendRouteRequest } from '../native.js';
import type { Ruleset } from '../rules/ir.js';
import type { Executor } from './executor.js';
import { NETLINK } from '../rules/render/netlink/nf-tables-abi.js';
import { NetlinkWriter } from '../rules/render/netlink/netlink-writer.js';

const RTM_NEWADDR = 20;
const AF_INET6 = 10;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
/** lo is interface 1 in every network namespace (the kernel's LOOPBACK_IFINDEX). */
const LOOPBACK_IFINDEX = 1;
const PASSTHROUGH_V6 = Uint8Array.from(ipaddr.parse('::6').toByteArray());
const { EEXIST } = constants.errno;

/**
 * The request `ip -6 addr add ::6/128 dev lo` sends: RTM_NEWADDR (create, exclusive, ack) with
 * an ifaddrmsg for lo and the address as both IFA_LOCAL and IFA_ADDRESS.
 */
export function passthroughAddressRequest(): Uint8Array {
  // family, prefix length, flags 0, scope 0 (universe, as ip sends it), the index (host order).
  const ifaddrmsg = new Uint8Array(8);
  ifaddrmsg.set([AF_INET6, 128, 0, 0]);
  ifaddrmsg.set(NetlinkWriter.hostU32(LOOPBACK_IFINDEX), 4);
  const w = new NetlinkWriter(64);
  const m = w.beginMessageWithHeader(RTM_NEWADDR, NETLINK.F_REQUEST | NETLINK.F_ACK | NETLINK.F_CREATE | NETLINK.F_EXCL, 1, ifaddrmsg);
  w.bytesAttr(IFA_LOCAL, PASSTHROUGH_V6);
  w.bytesAttr(IFA_ADDRESS, PASSTHROUGH_V6);
  w.endMessage(m);
  return Uint8Array.from(w.bytes());
}

/**
 * istio-init adds ::6/128 to lo when IPv6 is on (IPv6 loopback is a single address, unlike
 * 127/8); the rules exempt it the way they exempt 127.0.0.6. Idempotent; a failure (IPv6 off on
 * lo) is reported, not fatal, since the rules themselves are in place. Sent over netlink when
 * the executor runs on the real kernel and the addon is built (an `ip` process costs several
 * milliseconds of an apply that is otherwise process-free), else through `ip`.
 */
export async function ensureIPv6PassthroughAddress(executor: Executor, ruleset: Ruleset): Promise<PassthroughOutcome> {
  if (!ruleset.families.some((f) => f.family === 6)) return 'none';
  const netns = executor.realNamespace;
  if (netns !== undefined && addonLoads()) {
    let problem: string | undefined;
    try {
      const { replies } = await sendRouteRequest(passthroughAddressRequest(), netns);
      const refused = replies.find((r) => r.error !== 0 && r.error !== EEXIST);
      if (refused) problem = `${errnoText(refused.error)}${refused.message ? `: ${refused.message}` : ''}`;
      else if (!replies.some((r) => r.error === 0 || r.error === EEXIST)) problem = 'no answer from the kernel';
      else if (replies.some((r) => r.error === EEXIST)) return 'present';
    } catch (err) {
      problem = (err as Error).message;
    }
    if (problem) process.stderr.write(`interpose: warning: could not add ::6/128 to lo: ${problem}\n`);
    return problem ? 'failed' : 'added';
  }
  const r = await executor.run(['ip', '-6', 'addr', 'add', '::6/128', 'dev', 'lo']);
  if (r.exitCode === 0) return 'added';
  if (/File exists|already assigned/i.test(r.stderr)) return 'present';
  process.stderr.write(`interpose: warning: could not add ::6/128 to lo: ${r.stderr.trim()}\n`);
  return 'failed';
}

/** What ensureIPv6PassthroughAddress found: it added the address, it was there, it failed, or no IPv6. */
export type PassthroughOutcome = 'added' | 'present' | 'failed' | 'none';

/**
 * Removes ::6/128 from lo (a cleanup, where the ownership record says interpose added it).
 * Gone already is fine; returns whether it removed it.
 */
export async function removeIPv6PassthroughAddress(executor: Executor): Promise<boolean> {
  const r = await executor.run(['ip', '-6', 'addr', 'del', '::6/128', 'dev', 'lo']);
  if (r.exitCode === 0) return true;
  if (!/Cannot assign requested address|No such|not found/i.test(r.stderr)) {
    process.stderr.write(`interpose: warning: could not remove ::6/128 from lo: ${r.stderr.trim()}\n`);
  }
  return false;
}
