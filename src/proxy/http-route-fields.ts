/**
 * Small readers for the fields of a VirtualService `http` route, shared by the readers of its
 * parts (fault, rewrite, redirect): each checks one value and reports a bad one through `fail`
 * with the field's path and what is accepted.
 */
import type { FieldFail } from './http-retry.js';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `o[key]` when it is a string, undefined when absent; `field` is the path of `o`. */
export function optString(o: Obj, key: string, field: string, fail: FieldFail): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(`${field}.${key}`, v, 'a string');
  return v;
}

/** `v` when it is an integer from `min` to `max`; else `fail(field, v, accepted)`. */
export function integerIn(v: unknown, min: number, max: number, field: string, accepted: string, fail: FieldFail): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(field, v, accepted);
  return v;
}
