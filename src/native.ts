/**
 * The one loader of the native addon (native/build/Release/interpose_native.node) and its typed
 * facade: original destinations of redirected connections, transparent/marked sockets, and the
 * CIDR trie. Arguments are validated here; the addon trusts them. Linux only (the socket
 * options are Linux netfilter ABI).
 */
import { constants as osConstants } from 'node:os';
import type net from 'node:net';
import { InterceptError, NativeError } from './errors/index.js';
import { CidrTrie } from './net/cidr-trie.js';
import { loadAddon, type NativeFailure, type NetfilterBatchOutcome } from './native-loader.js';

export { CidrTrie } from './net/cidr-trie.js';
export {
  addonLoads,
  loadAddon,
  NATIVE_ADDON_ENV,
  type NativeAddon,
  type NativeFailure,
  type NetfilterBatchOutcome,
  type NetlinkReply,
} from './native-loader.js';

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name]),
);

const errnoHints: Record<string, string> = {
  ENOENT: 'the connection was not redirected (conntrack holds no NAT entry for it)',
  ENOPROTOOPT: 'nf_conntrack for this family is not loaded (no NAT rule has been installed yet)',
  EPERM: 'needs CAP_NET_ADMIN',
  EBADF: 'not an open file descriptor',
  ENOTSOCK: 'the file descriptor is not a socket',
  EAFNOSUPPORT: 'not an IPv4 or IPv6 socket',
};

function isFailure(r: unknown): r is NativeFailure {
  return typeof r === 'object' && r !== null && 'errno' in r;
}

/** @internal The NativeError for an errno the addon reported from `syscall` (code, hint). */
export function nativeError(f: NativeFailure): NativeError {
  const code = errnoNames.get(f.errno) ?? `E${f.errno}`;
  return new NativeError(f.syscall, f.errno, code, errnoHints[code]);
}

function checkFd(fd: unknown, fn: string): number {
  if (typeof fd !== 'number' || !Number.isInteger(fd)) {
    throw new TypeError(`${fn}: fd must be an integer file descriptor, got ${typeof fd === 'number' ? fd : typeof fd}`);
  }
  if (fd < 0 || fd > 0x7fffffff) throw new RangeError(`${fn}: fd ${fd} is out of range: expected 0-2147483647`);
  return fd;
}

/**
 * The file descriptor behind a net.Socket or a listening net.Server (libuv's handle). Throws
 * when there is none: not connected yet, destroyed, or not backed by a TCP handle.
 */
export function socketFd(socket: net.Socket | net.Server): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new InterceptError(
      'socket has no file descriptor (not connected or listening yet, already closed, or not a TCP socket)',
    );
  }
  return fd;
}

function fdOf(socketOrFd: net.Socket | number, fn: string): number {
  if (typeof socketOrFd === 'number') return checkFd(socketOrFd, fn);
  if (typeof socketOrFd === 'object' && socketOrFd !== null) return socketFd(socketOrFd);
  throw new TypeError(`${fn}: expected a net.Socket or a file descriptor, got ${typeof socketOrFd}`);
}

/** Where a redirected connection was originally going. */
export interface OriginalDestination {
  address: string;
  port: number;
  family: 4 | 6;
}

/**
 * The destination a connection had before netfilter REDIRECT/DNAT rewrote it:
 * getsockopt(SO_ORIGINAL_DST) on IPv4 sockets, getsockopt(IP6T_SO_ORIGINAL_DST) on IPv6
 * ones (an IPv6 socket carrying an IPv4-mapped connection reports the IPv4 original).
 * Throws NativeError with code ENOENT for a connection that was not redirected.
 */
export function originalDst(socketOrFd: net.Socket | number): OriginalDestination {
  const r = loadAddon().originalDst(fdOf(socketOrFd, 'originalDst'));
  if (isFailure(r)) throw nativeError(r);
  return r;
}

/**
 * originalDst plus the longest-prefix match of that address in `trie`, in one call into the
 * addon (the redirect target's per-connection path). `match` is undefined when no prefix
 * matches.
 */
export function originalDstLookup(
  socketOrFd: net.Socket | number,
  trie: CidrTrie,
): OriginalDestination & { match: number | undefined } {
  const fd = fdOf(socketOrFd, 'originalDstLookup');
  if (!(trie instanceof CidrTrie)) throw new TypeError('originalDstLookup: trie must be a CidrTrie');
  const r = loadAddon().originalDstLookup(fd, CidrTrie.nativeHandle(trie));
  if (isFailure(r)) throw nativeError(r);
  return { address: r.address, port: r.port, family: r.family, match: r.match < 0 ? undefined : r.match };
}

/**
 * Sets IP_TRANSPARENT (family 4) or IPV6_TRANSPARENT (family 6) on a socket so a TPROXY
 * listener accepts connections for non-local addresses. Needs CAP_NET_ADMIN; errors are
 * NativeError with errno (EPERM, EBADF, ENOTSOCK …).
 */
export function setTransparent(fd: number, family: 4 | 6): void {
  checkFd(fd, 'setTransparent');
  if (family !== 4 && family !== 6) {
    throw new RangeError(`setTransparent: family ${JSON.stringify(family)} is not supported: expected 4 or 6`);
  }
  const r = loadAddon().setTransparent(fd, family);
  if (isFailure(r)) throw nativeError(r);
}

/** Sets SO_MARK (0 … 2^32-1) on a socket. Needs CAP_NET_ADMIN; errors are NativeError with errno. */
export function setMark(fd: number, mark: number): void {
  checkFd(fd, 'setMark');
  if (typeof mark !== 'number' || !Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) {
    throw new RangeError(`setMark: mark ${String(mark)} is out of range: expected an integer 0-4294967295`);
  }
  const r = loadAddon().setMark(fd, mark);
  if (isFailure(r)) throw nativeError(r);
}

/** The netlink protocols the addon talks (linux/netlink.h). */
export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;

function checkNetlinkArgs(fn: string, bytes: unknown, netnsPath: unknown): void {
  if (!(bytes instanceof Uint8Array) || bytes.length < 16) {
    throw new TypeError(`${fn}: bytes must be a Uint8Array holding at least one netlink message`);
  }
  if (typeof netnsPath !== 'string' || netnsPath.includes('\0')) {
    throw new TypeError(`${fn}: netnsPath must be a path without NUL bytes, or empty`);
  }
}

/**
 * Sends framed netlink messages in one sendmsg() on a socket of `protocol`, in the network
 * namespace bound at `netnsPath` ('' for this process's), and resolves with every ack and
 * error the kernel sent back. A failing system call (no such namespace, no CAP_NET_ADMIN, lost
 * replies) rejects with a NativeError. Runs off the event loop.
 */
async function sendNetlink(protocol: number, bytes: Uint8Array, netnsPath: string, fn: string, lostReplies: string): Promise<NetfilterBatchOutcome> {
  checkNetlinkArgs(fn, bytes, netnsPath);
  const r = await loadAddon().sendNetlink(protocol, bytes, netnsPath);
  if (r.errno !== undefined && r.syscall !== undefined) throw netlinkError(r.errno, r.syscall, netnsPath, lostReplies);
  return { replies: r.replies };
}

/** An nf_tables batch (BATCH_BEGIN … BATCH_END) on NETLINK_NETFILTER: see sendNetlink. */
export function sendNetfilterBatch(bytes: Uint8Array, netnsPath = ''): Promise<NetfilterBatchOutcome> {
  return sendNetlink(NETLINK_NETFILTER, bytes, netnsPath, 'sendNetfilterBatch',
    'reading the kernel\'s answers to a netfilter batch: some were lost, so whether it was committed is unknown');
}

/** A request on NETLINK_ROUTE (an address, a route): see sendNetlink. */
export function sendRouteRequest(bytes: Uint8Array, netnsPath = ''): Promise<NetfilterBatchOutcome> {
  return sendNetlink(NETLINK_ROUTE, bytes, netnsPath, 'sendRouteRequest', 'reading the kernel\'s answer to a route request');
}

/**
 * Sends one netfilter dump request (an nlmsghdr-framed GET with NLM_F_DUMP) in the namespace
 * at `netnsPath` ('' for this process's) and returns the reply messages up to NLMSG_DONE,
 * framed as received. Synchronous: a table listing takes well under a millisecond.
 */
export function dumpNetfilter(request: Uint8Array, netnsPath = ''): Buffer {
  checkNetlinkArgs('dumpNetfilter', request, netnsPath);
  const r = loadAddon().dumpNetlink(NETLINK_NETFILTER, request, netnsPath);
  if (isFailure(r)) throw netlinkError(r.errno, r.syscall, netnsPath, 'reading a netfilter dump');
  return r.messages;
}

/**
 * The cookie of the network namespace at `netnsPath` ('' for this process's): unique per
 * namespace for the whole boot, where inodes are handed out again. Undefined when the kernel
 * has no SO_NETNS_COOKIE (before 5.14); other failures throw a NativeError.
 */
export function namespaceCookie(netnsPath = ''): bigint | undefined {
  if (typeof netnsPath !== 'string' || netnsPath.includes('\0')) {
    throw new TypeError('namespaceCookie: netnsPath must be a path without NUL bytes, or empty');
  }
  const r = loadAddon().namespaceCookie(netnsPath);
  if (typeof r === 'bigint') return r;
  if (errnoNames.get(r.errno) === 'ENOPROTOOPT') return undefined;
  throw netlinkError(r.errno, r.syscall, netnsPath, 'reading the namespace cookie');
}

/**
 * /proc/net/NAME as the network namespace at `netnsPath` sees it (at most 64 KiB), read by a
 * thread of this process that enters it: no process is started there. Failures (no such
 * namespace or file, no CAP_SYS_ADMIN for setns) throw a NativeError.
 */
export function readProcNetIn(netnsPath: string, name: string): string {
  if (typeof netnsPath !== 'string' || netnsPath === '' || netnsPath.includes('\0')) {
    throw new TypeError('readProcNetIn: netnsPath must be a non-empty path without NUL bytes');
  }
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') {
    throw new TypeError(`readProcNetIn: name must be a file name in /proc/net, got ${JSON.stringify(String(name).slice(0, 40))}`);
  }
  const r = loadAddon().readProcNetIn(netnsPath, name);
  if (isFailure(r)) throw nativeError(r);
  return r;
}

/**
 * flock(fd, LOCK_EX | LOCK_NB): true when the lock is now held through `fd`'s open file
 * description, false when another holds it. Other failures (EBADF, ENOLCK) throw a NativeError.
 */
export function tryLockExclusive(fd: number): boolean {
  checkFd(fd, 'tryLockExclusive');
  const r = loadAddon().tryLockExclusive(fd);
  if (isFailure(r)) throw nativeError(r);
  return r;
}

function netlinkError(errno: number, syscall: string, netnsPath: string, recvHint: string): NativeError {
  const code = errnoNames.get(errno) ?? `E${errno}`;
  const hint =
    syscall === 'open' || syscall === 'setns'
      ? `entering the network namespace at ${netnsPath}`
      : syscall === 'recv'
        ? recvHint
        : code === 'EPERM'
          ? 'needs CAP_NET_ADMIN'
          : `talking netlink (${syscall})`;
  return new NativeError(syscall, errno, code, hint);
}
