/**
 * Run inside a pod's network namespace: listens where the proxy would (TCP 15001, UDP 15053),
 * sends one tagged TCP connection / UDP datagram to each target, and prints JSON saying which
 * tags arrived at those listeners (redirected) and which did not, and who it ran as (uid and
 * effective capabilities, from /proc/self/status). Usage: traffic-probe.ts JSON with
 * { tcp: ["host:port"], udp: ["host:port"] }.
 */
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';

const spec = JSON.parse(process.argv[2] ?? '{}') as { tcp?: string[]; udp?: string[] };
const arrived = new Set<string>();

const tcpServer = createServer((s) => s.on('data', (d) => arrived.add(d.toString().trim())));
tcpServer.listen(15001, '0.0.0.0');
await once(tcpServer, 'listening');
const udpServer = createSocket('udp4');
udpServer.on('message', (m) => arrived.add(m.toString().trim()));
udpServer.bind(15053, '0.0.0.0');
await once(udpServer, 'listening');

const split = (t: string) => {
  const i = t.lastIndexOf(':');
  return { host: t.slice(0, i), port: Number(t.slice(i + 1)) };
};

for (const target of spec.tcp ?? []) {
  const { host, port } = split(target);
  await new Promise<void>((resolve) => {
    const s = connect({ host, port, timeout: 1500 });
    s.on('connect', () => s.end(`tcp:${target}\n`, () => setTimeout(resolve, 100)));
    s.on('error', () => resolve());
    s.on('timeout', () => {
      s.destroy();
      resolve();
    });
  });
}
const client = createSocket('udp4');
for (const target of spec.udp ?? []) {
  const { host, port } = split(target);
  client.send(`udp:${target}`, port, host);
}
await new Promise((r) => setTimeout(r, 300));
const status = readFileSync('/proc/self/status', 'utf8');
const result = {
  uid: process.getuid?.(),
  capEff: /^CapEff:\s*(\S+)/m.exec(status)?.[1],
  capBnd: /^CapBnd:\s*(\S+)/m.exec(status)?.[1],
  tcp: Object.fromEntries((spec.tcp ?? []).map((t) => [t, arrived.has(`tcp:${t}`)])),
  udp: Object.fromEntries((spec.udp ?? []).map((t) => [t, arrived.has(`udp:${t}`)])),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
