/**
 * originalDst against the kernel: REDIRECT rules in a fresh namespace send connections to a
 * listener, and the listener must read back exactly the address and port the client dialled,
 * for IPv4, IPv6 and an IPv4 connection accepted on a dual-stack IPv6 listener. A connection
 * the kernel has no NAT record for must fail with ENOENT, never invent an address.
 */
import test from 'ava';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { kernelTest, Netns } from '../helpers/kernel.js';
import { NativeError } from '../../src/errors/index.js';
import { originalDst, originalDstLookup, CidrTrie, socketFd } from '../../src/native.js';

const probe = fileURLToPath(new URL('./helpers/original-dst-probe.ts', import.meta.url));

interface Seen {
  address?: string;
  port?: number;
  family?: number;
  match?: number | null;
  error?: string;
  listener: number;
}
interface ProbeResult {
  target: { host: string; port: number };
  seen?: Seen;
  connectError?: string;
}

async function runProbe(ns: Netns, listen: object[], connect: object[]): Promise<ProbeResult[]> {
  const { stdout } = await ns.exec([process.execPath, '--import', 'tsx', probe, JSON.stringify({ listen, connect })], {
    timeout: 30_000,
  });
  return JSON.parse(stdout) as ProbeResult[];
}

kernelTest('originalDst returns the exact pre-REDIRECT destination (IPv4, IPv6, dual-stack) and ENOENT without NAT', async (t) => {
  const ns = await Netns.create(t, 'odst');
  // A veth pair gives the documentation prefixes a route so connect() reaches the OUTPUT hook;
  // REDIRECT then turns every probe into a loopback connection, so nothing leaves.
  await ns.exec(['ip', 'link', 'add', 'od0', 'type', 'veth', 'peer', 'name', 'od1']);
  await ns.exec(['ip', 'link', 'set', 'od0', 'up']);
  await ns.exec(['ip', 'link', 'set', 'od1', 'up']);
  await ns.exec(['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'od0']);
  await ns.exec(['ip', '-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'od0', 'nodad']);
  const redirect = (cmd: string, dst: string, dport: number, to: number) =>
    ns.exec([cmd, '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', dst, '--dport', String(dport), '-j', 'REDIRECT', '--to-ports', String(to)]);
  await redirect('iptables', '198.51.100.7', 8080, 15001);
  await redirect('iptables', '198.51.100.8', 8081, 15003);
  await redirect('ip6tables', '2001:db8::7', 8443, 15001);

  const results = await runProbe(
    ns,
    [
      { host: '127.0.0.1', port: 15001 },
      { host: '::1', port: 15001 },
      { host: '127.0.0.1', port: 15002 },
      { host: '::', port: 15003 }, // dual-stack: the IPv4 connection arrives IPv4-mapped
    ],
    [
      { host: '198.51.100.7', port: 8080 },
      { host: '2001:db8::7', port: 8443 },
      { host: '198.51.100.8', port: 8081 },
      { host: '127.0.0.1', port: 15002 },
    ],
  );
  t.deepEqual(
    results.map((r) => r.seen),
    [
      { address: '198.51.100.7', port: 8080, family: 4, match: 7, listener: 15001 },
      { address: '2001:db8::7', port: 8443, family: 6, match: 9, listener: 15001 },
      { address: '198.51.100.8', port: 8081, family: 4, match: 7, listener: 15003 },
      // Tracked but not NATed: conntrack's original tuple is the real destination.
      { address: '127.0.0.1', port: 15002, family: 4, match: null, listener: 15002 },
    ],
  );

  // No netfilter rules in this namespace, so conntrack keeps no record of the connection.
  const bare = await Netns.create(t, 'odbare');
  const direct = await runProbe(bare, [{ host: '127.0.0.1', port: 15002 }], [{ host: '127.0.0.1', port: 15002 }]);
  t.like(direct[0]?.seen, { error: 'ENOENT', listener: 15002 });
  t.is(direct[0]?.seen?.address, undefined);
});

test('originalDst on a socket without NAT record or a bad fd throws NativeError with errno', async (t) => {
  const server = net.createServer((s) => s.end());
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.teardown(() => server.close());
  // The listening socket itself has no connection, so there is never an original destination.
  const fd = socketFd(server as unknown as net.Socket);
  const err = t.throws(() => originalDst(fd), { instanceOf: NativeError });
  t.true(['ENOENT', 'ENOTCONN', 'ENOPROTOOPT'].includes(err!.code), err!.message);
  const bad = t.throws(() => originalDst(2 ** 30), { instanceOf: NativeError });
  t.is(bad!.code, 'EBADF');
  t.is(bad!.errno, 9);
});

test('originalDst and originalDstLookup validate their arguments before the addon', (t) => {
  t.throws(() => originalDst(-1), { instanceOf: RangeError, message: /fd -1/ });
  t.throws(() => originalDst(1.5), { instanceOf: TypeError, message: /fd must be an integer/ });
  t.throws(() => originalDst('3' as unknown as number), { instanceOf: TypeError });
  t.throws(() => originalDstLookup(3, {} as CidrTrie), { instanceOf: TypeError, message: /trie must be a CidrTrie/ });
  t.throws(() => socketFd(new net.Socket()), { message: /no file descriptor/ });
});
