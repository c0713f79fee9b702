/**
 * The idle keep-alive connections of bench/http.ts, run inside the pod as an app uid: opens N
 * connections to host:port, sends one HTTP/1.1 GET on each and reads its answer, then keeps
 * them all open and idle. Prints "ready N" once every connection has had its answer, and exits
 * (closing them) when stdin closes.
 */
import { connect, type Socket } from 'node:net';

const [host, portText, countText, hostHeader] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const request = `GET / HTTP/1.1\r\nHost: ${hostHeader ?? host}\r\nUser-Agent: bench-idle\r\n\r\n`;

/** One connection with one answered request; the answer is complete when its body has arrived. */
function openOne(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let text = '';
    s.once('error', reject);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /content-length:\s*(\d+)/i.exec(text.slice(0, end));
      if (length && text.length - end - 4 >= Number(length[1])) resolve(s);
    });
    s.write(request);
  });
}

const sockets: Socket[] = [];
// A few at a time, so neither side's accept queue overflows.
for (let i = 0; i < count; i += 50) {
  sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, openOne))));
}
process.stdout.write(`ready ${sockets.length}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
