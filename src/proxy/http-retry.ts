/**
 * VirtualService `retries` with Envoy's router semantics, as Istio configures them
 * (pilot retry.ConvertPolicy): a route without `retries` gets Istio's default policy (2
 * retries on connect-failure, refused-stream, unavailable, cancelled and status 503);
 * `attempts: 0` turns retries off; numbers in `retryOn` are retriable status codes. Which
 * outcome of an attempt is retried follows Envoy's retry_on conditions; the wait between tries
 * is Envoy's fully jittered exponential back-off (base 25 ms, cap 10 × base). When the retries
 * run out on an outcome that would have been retried, the log gets Envoy's URX flag.
 *
 * Only what decides retries lives here; retry-driver.ts runs the attempts for every forward
 * path, and http-retry-body.ts keeps the request body so that it can be sent again.
 */
import { goDurationMs } from '../config/value-parsers.js';
import { RETRY_CONDITIONS, type RetryCondition, type RetryPolicy } from './istio-types.js';
import type { ReplayableBody } from './http-retry-body.js';

/** Reports a bad field: `field` relative to the route (`retries.retryOn`). */
export type FieldFail = (field: string, value: unknown, accepted: string) => never;

const ENVOY_BASE_INTERVAL_MS = 25;

/** Istio's DefaultPolicy() for every HTTP route without `retries`. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  retries: 2,
  on: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
  statusCodes: [503],
  backoffBaseMs: ENVOY_BASE_INTERVAL_MS,
}) as RetryPolicy;

/** Envoy retry_on conditions valid in Istio that interpose proxy does not implement. */
const NOT_IMPLEMENTED = ['retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure', 'reset-before-request'];

/** Reads a route's `retries`: null means retries are off (`attempts: 0`). */
export function readRetries(raw: unknown, fail: FieldFail): RetryPolicy | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('retries', raw, 'a mapping');
  const o = raw as Record<string, unknown>;
  const attempts = o['attempts'] ?? 0;
  if (typeof attempts !== 'number' || !Number.isInteger(attempts) || attempts < 0) {
    fail('retries.attempts', attempts, 'a non-negative integer');
  }
  // Istio: attempts 0 (or absent) disables retries, whatever else is set.
  if (attempts === 0) return null;
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, on: [...DEFAULT_RETRY_POLICY.on], statusCodes: [...DEFAULT_RETRY_POLICY.statusCodes], retries: attempts };
  if (o['perTryTimeout'] !== undefined) policy.perTryTimeoutMs = duration(o['perTryTimeout'], 'retries.perTryTimeout', fail);
  if (o['retryOn'] !== undefined && o['retryOn'] !== '') {
    if (typeof o['retryOn'] !== 'string') fail('retries.retryOn', o['retryOn'], 'a comma-separated list of Envoy retry conditions');
    const parsed = parseRetryOn(o['retryOn']);
    if ('unknown' in parsed) {
      const why = NOT_IMPLEMENTED.includes(parsed.unknown) ? `"${parsed.unknown}" is not implemented; ` : '';
      fail('retries.retryOn', parsed.unknown, `${why}conditions ${RETRY_CONDITIONS.join(', ')} or HTTP status codes`);
    }
    policy.on = parsed.on;
    if (parsed.codes.length > 0) {
      policy.statusCodes = parsed.codes;
      if (!policy.on.includes('retriable-status-codes')) policy.on.push('retriable-status-codes');
    }
  }
  return policy;
}

function duration(v: unknown, field: string, fail: FieldFail): number {
  const ms = typeof v === 'string' ? goDurationMs(v) : undefined;
  if (ms === undefined || ms <= 0) fail(field, v, 'a positive duration such as "2s" or "250ms"');
  return ms;
}

/** Istio's parseRetryOn: numbers that are HTTP status codes go to the status list. */
export function parseRetryOn(text: string): { on: RetryCondition[]; codes: number[] } | { unknown: string } {
  const on: RetryCondition[] = [];
  const codes: number[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    if (/^\d{3}$/.test(part) && Number(part) >= 100 && Number(part) <= 599) codes.push(Number(part));
    else if ((RETRY_CONDITIONS as readonly string[]).includes(part)) on.push(part as RetryCondition);
    else return { unknown: part };
  }
  return { on, codes };
}

/** How one attempt ended, in the terms retry_on conditions speak. */
export type AttemptOutcome =
  | { kind: 'response'; status: number; grpcStatus?: number }
  /** No connection: refused, unreachable, connect timeout (Envoy: connection failure, flag UF). */
  | { kind: 'connect-failure' }
  /** Connected, but the upstream closed or reset before answering (flag UC); HTTP/2 REFUSED_STREAM is `refused`. */
  | { kind: 'reset'; refused?: boolean }
  | { kind: 'per-try-timeout' };

/** The gRPC status each of Envoy's gRPC retry_on conditions retries (also the fast path's, as data). */
export const GRPC_CONDITIONS: Partial<Record<RetryCondition, number>> = {
  cancelled: 1,
  'deadline-exceeded': 4,
  'resource-exhausted': 8,
  internal: 13,
  unavailable: 14,
};

/** Whether Envoy's retry_on conditions retry this outcome. */
export function isRetriable(policy: RetryPolicy, outcome: AttemptOutcome): boolean {
  const on = (c: RetryCondition) => policy.on.includes(c);
  switch (outcome.kind) {
    case 'connect-failure':
      return on('5xx') || on('gateway-error') || on('reset') || on('connect-failure');
    case 'reset':
      return on('5xx') || on('gateway-error') || on('reset') || (outcome.refused === true && on('refused-stream'));
    case 'per-try-timeout':
      return on('5xx') || on('gateway-error') || on('reset');
    case 'response': {
      const s = outcome.status;
      if (on('5xx') && s >= 500) return true;
      if (on('gateway-error') && (s === 502 || s === 503 || s === 504)) return true;
      if (on('retriable-4xx') && s === 409) return true;
      if (on('retriable-status-codes') && policy.statusCodes.includes(s)) return true;
      if (outcome.grpcStatus !== undefined) {
        return policy.on.some((c) => GRPC_CONDITIONS[c] === outcome.grpcStatus);
      }
      return false;
    }
  }
}

/** Envoy's JitteredExponentialBackOffStrategy: retry n waits random() % ((2^n − 1) × base), capped at 10 × base. */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = (2 ** Math.min(retry, 30) - 1) * policy.backoffBaseMs;
  return Math.min(Math.floor(random() * ceiling), policy.backoffBaseMs * 10);
}

/**
 * How a Node error ended an attempt that had no response yet, as the forward paths already
 * tell UF from UC: a reset of a connection that was up, else a connection failure.
 */
export function outcomeOfError(err: NodeJS.ErrnoException): AttemptOutcome {
  if (err.code === 'ECONNRESET') return { kind: 'reset' };
  if (err.code === 'ERR_HTTP2_STREAM_ERROR') return { kind: 'reset', refused: /REFUSED_STREAM/.test(err.message) };
  return { kind: 'connect-failure' };
}

/** Sets the x-envoy-attempt-count entry (added by envoyRequestHeaders) of a header list. */
export function setAttemptCount(headers: [string, string][], attempt: number): void {
  const entry = headers.find(([n]) => n === 'x-envoy-attempt-count');
  if (entry) entry[1] = String(attempt);
}

/**
 * The grpc-status of a trailers-only answer, which is what Envoy's gRPC retry conditions read:
 * a grpc-status in trailers comes after the answer began, too late to retry (as in Envoy).
 */
export function grpcStatusOf(headers: Record<string, unknown>): number | undefined {
  const v = headers['grpc-status'];
  return v === undefined ? undefined : Number(v);
}

/**
 * The retry bookkeeping of one request: which attempt this is, whether another one should
 * follow an outcome, and whether the retries ran out (URX).
 */
export class RetryState {
  /** 1 for the first try; sent upstream as x-envoy-attempt-count. */
  attempt = 1;
  /** The last outcome was retriable but no retry was left (Envoy: URX). */
  limitExceeded = false;

  constructor(
    readonly policy: RetryPolicy | undefined,
    readonly body: ReplayableBody | undefined,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The back-off in ms before the next attempt if `outcome` is to be retried (the attempt
   * counter moves on), else undefined. A body that could not be kept whole is never replayed.
   */
  retryAfter(outcome: AttemptOutcome): number | undefined {
    const p = this.policy;
    if (!p || !isRetriable(p, outcome)) return undefined;
    if (!this.body?.replayable) return undefined;
    if (this.attempt > p.retries) {
      this.limitExceeded = true;
      return undefined;
    }
    const wait = backoffMs(p, this.attempt, this.random);
    this.attempt++;
    return wait;
  }

  /** `flag` as the log shows it: with ",URX" when the retries ran out. */
  flag(flag: string): string {
    if (!this.limitExceeded) return flag;
    return flag === '-' ? 'URX' : `${flag},URX`;
  }
}
