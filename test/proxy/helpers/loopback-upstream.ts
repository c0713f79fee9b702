/**
 * What the in-process proxy tests on loopback share: a ServiceEntry whose one endpoint is
 * 127.0.0.1 (no DNS needed), and an upstream server listening on an ephemeral loopback port
 * that the test closes, open connections included, when it ends.
 */
import type { ExecutionContext } from 'ava';
import { once } from 'node:events';
import type { Server } from 'node:net';

/** A ServiceEntry for `host` on `port` with `protocol`, its endpoint on loopback. */
export function loopbackServiceEntry(host: string, port: number, protocol = 'HTTP'): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.replace(/\./g, '-')}}
spec:
  hosts: [${host}]
  ports: [{number: ${port}, name: ${protocol.toLowerCase()}, protocol: ${protocol}}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`;
}

/** Starts `server` on 127.0.0.1 (an ephemeral port) and closes it when the test ends. */
export async function listenOnLoopback(t: ExecutionContext, server: Server & { closeAllConnections?: () => void }): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections?.();
    server.close();
  });
  return (server.address() as { port: number }).port;
}
