/**
 * Gateway servers with tls.mode SIMPLE terminate TLS: their certificate and key are read when
 * the config is loaded (a missing file refuses the config, naming the field), into one secure
 * context per server. `credentialName` names a directory holding tls.crt and tls.key, the
 * layout of a mounted Kubernetes TLS secret; a relative path is read from the --config
 * file's directory.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { ValidationError } from '../errors/index.js';
import type { GatewayServer, ProxyConfig } from './istio-types.js';
import { readPemFile } from './pem-file.js';

export function gatewayTlsContexts(config: ProxyConfig): Map<GatewayServer, SecureContext> {
  const contexts = new Map<GatewayServer, SecureContext>();
  for (const gw of config.gateways) {
    for (const server of gw.servers) {
      const c = server.credential;
      if (!c) continue;
      const read = (file: string) => readPemFile(c.field, file, config.baseDir);
      try {
        contexts.set(server, createSecureContext({ cert: read(c.certFile), key: read(c.keyFile) }));
      } catch (err) {
        if (err instanceof ValidationError) throw err;
        throw new ValidationError(c.field, c.certFile, `a PEM certificate and its private key (${(err as Error).message})`);
      }
    }
  }
  return contexts;
}

/**
 * The server side of TLS over an accepted socket whose first bytes were sniffed and handed back
 * (unshift): the TLS layer must read them from the stream, not from the socket's handle, so it
 * is given a stream view of the socket.
 */
export function terminateTls(socket: Socket, secureContext: SecureContext): TLSSocket {
  const view = new Duplex({
    read: () => void socket.resume(),
    write: (chunk: Buffer, _enc, cb) => void socket.write(chunk, cb),
    final: (cb) => {
      socket.end();
      cb();
    },
    destroy: (err, cb) => {
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (d: Buffer) => {
    if (!view.push(d)) socket.pause();
  });
  socket.on('end', () => view.push(null));
  socket.on('close', () => view.destroy());
  const tls = new TLSSocket(view as unknown as Socket, { isServer: true, secureContext });
  tls.on('error', () => tls.destroy());
  return tls;
}
