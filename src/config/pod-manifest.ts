/**
 * Finds the pod annotations in a Kubernetes manifest (YAML or JSON, one or more documents):
 * a Pod's metadata.annotations, or the pod template's of a workload (Deployment, StatefulSet,
 * DaemonSet, ReplicaSet, Job, CronJob). Pure: takes the text, returns the map.
 */
import { yamlDocuments, YamlInputError } from './yaml-input.js';
import { ValidationError } from '../errors/validation-error.js';

/** Where each kind keeps the annotations the sidecar injector reads. */
const TEMPLATE_PATHS: Record<string, readonly string[]> = {
  Pod: ['metadata', 'annotations'],
  Deployment: ['spec', 'template', 'metadata', 'annotations'],
  StatefulSet: ['spec', 'template', 'metadata', 'annotations'],
  DaemonSet: ['spec', 'template', 'metadata', 'annotations'],
  ReplicaSet: ['spec', 'template', 'metadata', 'annotations'],
  ReplicationController: ['spec', 'template', 'metadata', 'annotations'],
  Job: ['spec', 'template', 'metadata', 'annotations'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'metadata', 'annotations'],
};

/** A workload found in the manifest and its pod annotations. */
export interface PodAnnotations {
  readonly kind: string;
  readonly name: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * The pod annotations of the one workload in `text` (or of the one named `name`). `what` names
 * the input in errors (a file name or "stdin"). Documents of other kinds (Services,
 * ConfigMaps …) are skipped.
 */
export function podAnnotationsFromManifest(text: string, what: string, name?: string): PodAnnotations {
  const workloads: PodAnnotations[] = [];
  let values: unknown[];
  try {
    values = yamlDocuments(text);
  } catch (err) {
    if (!(err instanceof YamlInputError)) throw err;
    throw new ValidationError(`${what} document ${err.document}`, err.reason, `a YAML or JSON Kubernetes manifest (${err.accepted})`);
  }
  for (const value of values) {
    if (value === null || value === undefined) continue;
    // kubectl get -o json/yaml of several objects gives a List.
    const items = isObject(value) && value.kind === 'List' && Array.isArray(value.items) ? value.items : [value];
    for (const item of items) {
      // hasOwn, not `in`: a kind named toString or constructor is Object.prototype's, not a workload.
      if (!isObject(item) || typeof item.kind !== 'string' || !Object.hasOwn(TEMPLATE_PATHS, item.kind)) continue;
      const raw = dig(item, TEMPLATE_PATHS[item.kind]!);
      const annotations: Record<string, string> = {};
      if (isObject(raw)) {
        for (const [k, v] of Object.entries(raw)) {
          if (typeof v !== 'string') {
            throw new ValidationError(`${what}: annotation ${k}`, v, 'a string (quote numbers in YAML: "15020")');
          }
          annotations[k] = v;
        }
      }
      const name = dig(item, ['metadata', 'name']);
      workloads.push({ kind: item.kind, name: typeof name === 'string' ? name : '', annotations });
    }
  }
  const chosen = name === undefined ? workloads : workloads.filter((w) => w.name === name);
  const listed = workloads.map((w) => `${w.kind}/${w.name}`).join(', ');
  if (chosen.length === 1) return chosen[0]!;
  if (workloads.length === 0) {
    throw new ValidationError(what, '(no workload)', `a manifest holding a Pod or a workload with a pod template (${Object.keys(TEMPLATE_PATHS).join(', ')})`);
  }
  if (name !== undefined && chosen.length === 0) {
    throw new ValidationError('--name', name, `the name of a workload in ${what}: ${listed}`);
  }
  throw new ValidationError(what, `${chosen.length} workloads (${listed})`, 'one workload, or --name to pick one');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function dig(v: unknown, path: readonly string[]): unknown {
  let cur = v;
  for (const key of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}
