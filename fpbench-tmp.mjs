import { ProxyServer } from '/work/wt/fastpath/dist/proxy/proxy-server.js';
import { CidrTrie } from '/work/wt/fastpath/dist/native.js';
import { writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { execa } from 'execa';
const native = process.argv[2] === 'native';
writeFileSync('/tmp/fpbench/mesh.yaml', `outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: o}
spec:
  hosts: [origin.example.com]
  ports: [{number: 18080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`);
const server = await ProxyServer.start({ configFile: '/tmp/fpbench/mesh.yaml', outboundPort: 0, inboundPort: 0, bindAddress: '127.0.0.1', interceptionMode: 'REDIRECT',
  accessLog: '/tmp/fpbench/access.log', accessLogEncoding: 'TEXT', metricsAddress: '127.0.0.1', gatewayAddress: '127.0.0.1', maxConnections: 10000, connectTimeoutMs: 2000,
  idleTimeoutMs: 60000, sniffTimeoutMs: 0, drainTimeoutMs: 100, dnsRefreshMs: 5000, watch: false, log: pino({ level: 'warn' }), nativeHttp: native,
  originalDestination: () => ({ address: '127.0.0.1', port: 18080 }), addressTableFactory: () => new CidrTrie() });
const port = server.ports.outbound;
await execa('wrk', ['-t1', '-c16', '-d1s', '-H', 'Host: origin.example.com', `http://127.0.0.1:${port}/`]);
const c0 = process.cpuUsage();
const r = await execa('wrk', ['-t1', '-c16', '-d4s', '--latency', '-H', 'Host: origin.example.com', `http://127.0.0.1:${port}/`]);
const c1 = process.cpuUsage(c0);
const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)[1]);
const cpuS = (c1.user + c1.system) / 1e6;
console.log(native ? 'native' : 'js', 'rps', rps, 'cpu us/req', (cpuS * 1e6 / (rps * 4)).toFixed(1), 'req/s per core', (rps * 4 / cpuS).toFixed(0), /Non-2xx.*/.exec(r.stdout)?.[0] ?? '', / 99%.*/.exec(r.stdout)[0]);
console.log(server.nativeHttpStats);
await server.stop();
process.exit(0);
