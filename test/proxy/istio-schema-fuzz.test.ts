/**
 * No config can crash the loader: thousands of mutated valid resources (types changed, fields
 * dropped or duplicated, random unicode, huge numbers, nulls) each end in a clean load or a
 * ValidationError, never another exception. Bounded to a few seconds; the seed is printed and
 * FUZZ_SEED=<seed> replays a run (FUZZ_RUNS raises the number of cases).
 */
import test from 'ava';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { ValidationError } from '../../src/errors/index.js';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import * as seed from '../../src/lab/seed-resources.js';

const richVirtualService = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [api.example.com]
  gateways: [mesh]
  exportTo: ["."]
  http:
  - name: canary
    match:
    - headers: {x-canary: {exact: "yes"}, x-user: {regex: "(?i)bob.*"}}
      withoutHeaders: {x-debug: {}}
      queryParams: {v: {prefix: "2"}}
      method: {exact: GET}
      authority: {prefix: api.}
      scheme: {exact: http}
      uri: {prefix: /api}
      ignoreUriCase: true
      port: 80
    - uri: {regex: "/v[0-9]+/.*"}
    timeout: 2s
    route:
    - destination: {host: api.example.com, port: {number: 80}, subset: v2}
      weight: 90
    - destination: {host: api.example.com}
      weight: 10
  tcp:
  - match: [{port: 5432}]
    route: [{destination: {host: db.example.com}}]
`;

const staticEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com, "*.example.org"]
  addresses: [192.0.2.0/24]
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
  - {number: 5432, name: tcp, protocol: TCP}
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints:
  - address: 192.0.2.10
    ports: {http: 8081}
`;

const destinationRule = `apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: api}
spec:
  host: api.example.com
  trafficPolicy: {tls: {mode: DISABLE}}
  subsets: [{name: v2}]
`;

const SEEDS: unknown[] = [
  seed.httpbinServiceEntry,
  seed.googleServiceEntry,
  seed.httpbinTimeout,
  ...seed.egressGateway.split(/^---\n/m),
  richVirtualService,
  staticEntry,
  destinationRule,
].map((text) => parse(text));

type Node = { parent: Record<string, unknown> | unknown[]; key: string | number };

/** Every place in `doc` that holds a value, parents before children. */
function places(doc: unknown): Node[] {
  const out: Node[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((item, i) => (out.push({ parent: v, key: i }), walk(item)));
    else if (v && typeof v === 'object') for (const k of Object.keys(v)) out.push({ parent: v as Record<string, unknown>, key: k }), walk((v as Record<string, unknown>)[k]);
  };
  walk(doc);
  return out;
}

const weirdValue = fc.oneof(
  fc.constant(null),
  fc.constant({}),
  fc.constant([]),
  // A parsed mapping whose own keys shadow Object.prototype's: String() of it throws.
  fc.constant({ toString: null }),
  fc.constant({ toString: 'x', valueOf: [] }),
  fc.constant({ constructor: null }),
  fc.boolean(),
  fc.integer(),
  fc.constantFrom(0, -1, 65536, 2 ** 31, 2 ** 53 + 1, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 0.5),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', '*', '.*', '(', 'a)|(b', '(a)\\1', '~', '__proto__', 'constructor', 'MESH_INTERNAL', 'REGISTRY_ONLY', 'DISABLE', 'SIMPLE', '3s', '-1s'),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)), { maxKeys: 3 }),
);

const mutation = fc.record({
  at: fc.nat(),
  action: fc.constantFrom('set', 'delete', 'duplicate', 'rename', 'wrap'),
  value: weirdValue,
  name: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('retries', 'retires', 'headers', 'exportTo', 'workloadSelector', 'sourceLabels', 'fault', '__proto__', 'constructor')),
});

/** One edit, as `mutation` generates it. */
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(doc: unknown, ops: Mutation[]): unknown {
  for (const op of ops) {
    const all = places(doc);
    if (all.length === 0) return op.value;
    const { parent, key } = all[op.at % all.length]!;
    const p = parent as Record<string | number, unknown>;
    switch (op.action) {
      case 'set':
        // A copy: fast-check hands out the same constant objects to every case, and later
        // mutations would otherwise change them (and so the inputs of every later case).
        p[key] = structuredClone(op.value);
        break;
      case 'delete':
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete p[key];
        break;
      case 'duplicate':
        if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
        else p[`${String(key)}${op.name}`] = structuredClone(p[key]);
        break;
      case 'rename':
        if (!Array.isArray(parent)) {
          Object.defineProperty(p, op.name, { value: p[key], enumerable: true, configurable: true, writable: true });
          delete p[key];
        }
        break;
      case 'wrap':
        p[key] = [p[key]];
        break;
    }
  }
  return doc;
}

test('mutated Istio resources load cleanly or fail with a ValidationError, never another exception', (t) => {
  const seedValue = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  console.log(`istio config fuzz: FUZZ_SEED=${seedValue}`);
  t.log(`FUZZ_SEED=${seedValue}`);
  parseProxyConfig(SEEDS.map((d) => stringify(d)).join('---\n')); // compile the schemas outside the time budget
  let loaded = 0;
  let refused = 0;
  const check = () => fc.assert(
    fc.property(fc.nat(SEEDS.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (which, ops, asText) => {
      const doc = mutate(structuredClone(SEEDS[which]), ops);
      let text: string;
      try {
        text = stringify(doc);
      } catch {
        return; // not expressible as YAML: nothing the loader could ever be given
      }
      // Half the cases also get raw-text damage: a unicode character spliced in.
      if (asText) text = text.slice(0, ops[0]!.at % (text.length + 1)) + String(ops[0]!.name).slice(0, 2) + text.slice(ops[0]!.at % (text.length + 1));
      try {
        parseProxyConfig(text, 'fuzz.yaml');
        loaded++;
      } catch (err) {
        if (!(err instanceof ValidationError)) {
          throw new Error(`FUZZ_SEED=${seedValue}: ${(err as Error).stack}\n--- input ---\n${text}`);
        }
        refused++;
      }
    }),
    { seed: seedValue, numRuns: Number(process.env['FUZZ_RUNS'] ?? 20_000), interruptAfterTimeLimit: 5000, markInterruptAsFailure: false },
  );
  try {
    check();
  } catch (err) {
    // fast-check attaches the property's own error as the cause, which ava does not print.
    const cause = (err as Error).cause;
    throw new Error(`${(err as Error).message}\n${cause instanceof Error ? cause.message : ''}`);
  }
  t.log(`${loaded} loaded, ${refused} refused`);
  t.true(loaded + refused >= 200, `only ${loaded + refused} cases ran`);
  t.true(loaded > 0 && refused > 0, `${loaded} loaded, ${refused} refused: the mutations should produce both`);
});
