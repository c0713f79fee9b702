/**
 * What the proxy knows about an accepted connection before any request is read: where the
 * client meant to go and which listener (the mesh's outbound listener or a gateway) took it.
 */
import type { GatewayServer } from './istio-types.js';

export interface ConnectionContext {
  /** Original destination (outbound) or local address (gateway), "as the client saw it". */
  originalDst: { address: string; port: number };
  downstreamRemote: { address: string; port: number };
  /** "mesh" for sidecar traffic; for gateway listeners, the servers bound to the port. */
  gateway: 'mesh' | { servers: { gateway: string; server: GatewayServer }[] };
}
