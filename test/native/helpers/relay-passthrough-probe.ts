/**
 * Runs inside a test's network namespace (`ip netns exec … node --import tsx THIS JSON`): an
 * echo server on each target, the splice relay listening on 127.0.0.1:15001 with the given
 * passthrough ports, and one client per target (from source port 61000 + index, which is what
 * the test's REDIRECT rule matches, so the relay's own upstream connects are not redirected
 * again). Prints one JSON line: for each target, whether the relay passed the connection
 * through on its own, what the client got back and the error its socket ended with, if any.
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
  // Refused with an RST, so every run takes the client 'error' path (a FIN or an RST would
  // otherwise depend on whether the client's "ping" was queued before the close).
  else relay.closeAccepted(c.id, true);
  const dstPort = c.originalDst?.port ?? -1;
  accepted.set(dstPort, c);
  waiters.get(dstPort)?.(c);
});
const flags = new Uint8Array(65536);
for (const p of ports) flags[p] = 1;
listener.setPassthrough({ ports: flags, connectTimeoutMs: 2000, idleTimeoutMs: 5000, capture: 0, maxConnections: 0 });

/**
 * Sends "ping" and half-closes from `localPort`, then collects what comes back until the
 * socket closes (or 3 s pass). Never rejects: a refused connection ends in an RST, and that
 * 'error' is an outcome to report, not a failure of the probe. (events.once(client, 'close')
 * rejects on it: the probe then died of ECONNRESET, or hung with the relay still listening.)
 */
function exchange(port: number, localPort: number): Promise<{ got: string; error: string | null }> {
  return new Promise((resolve) => {
    let got = '';
    let error: string | null = null;
    const client = net.connect({ host: address, port, localPort, allowHalfOpen: true });
    const finish = () => {
      clearTimeout(timer);
      client.destroy();
      resolve({ got, error });
    };
    const timer = setTimeout(finish, 3000);
    client.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    client.on('data', (d: Buffer) => (got += d.toString()));
    client.on('connect', () => client.end('ping'));
    client.on('close', finish);
  });
}

const results = [];
try {
  for (const [i, port] of targets.entries()) {
    const seen = new Promise<AcceptedConnection>((resolve) => {
      const c = accepted.get(port);
      if (c) resolve(c);
      else waiters.set(port, resolve);
    });
    const { got, error } = await exchange(port, 61000 + i);
    const c = await seen;
    results.push({ port, passthrough: c.passthrough, original: c.originalDst ?? null, got, error });
  }
} finally {
  // Whatever happened above, the relay must stop listening, or it keeps the process alive.
  listener.close();
  for (const s of servers) s.close();
}
console.log(JSON.stringify(results));
process.exit(0);
