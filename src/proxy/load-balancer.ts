/**
 * Envoy's simple load balancers over a cluster's endpoints: ROUND_ROBIN (per cluster),
 * RANDOM, and LEAST_REQUEST as Envoy does it for equal weights — two endpoints drawn at
 * random, the one with fewer active requests wins.
 */
import type { LoadBalancer } from './istio-types.js';

export interface BalancerState {
  next: number;
  /** Active requests by endpoint key. */
  active: Map<string, number>;
}

export function pickEndpoint<T>(
  candidates: readonly T[],
  key: (c: T) => string,
  lb: LoadBalancer,
  state: BalancerState,
  random: () => number = Math.random,
): T {
  if (candidates.length === 1) return candidates[0]!;
  switch (lb) {
    case 'ROUND_ROBIN':
      return candidates[state.next++ % candidates.length]!;
    case 'RANDOM':
      return candidates[Math.floor(random() * candidates.length)]!;
    case 'LEAST_REQUEST': {
      const a = candidates[Math.floor(random() * candidates.length)]!;
      const b = candidates[Math.floor(random() * candidates.length)]!;
      return (state.active.get(key(b)) ?? 0) < (state.active.get(key(a)) ?? 0) ? b : a;
    }
  }
}
