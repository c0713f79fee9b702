/**
 * One request to a cluster a DestinationRule governs, as the HTTP/1 forward path makes it:
 * admitted by the cluster's connection pool (else 503 UO), sent through the cluster's own
 * agent (plain HTTP, or TLS origination), its outcome counted by outlier detection, its slot
 * and its endpoint's active-request count given back when it ends. Cluster state (agents,
 * counters, ejections) outlives config reloads, as Envoy keeps a cluster whose settings did
 * not change.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { ClusterPolicy } from './destination-policy.js';
import type { BalancerState } from './load-balancer.js';
import { OutlierDetector } from './outlier-detection.js';
import { agentTlsOptions, requestTlsOptions, systemCaBundle, transportFailureReason } from './tls-origination.js';

/** What the forward path asks of a governed upstream (Upstream.policy). */
export interface UpstreamPolicy {
  /** Starts a request; undefined when the connection pool overflows (503 UO). */
  start(): UpstreamCall | undefined;
  /** connectionPool.tcp.connectTimeout, when the DestinationRule sets it. */
  readonly connectTimeoutMs?: number;
}

export interface UpstreamCall {
  /** Sends the request (options as for http.request, without agent) over the cluster's connections. */
  request(options: RequestOptions): ClientRequest;
  /** The upstream answered with `status`. */
  answered(status: number): void;
  /** The request failed without an answer; returns Envoy's transport failure reason for TLS failures. */
  failed(err: Error): string | undefined;
  /** The request is over, whatever happened: frees its pool slot. Safe to call twice. */
  end(): void;
}

/** Envoy's circuit-breaker defaults as Istio sets them: practically unlimited. */
const UNLIMITED = 2 ** 32 - 1;

/** A keep-alive agent that closes a connection after `maxRequests` requests. */
function limitReuse<T extends HttpAgent>(agent: T, maxRequests: number | undefined): T {
  if (!maxRequests) return agent;
  const uses = new WeakMap<Socket, number>();
  const keep = agent.keepSocketAlive.bind(agent);
  // keepSocketAlive is Node's documented hook, called when a finished request would return its socket to the pool.
  agent.keepSocketAlive = (socket: Socket) => {
    const n = (uses.get(socket) ?? 0) + 1;
    uses.set(socket, n);
    return n < maxRequests && keep(socket);
  };
  return agent;
}

class ClusterState {
  readonly balancer: BalancerState = { next: 0, active: new Map() };
  inFlight = 0;
  private agent: HttpAgent | undefined;
  private agentFor: ClusterPolicy | undefined;
  private outlier: OutlierDetector | undefined;
  private outlierFor: unknown;

  agentOf(policy: ClusterPolicy): HttpAgent {
    if (this.agent && this.agentFor && sameConnections(this.agentFor, policy)) return this.agent;
    const maxConnections = policy.connectionPool?.maxConnections;
    // The agent's socket timeout closes a pooled connection once it has been idle that long
    // (Node's agent destroys only free sockets on timeout; a slow answer is the route's business).
    const idleMs = policy.connectionPool?.idleTimeoutMs ?? 60_000;
    const base = { keepAlive: true, scheduling: 'lifo' as const, timeout: idleMs, ...(maxConnections ? { maxSockets: maxConnections, maxTotalSockets: maxConnections } : {}) };
    const agent = policy.tls ? new HttpsAgent({ ...base, ...agentTlsOptions(policy.tls, systemCaBundle) }) : new HttpAgent(base);
    this.agent = limitReuse(agent, policy.connectionPool?.maxRequestsPerConnection);
    this.agentFor = policy;
    return this.agent;
  }

  outlierOf(policy: ClusterPolicy): OutlierDetector | undefined {
    if (!policy.outlierDetection) return undefined;
    const key = JSON.stringify(policy.outlierDetection);
    if (!this.outlier || this.outlierFor !== key) {
      this.outlier = new OutlierDetector(policy.outlierDetection);
      this.outlierFor = key;
    }
    return this.outlier;
  }
}

function sameConnections(a: ClusterPolicy, b: ClusterPolicy): boolean {
  return a.tls === b.tls && JSON.stringify(a.connectionPool ?? {}) === JSON.stringify(b.connectionPool ?? {});
}

/** Every governed cluster's state, by cluster name. */
export class ClusterStates {
  private readonly clusters = new Map<string, ClusterState>();

  get(cluster: string): ClusterState {
    let s = this.clusters.get(cluster);
    if (!s) this.clusters.set(cluster, (s = new ClusterState()));
    return s;
  }

  /** True when outlier detection has ejected `endpoint` of `cluster`. */
  isEjected(cluster: string, policy: ClusterPolicy, endpoint: string): boolean {
    return this.get(cluster).outlierOf(policy)?.isEjected(endpoint) ?? false;
  }

  /**
   * The policy object for a request to `endpoint` (one of `poolSize`) of `cluster`; `host` is
   * the request's host, the SNI when the policy originates TLS and sets no `sni`.
   */
  policyFor(cluster: string, policy: ClusterPolicy, endpoint: string, poolSize: number, host: string): UpstreamPolicy {
    const state = this.get(cluster);
    const pool = policy.connectionPool;
    const limit = (pool?.maxConnections ?? UNLIMITED) + (pool?.http1MaxPendingRequests ?? UNLIMITED);
    return {
      ...(pool?.connectTimeoutMs !== undefined ? { connectTimeoutMs: pool.connectTimeoutMs } : {}),
      start: () => {
        if (state.inFlight >= limit) return undefined;
        state.inFlight++;
        state.balancer.active.set(endpoint, (state.balancer.active.get(endpoint) ?? 0) + 1);
        let ended = false;
        let counted = false;
        const count = (outcome: number | 'connect-failure') => {
          if (counted) return;
          counted = true;
          state.outlierOf(policy)?.report(endpoint, outcome, poolSize);
        };
        return {
          request: (options) => {
            const agent = state.agentOf(policy);
            return policy.tls
              ? httpsRequest({ ...options, agent, ...requestTlsOptions(policy.tls, host) })
              : httpRequest({ ...options, agent });
          },
          answered: (status) => count(status),
          failed: (err) => {
            count('connect-failure');
            return transportFailureReason(err);
          },
          end: () => {
            if (ended) return;
            ended = true;
            state.inFlight--;
            const active = (state.balancer.active.get(endpoint) ?? 1) - 1;
            if (active > 0) state.balancer.active.set(endpoint, active);
            else state.balancer.active.delete(endpoint);
          },
        };
      },
    };
  }
}
