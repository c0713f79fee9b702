/**
 * Runs inside a test's network namespace (`ip netns exec … node --import tsx THIS JSON`):
 * listens where asked, connects to each target, and prints one JSON line describing what
 * originalDst / originalDstLookup returned for every accepted connection.
 *
 * argv[2]: { listen: [{ host, port }], connect: [{ host, port }] }
 */
import net from 'node:net';
import { once } from 'node:events';
import { CidrTrie, originalDst, originalDstLookup } from '../../../src/native.js';
import { NativeError } from '../../../src/errors/index.js';

interface Endpoint {
  host: string;
  port: number;
}
const { listen, connect } = JSON.parse(process.argv[2]!) as { listen: Endpoint[]; connect: Endpoint[] };

const trie = new CidrTrie();
trie.insert('198.51.100.0/24', 7);
trie.insert('2001:db8::/32', 9);

const accepted = new Map<number, unknown>(); // client port -> what the server saw
const waiters = new Map<number, (v: unknown) => void>();

function describe(socket: net.Socket): unknown {
  try {
    const dst = originalDst(socket);
    const both = originalDstLookup(socket, trie);
    return { ...dst, match: both.match ?? null, listener: socket.localPort };
  } catch (err) {
    if (err instanceof NativeError) return { error: err.code, errno: err.errno, syscall: err.syscall, listener: socket.localPort };
    throw err;
  }
}

const servers = await Promise.all(
  listen.map(async ({ host, port }) => {
    const server = net.createServer((socket) => {
      const seen = describe(socket);
      const key = socket.remotePort!;
      accepted.set(key, seen);
      waiters.get(key)?.(seen);
      socket.end();
    });
    server.listen(port, host);
    await once(server, 'listening');
    return server;
  }),
);

const results: unknown[] = [];
for (const target of connect) {
  const client = net.connect(target.port, target.host);
  try {
    await once(client, 'connect');
  } catch (err) {
    results.push({ target, connectError: (err as NodeJS.ErrnoException).code });
    continue;
  }
  const port = client.localPort!;
  const seen = accepted.get(port) ?? (await new Promise((resolve) => waiters.set(port, resolve)));
  results.push({ target, seen });
  client.destroy();
}
for (const s of servers) s.close();
process.stdout.write(`${JSON.stringify(results)}\n`);
