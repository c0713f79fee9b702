/**
 * VirtualService `fault` as Envoy's HTTP fault filter applies it: a fixed delay for a
 * percentage of requests (flag DI), then an abort for a percentage (flag FI) answered by the
 * proxy with the configured HTTP status and the body "fault filter abort", or for gRPC
 * requests with the grpc-status. A missing percentage means every request (Istio sends 100%).
 */
import { goDurationMs } from '../config/value-parsers.js';
import type { FieldFail } from './http-retry.js';
import { integerIn, isObj, type Obj } from './http-route-fields.js';
import type { FaultPolicy } from './istio-types.js';

export const FAULT_ABORT_BODY = 'fault filter abort';

/** gRPC status names Istio accepts in abort.grpcStatus, by code. */
const GRPC_CODES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
];

/** `percentage.value` (0-100, fractions allowed) or the deprecated integer `percent`, as a fraction. */
function fraction(o: Obj, field: string, fail: FieldFail): number {
  if (o['percentage'] !== undefined) {
    const v = isObj(o['percentage']) ? o['percentage']['value'] : o['percentage'];
    if (typeof v !== 'number' || !(v >= 0 && v <= 100)) fail(`${field}.percentage.value`, v, 'a number from 0 to 100');
    return v / 100;
  }
  if (o['percent'] !== undefined) {
    return integerIn(o['percent'], 0, 100, `${field}.percent`, 'an integer from 0 to 100', fail) / 100;
  }
  return 1;
}

export function readFault(raw: unknown, fail: FieldFail): FaultPolicy {
  if (!isObj(raw)) fail('fault', raw, 'a mapping');
  const out: FaultPolicy = {};
  if (raw['delay'] !== undefined) {
    const d = raw['delay'];
    if (!isObj(d)) fail('fault.delay', d, 'a mapping');
    if (d['exponentialDelay'] !== undefined) fail('fault.delay.exponentialDelay', d['exponentialDelay'], 'fixedDelay (Istio does not support exponentialDelay either)');
    const ms = typeof d['fixedDelay'] === 'string' ? goDurationMs(d['fixedDelay']) : undefined;
    if (ms === undefined) fail('fault.delay.fixedDelay', d['fixedDelay'], 'a duration such as "5s" or "100ms"');
    out.delay = { ms, fraction: fraction(d, 'fault.delay', fail) };
  }
  if (raw['abort'] !== undefined) {
    const a = raw['abort'];
    if (!isObj(a)) fail('fault.abort', a, 'a mapping');
    if (a['http2Error'] !== undefined) fail('fault.abort.http2Error', a['http2Error'], 'httpStatus or grpcStatus (http2Error is not implemented)');
    const abort: NonNullable<FaultPolicy['abort']> = { fraction: fraction(a, 'fault.abort', fail) };
    if (a['httpStatus'] !== undefined) abort.httpStatus = integerIn(a['httpStatus'], 200, 599, 'fault.abort.httpStatus', 'an HTTP status from 200 to 599', fail);
    if (a['grpcStatus'] !== undefined) {
      const g = a['grpcStatus'];
      const code = typeof g === 'string' ? GRPC_CODES.indexOf(g.toUpperCase()) : -1;
      if (code < 0) fail('fault.abort.grpcStatus', g, `a gRPC status name: ${GRPC_CODES.join(', ')}`);
      abort.grpcStatus = code;
    }
    if (abort.httpStatus === undefined && abort.grpcStatus === undefined) fail('fault.abort', a, 'httpStatus or grpcStatus');
    out.abort = abort;
  }
  if (!out.delay && !out.abort) fail('fault', raw, 'delay or abort');
  return out;
}

/** What the fault filter does to one request; `random` in [0,1) is injectable for tests. */
export function faultFor(
  fault: FaultPolicy | undefined,
  random: () => number = Math.random,
): { delayMs?: number; abort?: { httpStatus?: number; grpcStatus?: number } } {
  if (!fault) return {};
  const out: { delayMs?: number; abort?: { httpStatus?: number; grpcStatus?: number } } = {};
  if (fault.delay && random() < fault.delay.fraction) out.delayMs = fault.delay.ms;
  if (fault.abort && random() < fault.abort.fraction) {
    out.abort = {
      ...(fault.abort.httpStatus !== undefined ? { httpStatus: fault.abort.httpStatus } : {}),
      ...(fault.abort.grpcStatus !== undefined ? { grpcStatus: fault.abort.grpcStatus } : {}),
    };
  }
  return out;
}
