/**
 * Checks an Istio networking resource against Istio's own CRD schema, as the API server would
 * before anything is stored: the schemas and their validator come from the npm package
 * `@kubernetes-models/istio` (generated from Istio 1.18's crd-all.gen.yaml; its 3.x line, with
 * later Istio schemas, needs Node 22). `networking.istio.io/v1` is checked against `v1beta1`:
 * Istio promoted the v1beta1 protos to v1 unchanged.
 *
 * Istio's CRDs do not set `additionalProperties: false`, so the validator alone would accept a
 * misspelled `retires:`. kube-apiserver rejects it through pruning / strict field validation,
 * which walks the schema's `properties`; walkFields does the same, and also reports every field
 * present (with its schema-shaped pattern) for the field policy to judge.
 */
import { validate } from '@kubernetes-models/validate';
import { DestinationRule as DestinationRuleV1alpha3 } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/DestinationRule';
import { Gateway as GatewayV1alpha3 } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/Gateway';
import { ServiceEntry as ServiceEntryV1alpha3 } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/ServiceEntry';
import { VirtualService as VirtualServiceV1alpha3 } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/VirtualService';
import { DestinationRule as DestinationRuleV1beta1 } from '@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule';
import { Gateway as GatewayV1beta1 } from '@kubernetes-models/istio/networking.istio.io/v1beta1/Gateway';
import { ServiceEntry as ServiceEntryV1beta1 } from '@kubernetes-models/istio/networking.istio.io/v1beta1/ServiceEntry';
import { VirtualService as VirtualServiceV1beta1 } from '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService';
import { ValidationError } from '../errors/index.js';
import { IstioFieldError, printable } from './istio-field-error.js';

export const ISTIO_KINDS = ['ServiceEntry', 'VirtualService', 'DestinationRule', 'Gateway'] as const;
export type IstioKind = (typeof ISTIO_KINDS)[number];

/** One field present in a resource. */
export interface PresentField {
  /** Where it is, for messages: `spec.http[0].match[1].headers.x-user.exact`. */
  path: string;
  /** The same place in the schema's terms: `spec.http[].match[].headers.*.exact`. */
  pattern: string;
  value: unknown;
}

/** The subset of JSON Schema the generated CRD schemas use and the walk needs. */
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
  $ref?: string;
  enum?: unknown[];
  required?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: Schema;
  schema?: unknown;
  data?: unknown;
}

type ModelClass = new (data: object) => { validate(): void };

const MODELS: Record<string, Record<IstioKind, ModelClass>> = {
  v1alpha3: {
    ServiceEntry: ServiceEntryV1alpha3,
    VirtualService: VirtualServiceV1alpha3,
    DestinationRule: DestinationRuleV1alpha3,
    Gateway: GatewayV1alpha3,
  },
  v1beta1: {
    ServiceEntry: ServiceEntryV1beta1,
    VirtualService: VirtualServiceV1beta1,
    DestinationRule: DestinationRuleV1beta1,
    Gateway: GatewayV1beta1,
  },
};

const GROUP = 'networking.istio.io';

/** The schema version that checks `version` (v1 is v1beta1 promoted unchanged). */
function schemaVersion(version: string): string {
  return version === 'v1' ? 'v1beta1' : version;
}

const schemaCache = new Map<string, Schema>();

/**
 * The schema registered under `id`. The package keeps its schema objects private, but its
 * validator runs ajv with `verbose: true`, whose errors carry the schema they were checked
 * against: a document that is not even an object fails at the root and hands back the root.
 */
function registeredSchema(id: string): Schema {
  const known = schemaCache.get(id);
  if (known) return known;
  let root: Schema | undefined;
  try {
    validate(id, 0);
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    root = errors?.find((e) => e.instancePath === '')?.parentSchema;
  }
  if (!root) throw new Error(`schema ${id} not found in @kubernetes-models/istio`);
  schemaCache.set(id, root);
  return root;
}

function modelFor(kind: IstioKind, version: string): ModelClass {
  const model = MODELS[schemaVersion(version)]?.[kind];
  if (!model) throw new Error(`no schema for ${GROUP}/${version} ${kind}`);
  return model;
}

function rootSchema(kind: IstioKind, version: string): Schema {
  const id = `${GROUP}.${schemaVersion(version)}.${kind}`;
  if (!schemaCache.has(id)) {
    // Constructing and validating an empty model registers its schema (and ObjectMeta's).
    try {
      new (modelFor(kind, version))({}).validate();
    } catch {
      // An empty resource is invalid; only the registration matters here.
    }
  }
  return registeredSchema(id);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const resolved = new WeakMap<Schema, Schema>();

/** `$ref` targets and oneOf/anyOf/allOf branches folded into one schema for field lookup. */
function resolve(schema: Schema): Schema {
  let r = resolved.get(schema);
  if (!r) resolved.set(schema, (r = fold(schema)));
  return r;
}

function fold(schema: Schema): Schema {
  const parts: Schema[] = [schema];
  if (schema.$ref) parts.push(resolve(registeredSchema(schema.$ref.replace(/#$/, ''))));
  for (const group of [schema.oneOf, schema.anyOf, schema.allOf]) {
    for (const branch of group ?? []) if (branch.$ref || branch.properties || branch.items) parts.push(resolve(branch));
  }
  if (parts.length === 1) return schema;
  const merged: Schema = {};
  for (const p of parts) {
    if (p.properties) merged.properties = { ...merged.properties, ...p.properties };
    if (p.items) merged.items = p.items;
    if (p.additionalProperties !== undefined) merged.additionalProperties = p.additionalProperties;
    if (p['x-kubernetes-preserve-unknown-fields']) merged['x-kubernetes-preserve-unknown-fields'] = true;
  }
  return merged;
}

/** `.name` for plain keys, `["odd key"]` for keys a reader could not tell apart from a path. */
function keySegment(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function join(path: string, segment: string): string {
  return path === '' ? segment.replace(/^\./, '') : path + segment;
}

/**
 * Walks `value` along `schema`: returns every field present, and throws on the first field the
 * schema does not define. Maps (`additionalProperties`) and fields the schema leaves free-form
 * (no `properties`, or `x-kubernetes-preserve-unknown-fields`) are not looked into, as the
 * API server's pruning does not look into them.
 */
function walkFields(schema: Schema, value: unknown, at: { path: string; pattern: string }, out: PresentField[], fail: (path: string, value: unknown, known: string[], parent: string) => never): void {
  const s = resolve(schema);
  if (Array.isArray(value) && s.items) {
    value.forEach((item, i) => {
      const here = { path: `${at.path}[${i}]`, pattern: `${at.pattern}[]` };
      out.push({ ...here, value: item });
      walkFields(s.items!, item, here, out, fail);
    });
    return;
  }
  if (!isObj(value)) return;
  if (s['x-kubernetes-preserve-unknown-fields']) return;
  const props = s.properties && Object.keys(s.properties).length > 0 ? s.properties : undefined;
  const map = typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined;
  if (!props && !map) return;
  for (const [key, v] of Object.entries(value)) {
    const path = join(at.path, keySegment(key));
    if (props && Object.hasOwn(props, key)) {
      const here = { path, pattern: join(at.pattern, `.${key}`) };
      out.push({ ...here, value: v });
      walkFields(props[key]!, v, here, out, fail);
    } else if (map) {
      const here = { path, pattern: `${at.pattern}.*` };
      out.push({ ...here, value: v });
      walkFields(map, v, here, out, fail);
    } else {
      fail(path, v, Object.keys(props!), at.path);
    }
  }
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  null: 'null',
};

const FORMAT_WORDS: Record<string, string> = {
  int32: 'an integer from -2147483648 to 2147483647',
  uint32: 'an integer from 0 to 4294967295',
  int64: 'a 64-bit integer',
  double: 'a number',
  float: 'a number',
};

/** What the failing schema keyword accepts, in words. */
function acceptedText(e: AjvError): string {
  switch (e.keyword) {
    case 'type':
      return String(e.params['type'])
        .split(',')
        .map((t) => TYPE_WORDS[t] ?? t)
        .join(' or ');
    case 'enum':
      return `one of ${(e.params['allowedValues'] as unknown[]).join(', ')}`;
    case 'format':
      return FORMAT_WORDS[String(e.params['format'])] ?? `a value of format ${String(e.params['format'])}`;
    case 'oneOf': {
      // Istio writes a protobuf oneof as branches that each require one field.
      const names = (e.parentSchema?.oneOf ?? []).flatMap((b) => b.required ?? []);
      return names.length > 0 ? `only one of ${names.join(', ')}` : (e.message ?? 'one schema of oneOf');
    }
    case 'required':
      return 'a value (the field is required)';
    default:
      return e.message ?? e.keyword;
  }
}

/** `/spec/http/0/match` → `spec.http[0].match`. */
function pathOf(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^\d+$/.test(key) ? `${path}[${key}]` : join(path, keySegment(key));
  }
  return path;
}

/**
 * Validates `doc` (a parsed resource of `kind`, apiVersion `networking.istio.io/<version>`)
 * against Istio's schema. Throws IstioFieldError naming `resource`, the field path and what is
 * accepted; returns every field present for the field policy.
 */
export function checkIstioSchema(doc: Record<string, unknown>, kind: IstioKind, version: string, resource: string): PresentField[] {
  const root = rootSchema(kind, version);
  const fields: PresentField[] = [];
  walkFields(root, doc, { path: '', pattern: '' }, fields, (path, value, known, parent) => {
    throw new IstioFieldError(
      resource,
      path,
      value,
      `unknown field: Istio's ${kind} has ${known.sort().join(', ')}${parent ? ` at ${parent}` : ''}`,
    );
  });
  const data = version === schemaVersion(version) ? doc : { ...doc, apiVersion: `${GROUP}/${schemaVersion(version)}` };
  let model: { validate(): void };
  try {
    model = new (modelFor(kind, version))(data);
  } catch {
    // The model's constructor copies the resource with is-plain-object, which throws on a
    // mapping whose own key `constructor` is null: name that key rather than crash.
    const at = nullConstructorKey(doc, '');
    throw new IstioFieldError(resource, at ?? '', null, 'a key named "constructor" with a null value cannot be checked against Istio\'s schema; remove it');
  }
  try {
    model.validate();
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    if (!errors || errors.length === 0) throw err;
    // A oneOf failure comes with the failures of its branches ("must NOT be valid"): name the oneOf.
    const oneOfAt = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
    const e = errors.find((x) => !(x.keyword === 'not' && oneOfAt.has(x.instancePath))) ?? errors[0]!;
    const path = pathOf(e.instancePath);
    if (e.keyword === 'required') {
      throw new IstioFieldError(resource, join(path, keySegment(String(e.params['missingProperty']))), undefined, 'required by Istio, missing');
    }
    throw new ValidationError(`${resource} ${path}`, printable(e.data), acceptedText(e));
  }
  return fields;
}

/** The path of the first mapping key `constructor` whose value is null, or undefined. */
function nullConstructorKey(value: unknown, path: string): string | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nullConstructorKey(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
  } else if (isObj(value)) {
    for (const key of Object.keys(value)) {
      const at = join(path, keySegment(key));
      if (key === 'constructor' && value[key] === null) return at;
      const found = nullConstructorKey(value[key], at);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
