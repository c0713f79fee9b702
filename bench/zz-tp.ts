import net from 'node:net';
import { execa } from 'execa';
import { pino } from 'pino';
import { writeFileSync } from 'node:fs';
import { CidrTrie } from '../src/native.js';
import { ProxyServer } from '../src/target/proxy-server.js';
const sink = execa('node', ['/tmp/tp/sink.mjs'], { buffer: false });
const sinkPort = await new Promise<number>((r) => sink.stdout!.once('data', (d) => r(Number(String(d).trim()))));
const bare = net.createServer({ allowHalfOpen: true }, (d) => { const u = net.connect({ port: sinkPort, host: '127.0.0.1', allowHalfOpen: true }); d.pipe(u); u.pipe(d); });
await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
const manual = net.createServer({ allowHalfOpen: true }, (d) => { const u = net.connect({ port: sinkPort, host: '127.0.0.1', allowHalfOpen: true });
  const link = (a: net.Socket, b: net.Socket) => { a.on('data', (c) => { if (!b.write(c)) a.pause(); }); b.on('drain', () => a.resume()); a.on('end', () => b.end()); };
  link(d, u); link(u, d); });
await new Promise<void>((r) => manual.listen(0, '127.0.0.1', r));
writeFileSync('/tmp/tp/mesh.yaml', 'outboundTrafficPolicy: {mode: ALLOW_ANY}\n');
const server = await ProxyServer.start({ configFile: '/tmp/tp/mesh.yaml', outboundPort: 0, inboundPort: 0, bindAddress: '127.0.0.1', interceptionMode: 'REDIRECT', accessLog: 'off', accessLogEncoding: 'TEXT', metricsAddress: '127.0.0.1', gatewayAddress: '127.0.0.1', maxConnections: 100000, connectTimeoutMs: 2000, idleTimeoutMs: 60000, sniffTimeoutMs: 100, drainTimeoutMs: 100, dnsRefreshMs: 1000, watch: false, log: pino({ level: 'warn' }), originalDestination: () => ({ address: '127.0.0.1', port: sinkPort }), addressTableFactory: () => new CidrTrie() });
const run = async (port: number) => (await execa('node', ['/tmp/tp/client.mjs', String(port)])).stdout;
for (let i = 0; i < 2; i++) {
  console.log('direct', await run(sinkPort), 'bare-pipe', await run((bare.address() as net.AddressInfo).port), 'manual', await run((manual.address() as net.AddressInfo).port), 'interpose', await run(server.ports['outbound']!));
}
await server.stop(); sink.kill(); process.exit(0);
