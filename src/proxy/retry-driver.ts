/**
 * The tries of one forwarded request, run the same way on every forward path (HTTP/1.1 and
 * HTTP/2 clients; HTTP/1.1 and HTTP/2 upstreams) as Envoy's router runs them:
 * - each try is sent with its number (x-envoy-attempt-count) and the body so far, which
 *   http-retry-body.ts keeps so that the next try can have it again;
 * - after a try's answer or failure the route's retry policy (http-retry.ts) decides whether
 *   another try follows, after Envoy's jittered back-off; a try that is replaced changes
 *   nothing afterwards, whatever it still reports;
 * - `perTryTimeout` bounds each try until its answer begins, the route timeout all tries until
 *   the answer is complete; both start, as Envoy's do, once the client's request has fully
 *   arrived (a streaming gRPC call is not cut short while the client still sends);
 * - Envoy's retry counters: upstream_rq_retry, upstream_rq_retry_limit_exceeded (URX), and
 *   retry_or_shadow_abandoned when the body outgrows the replay buffer while a retry could
 *   still follow (it is then forwarded but never retried, and its failure is logged without
 *   URX); once an answer is relayed nothing more of the body is kept.
 * The forward path supplies how a try is sent, what its answer means and how the client is
 * answered (ForwardPath).
 */
import type { Readable } from 'node:stream';
import type { AccessLogEntry } from './access-log.js';
import { outcomeOfError, RetryState, type AttemptOutcome } from './http-retry.js';
import { ReplayableBody, type BodySink } from './http-retry-body.js';
import type { RetryPolicy } from './istio-types.js';
import type { ProxyMetrics } from './metrics.js';

/**
 * The client's request body as the tries send it: kept for replay, each byte counted once
 * (the log's bytes received, the cluster's bytes sent) however often it is sent. `empty`: the
 * request says it has no body.
 */
export function requestBody(source: Readable, empty: boolean, log: AccessLogEntry, metrics: ProxyMetrics, cluster: { cluster_name: string }): ReplayableBody {
  const count = (n: number) => {
    log.bytesReceived += n;
    metrics.bytesSent.inc(cluster, n);
  };
  return new ReplayableBody(source, count, undefined, empty);
}

/** One try's upstream request: a ClientRequest or a look-alike (Http1UpstreamRequest, Http2UpstreamRequest). */
export interface UpstreamTry<Res> extends BodySink {
  on(event: 'response', listener: (res: Res) => void): unknown;
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown;
  destroy(): unknown;
}

/** What the driver asks of an answer it drops because a retry replaces it. */
interface Droppable {
  resume(): unknown;
}

/** The forward path's part of a request's tries. */
export interface ForwardPath<Res extends Droppable> {
  /** Sends try number `attempt` (1 for the first) upstream; the driver sends the body. */
  send(attempt: number): UpstreamTry<Res>;
  /** What a try's answer means to the retry policy (the path counts the answer per try here). */
  outcome(res: Res): AttemptOutcome;
  /** Relays the answer that no try replaces; the path calls finished() once it is complete. */
  relay(res: Res): void;
  /** The client still waits for an answer: nothing sent to it yet, still connected. */
  waiting(): boolean;
  /**
   * A try failed before its answer (the path counts it): the reset reason its 503 would give
   * if no retry follows, or undefined when the client is gone and gets nothing.
   */
  failed(err: NodeJS.ErrnoException): string | undefined;
  /** The answer began but cannot be completed (the upstream broke off: UC; the route timeout: UT): reset it. */
  cut(flag: string): void;
  /** A reply of the proxy's own instead of an answer: 503 after a failure, 504 (`timeout`) when a timeout ran out. */
  local(code: number, flag: string, body: string, timeout: boolean): void;
}

/** One try: its request, its per-try timer, whether a later try (or the end of the request) replaced it. */
interface Try<Res> {
  request: UpstreamTry<Res>;
  perTry: NodeJS.Timeout | undefined;
  superseded: boolean;
}

const TIMEOUT_TEXT = 'upstream request timeout';

export class RetryDriver<Res extends Droppable> {
  private readonly retry: RetryState;
  private current: Try<Res> | undefined;
  private routeTimer: NodeJS.Timeout | undefined;
  /** The client's request has fully arrived: the timeouts run. */
  private requestComplete = false;
  /** A try's answer is being relayed: no try follows any more. */
  private answered = false;

  constructor(
    private readonly route: { retry?: RetryPolicy; timeoutMs?: number },
    private readonly body: ReplayableBody,
    private readonly metrics: ProxyMetrics,
    private readonly cluster: { cluster_name: string },
    private readonly path: ForwardPath<Res>,
  ) {
    this.retry = new RetryState(route.retry, body);
    if (route.retry) body.onOverflow = () => metrics.retryAbandoned.inc(cluster);
  }

  /** Sends the first try. */
  start(): void {
    this.body.whenComplete(() => this.arrived());
    this.send();
  }

  /** `flag` as the log shows it: with ",URX" when the retries ran out. */
  flag(flag: string): string {
    return this.retry.flag(flag);
  }

  /** The relayed answer is complete: the route timeout stops. */
  finished(): void {
    clearTimeout(this.routeTimer);
  }

  /**
   * The exchange is over (`complete`: the client got the whole answer): the timers stop, and
   * a try still running is cancelled.
   */
  close(complete: boolean): void {
    clearTimeout(this.routeTimer);
    const t = this.current;
    if (!t) return;
    clearTimeout(t.perTry);
    if (!complete) this.drop(t);
  }

  private send(): void {
    const request = this.path.send(this.retry.attempt);
    const t: Try<Res> = { request, perTry: undefined, superseded: false };
    this.current = t;
    if (this.requestComplete) this.armPerTry(t);
    request.on('response', (res) => this.response(t, res));
    request.on('error', (err) => this.error(t, err));
    this.body.sendTo(request);
  }

  /** The client's request has fully arrived: the route timeout and the current try's per-try timeout start. */
  private arrived(): void {
    this.requestComplete = true;
    const ms = this.route.timeoutMs;
    if (ms !== undefined) this.routeTimer = setTimeout(() => this.routeTimedOut(), ms);
    const t = this.current;
    if (t && !t.superseded && !this.answered) this.armPerTry(t);
  }

  private armPerTry(t: Try<Res>): void {
    const ms = this.route.retry?.perTryTimeoutMs;
    if (ms !== undefined) t.perTry = setTimeout(() => this.perTryTimedOut(t), ms);
  }

  private response(t: Try<Res>, res: Res): void {
    if (t.superseded) {
      res.resume();
      return;
    }
    clearTimeout(t.perTry);
    if (this.retried(t, this.path.outcome(res))) {
      res.resume();
      return;
    }
    this.answered = true;
    this.body.release();
    this.path.relay(res);
  }

  private error(t: Try<Res>, err: NodeJS.ErrnoException): void {
    if (t.superseded) return;
    clearTimeout(t.perTry);
    if (this.answered) {
      clearTimeout(this.routeTimer);
      this.path.cut('UC');
      return;
    }
    const reason = this.path.failed(err);
    if (reason === undefined) return;
    const outcome = outcomeOfError(err);
    if (this.retried(t, outcome)) return;
    clearTimeout(this.routeTimer);
    this.path.local(503, this.flag(outcome.kind === 'reset' ? 'UC' : 'UF'), `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`, false);
  }

  private perTryTimedOut(t: Try<Res>): void {
    if (this.retried(t, { kind: 'per-try-timeout' })) return;
    this.drop(t);
    clearTimeout(this.routeTimer);
    this.path.local(504, this.flag('UT'), TIMEOUT_TEXT, true);
  }

  /** The route timeout covers every try, as Envoy's. */
  private routeTimedOut(): void {
    if (this.path.waiting()) this.path.local(504, 'UT', TIMEOUT_TEXT, true);
    else if (this.answered) this.path.cut('UT');
    if (this.current) this.drop(this.current);
  }

  /** True when `outcome` is retried: `t` is dropped and the next try follows after the back-off. */
  private retried(t: Try<Res>, outcome: AttemptOutcome): boolean {
    const wait = this.retry.retryAfter(outcome);
    if (wait === undefined) {
      if (this.retry.limitExceeded) this.metrics.retryLimitExceeded.inc(this.cluster);
      return false;
    }
    this.body.detach();
    this.drop(t);
    this.metrics.retries.inc(this.cluster);
    setTimeout(() => {
      if (this.path.waiting()) this.send();
    }, wait);
    return true;
  }

  private drop(t: Try<Res>): void {
    t.superseded = true;
    clearTimeout(t.perTry);
    t.request.destroy();
  }
}
