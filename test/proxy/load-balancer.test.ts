/**
 * The balancers' weighted forms (ServiceEntry endpoint `weight`): exact shares for round robin
 * over a cycle, proportional draws for RANDOM, and LEAST_REQUEST's weight / (active + 1).
 */
import test from 'ava';
import { endpointWeight, pickEndpoint, type BalancerState } from '../../src/proxy/load-balancer.js';
import { SeededRandom } from '../helpers/seeded-random.js';

interface Ep { key: string; weight: number }
const eps = (...weights: number[]): Ep[] => weights.map((weight, i) => ({ key: `ep${i}`, weight }));
const key = (e: Ep) => e.key;
const weight = (e: Ep) => e.weight;
const fresh = (): BalancerState => ({ next: 0, active: new Map() });

function counts(picks: Ep[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of picks) out[p.key] = (out[p.key] ?? 0) + 1;
  return out;
}

/** A seeded generator, so the proportional draws are the same on every run. */
const seeded = (seed: number) => {
  const r = new SeededRandom(seed);
  return () => r.next();
};

test('weighted round robin: each cycle of sum(weights) picks gives every endpoint exactly its weight, spread out', (t) => {
  const list = eps(5, 1, 2);
  const state = fresh();
  for (let cycle = 0; cycle < 3; cycle++) {
    const picks = Array.from({ length: 8 }, () => pickEndpoint(list, key, 'ROUND_ROBIN', state, Math.random, weight));
    t.deepEqual(counts(picks), { ep0: 5, ep1: 1, ep2: 2 });
    // Smooth: the heavy endpoint is never picked more than twice in a row within 5:1:2.
    t.false(picks.map(key).join(',').includes('ep0,ep0,ep0'), picks.map(key).join(','));
  }
});

test('equal weights keep the plain balancers (round robin in order)', (t) => {
  const list = eps(4, 4, 4);
  const state = fresh();
  t.deepEqual(Array.from({ length: 6 }, () => pickEndpoint(list, key, 'ROUND_ROBIN', state, Math.random, weight).key), ['ep0', 'ep1', 'ep2', 'ep0', 'ep1', 'ep2']);
});

test('weighted RANDOM draws in proportion to weight', (t) => {
  const list = eps(9, 1);
  const rnd = seeded(7);
  const c = counts(Array.from({ length: 10_000 }, () => pickEndpoint(list, key, 'RANDOM', fresh(), rnd, weight)));
  t.true(c['ep0']! > 8700 && c['ep0']! < 9300, JSON.stringify(c));
});

test('weighted LEAST_REQUEST: weight / (active + 1), so a busy heavy endpoint yields to an idle light one', (t) => {
  const list = eps(4, 1);
  const rnd = seeded(11);
  const idle = counts(Array.from({ length: 10_000 }, () => pickEndpoint(list, key, 'LEAST_REQUEST', fresh(), rnd, weight)));
  t.true(idle['ep0']! > 7700 && idle['ep0']! < 8300, `idle: ${JSON.stringify(idle)}`);
  // ep0 with 7 active requests: 4/8 = 0.5 against 1/1: ep1 gets two thirds.
  const busy: BalancerState = { next: 0, active: new Map([['ep0', 7]]) };
  const c = counts(Array.from({ length: 10_000 }, () => pickEndpoint(list, key, 'LEAST_REQUEST', busy, rnd, weight)));
  t.true(c['ep1']! > 6300 && c['ep1']! < 7000, `busy: ${JSON.stringify(c)}`);
});

test('an endpoint weight of 0 or none is 1', (t) => {
  t.is(endpointWeight(undefined), 1);
  t.is(endpointWeight(0), 1);
  t.is(endpointWeight(7), 7);
});
