/**
 * Envoy's simple load balancers over a cluster's endpoints: ROUND_ROBIN (per cluster),
 * RANDOM, and LEAST_REQUEST — two endpoints drawn at random, the one with fewer active requests
 * wins, when the weights are equal.
 *
 * ServiceEntry endpoints may carry a `weight` (Istio sends it as Envoy's load_balancing_weight,
 * 0 or absent meaning 1). With unequal weights Envoy switches each balancer to its weighted
 * form, and so does this: ROUND_ROBIN becomes a smooth weighted round robin (each endpoint's
 * share of every cycle is its weight, spread out rather than in bursts, as Envoy's EDF
 * scheduler spreads them); RANDOM draws in proportion to weight; LEAST_REQUEST draws in
 * proportion to weight / (active requests + 1), Envoy's effective weight with its default
 * active_request_bias of 1.
 */
import type { LoadBalancer } from './istio-types.js';

export interface BalancerState {
  next: number;
  /** Active requests by endpoint key. */
  active: Map<string, number>;
  /** Smooth weighted round robin: each endpoint's running credit, by key. */
  credit?: Map<string, number>;
}

/** An endpoint's load-balancing weight: Istio's `weight`, where 0 or absent means 1. */
export function endpointWeight(weight: number | undefined): number {
  return weight !== undefined && weight > 0 ? weight : 1;
}

export function pickEndpoint<T>(
  candidates: readonly T[],
  key: (c: T) => string,
  lb: LoadBalancer,
  state: BalancerState,
  random: () => number = Math.random,
  weight: (c: T) => number = () => 1,
): T {
  if (candidates.length === 1) return candidates[0]!;
  const w0 = weight(candidates[0]!);
  if (candidates.some((c) => weight(c) !== w0)) return pickWeighted(candidates, key, lb, state, random, weight);
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

function pickWeighted<T>(candidates: readonly T[], key: (c: T) => string, lb: LoadBalancer, state: BalancerState, random: () => number, weight: (c: T) => number): T {
  switch (lb) {
    case 'ROUND_ROBIN': {
      // Every pick, each endpoint earns its weight; the richest is chosen and pays the total.
      // Over a cycle of sum(weights) picks each endpoint is chosen exactly weight times.
      const credit = (state.credit ??= new Map());
      let total = 0;
      let best: T | undefined;
      let bestCredit = -Infinity;
      for (const c of candidates) {
        const w = weight(c);
        total += w;
        const k = key(c);
        const now = (credit.get(k) ?? 0) + w;
        credit.set(k, now);
        if (now > bestCredit) (best = c), (bestCredit = now);
      }
      credit.set(key(best!), bestCredit - total);
      return best!;
    }
    case 'RANDOM':
      return drawByWeight(candidates, weight, random);
    case 'LEAST_REQUEST':
      return drawByWeight(candidates, (c) => weight(c) / ((state.active.get(key(c)) ?? 0) + 1), random);
  }
}

function drawByWeight<T>(candidates: readonly T[], weight: (c: T) => number, random: () => number): T {
  const total = candidates.reduce((sum, c) => sum + weight(c), 0);
  let point = random() * total;
  for (const c of candidates) {
    point -= weight(c);
    if (point < 0) return c;
  }
  return candidates[candidates.length - 1]!;
}
