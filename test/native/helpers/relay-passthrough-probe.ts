/**
 * Runs inside a test's network namespace (`ip netns exec … node --import tsx THIS JSON`): an
 * echo server on each target, the splice relay listening on 127.0.0.1:15001 with the given
 * passthrough ports, and one client per target (from source port 61000 + index, which is what
 * the test's REDIRECT rule matches, so the relay's own upstream connects are not redirected
 * again). Prints one JSON line: for each target, whether the relay passed the connection
 * through on its own and what the client got back.
 *
 * argv[2]: { address, ports: number[] (passthrough), targets: number[] }
 */
import net from 'node:net';
import { once } from 'node:events';
import { SpliceRelay, type AcceptedConnection } from '../../../src/proxy/splice-relay.linux.js';

const { address, ports, targets } = JSON.parse(process.argv[2]!) as { address: string; ports: number[]; targets: number[] };

const servers = await Promise.all(
  targets.map(async (port) => {
    const server = net.createServer((s) => s.pipe(s));
    server.listen(port, address);
    await once(server, 'listening');
    return server;
  }),
);

const relay = new SpliceRelay();
const accepted = new Map<number, AcceptedConnection>();
const waiters = new Map<number, (c: AcceptedConnection) => void>();
const listener = relay.listen('127.0.0.1', 15001, (c) => {
  if (c.passthrough) void relay.adopt(c.id).done;
  else relay.closeAccepted(c.id, false);
  const dstPort = c.originalDst?.port ?? -1;
  accepted.set(dstPort, c);
  waiters.get(dstPort)?.(c);
});
const flags = new Uint8Array(65536);
for (const p of ports) flags[p] = 1;
listener.setPassthrough({ ports: flags, connectTimeoutMs: 2000, idleTimeoutMs: 5000, capture: 0, maxConnections: 0 });

const results = [];
for (const [i, port] of targets.entries()) {
  const seen = new Promise<AcceptedConnection>((resolve) => {
    const c = accepted.get(port);
    if (c) resolve(c);
    else waiters.set(port, resolve);
  });
  const client = net.connect({ host: address, port, localPort: 61000 + i, allowHalfOpen: true });
  client.on('error', () => {});
  await once(client, 'connect');
  client.end('ping');
  let got = '';
  client.on('data', (d: Buffer) => (got += d.toString()));
  await Promise.race([once(client, 'close'), new Promise((r) => setTimeout(r, 3000))]);
  const c = await seen;
  results.push({ port, passthrough: c.passthrough, original: c.originalDst ?? null, got });
  client.destroy();
}
console.log(JSON.stringify(results));
listener.close();
for (const s of servers) s.close();
process.exit(0);
