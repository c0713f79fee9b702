// Accepts TCP on [::]:PORT for each port given and answers with a tag, then closes.
// Usage: node tag-server.mjs TAG PORT [PORT…]   Prints "ready" once every port listens.
import net from 'node:net';

const [tag, ...ports] = process.argv.slice(2);
let pending = ports.length;
for (const port of ports) {
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.end(`${tag}\n`);
  });
  server.listen({ port: Number(port), host: '::', ipv6Only: false }, () => {
    if (--pending === 0) process.stdout.write('ready\n');
  });
}
process.on('SIGTERM', () => process.exit(0));
