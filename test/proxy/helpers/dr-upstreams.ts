/**
 * Upstream servers for the DestinationRule tests, run inside the world namespace (a socket
 * belongs to the namespace of the process that opens it). Argument: a JSON list of servers.
 * Each answers JSON naming itself, the client's port (one per upstream connection) and, over
 * mutual TLS, the client certificate's CN; /delay/MS waits first; `fail` servers answer 500.
 * Prints "ready" once every listener is bound.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';

export interface UpstreamSpec {
  name: string;
  address: string;
  port: number;
  fail?: boolean;
  tls?: { cert: string; key: string; clientCa?: string };
}

function handler(spec: UpstreamSpec) {
  return (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const delay = /^\/delay\/(\d+)$/.exec(req.url ?? '');
    const peer = (req.socket as TLSSocket).getPeerCertificate?.();
    const body = JSON.stringify({ server: spec.name, clientPort: req.socket.remotePort, clientCn: peer?.subject?.CN ?? null, sni: (req.socket as TLSSocket & { servername?: string }).servername ?? null }) + '\n';
    setTimeout(() => {
      res.writeHead(spec.fail ? 500 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }, delay ? Number(delay[1]) : 0);
  };
}

const specs = JSON.parse(process.argv[2] ?? '[]') as UpstreamSpec[];
await Promise.all(
  specs.map((spec) => {
    const server = spec.tls
      ? createHttpsServer(
          {
            cert: readFileSync(spec.tls.cert),
            key: readFileSync(spec.tls.key),
            ...(spec.tls.clientCa ? { ca: readFileSync(spec.tls.clientCa), requestCert: true, rejectUnauthorized: true } : {}),
          },
          handler(spec),
        )
      : createHttpServer(handler(spec));
    return new Promise<void>((resolve, reject) => server.once('error', reject).listen(spec.port, spec.address, () => resolve()));
  }),
);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
