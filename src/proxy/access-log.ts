/**
 * Envoy's default access log format, field for field, in TEXT or JSON encoding:
 *
 *   [START_TIME] "METHOD PATH PROTOCOL" RESPONSE_CODE RESPONSE_FLAGS BYTES_RECEIVED BYTES_SENT
 *   DURATION UPSTREAM_SERVICE_TIME "X-FORWARDED-FOR" "USER-AGENT" "REQUEST_ID" "AUTHORITY"
 *   "UPSTREAM_HOST" UPSTREAM_CLUSTER UPSTREAM_LOCAL_ADDRESS DOWNSTREAM_LOCAL_ADDRESS
 *   DOWNSTREAM_REMOTE_ADDRESS REQUESTED_SERVER_NAME ["UPSTREAM_TRANSPORT_FAILURE_REASON"]
 *
 * The last field is written only when set (a TLS origination that failed), so other lines keep
 * the classic format.
 * TCP/TLS connections carry no request, so their request part is "- - -" and code 0, exactly
 * as Envoy prints them. Missing values are "-".
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { ValidationError } from '../errors/index.js';

export type AccessLogEncoding = 'TEXT' | 'JSON';

/** One finished request (HTTP) or connection (TCP/TLS). */
export interface AccessLogEntry {
  startTime: Date;
  method?: string;
  path?: string;
  protocol?: string;
  responseCode: number;
  responseFlags: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  upstreamServiceTimeMs?: number;
  xForwardedFor?: string;
  userAgent?: string;
  requestId?: string;
  authority?: string;
  upstreamHost?: string;
  upstreamCluster?: string;
  upstreamLocalAddress?: string;
  downstreamLocalAddress?: string;
  downstreamRemoteAddress?: string;
  requestedServerName?: string;
  /** Envoy's %UPSTREAM_TRANSPORT_FAILURE_REASON% (a failed TLS origination). */
  upstreamTransportFailureReason?: string;
}

const dash = (v: string | number | undefined): string => (v === undefined || v === '' ? '-' : String(v));

/** The second isoTime() last formatted, and its text up to the milliseconds. */
let isoSecond = NaN;
let isoSecondText = '';

/**
 * date.toISOString(), from a cache of the current second: V8 formats a Date through printf,
 * and a busy proxy logs thousands of lines in the same second.
 */
export function isoTime(date: Date): string {
  const t = date.getTime(); // an integer (or NaN: toISOString() throws, as it did)
  const second = Math.floor(t / 1000);
  if (second !== isoSecond || !Number.isFinite(t)) {
    const text = date.toISOString(); // "…:SS.mmmZ"
    isoSecond = second;
    isoSecondText = text.slice(0, -4);
    return text;
  }
  const ms = t - second * 1000;
  return `${isoSecondText}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

/** Envoy's TEXT line for an entry (without the newline). */
export function formatText(e: AccessLogEntry): string {
  const request = e.method ? `${e.method} ${dash(e.path)} ${dash(e.protocol)}` : '- - -';
  return (
    `[${isoTime(e.startTime)}] "${request}" ${e.responseCode} ${dash(e.responseFlags)} ` +
    `${e.bytesReceived} ${e.bytesSent} ${Math.round(e.durationMs)} ${dash(e.upstreamServiceTimeMs)} ` +
    `"${dash(e.xForwardedFor)}" "${dash(e.userAgent)}" "${dash(e.requestId)}" "${dash(e.authority)}" ` +
    `"${dash(e.upstreamHost)}" ${dash(e.upstreamCluster)} ${dash(e.upstreamLocalAddress)} ` +
    `${dash(e.downstreamLocalAddress)} ${dash(e.downstreamRemoteAddress)} ${dash(e.requestedServerName)}` +
    // Only when set, so every other line keeps the format above.
    (e.upstreamTransportFailureReason ? ` "${e.upstreamTransportFailureReason}"` : '')
  );
}

/** The same fields keyed by Envoy's JSON names (as in Istio's JSON access log encoding). */
export function formatJson(e: AccessLogEntry): string {
  const orNull = <T>(v: T | undefined): T | null => (v === undefined || v === '' ? null : v);
  return JSON.stringify({
    start_time: isoTime(e.startTime),
    method: orNull(e.method),
    path: orNull(e.path),
    protocol: orNull(e.protocol),
    response_code: e.responseCode,
    response_flags: e.responseFlags || '-',
    bytes_received: e.bytesReceived,
    bytes_sent: e.bytesSent,
    duration: Math.round(e.durationMs),
    upstream_service_time: orNull(e.upstreamServiceTimeMs === undefined ? undefined : String(e.upstreamServiceTimeMs)),
    x_forwarded_for: orNull(e.xForwardedFor),
    user_agent: orNull(e.userAgent),
    request_id: orNull(e.requestId),
    authority: orNull(e.authority),
    upstream_host: orNull(e.upstreamHost),
    upstream_cluster: orNull(e.upstreamCluster),
    upstream_local_address: orNull(e.upstreamLocalAddress),
    downstream_local_address: orNull(e.downstreamLocalAddress),
    downstream_remote_address: orNull(e.downstreamRemoteAddress),
    requested_server_name: orNull(e.requestedServerName),
    ...(e.upstreamTransportFailureReason ? { upstream_transport_failure_reason: e.upstreamTransportFailureReason } : {}),
  });
}

/**
 * Writes entries to stdout ("-") or a file, one per line; `off` discards them. Lines written in
 * one turn of the event loop go out as one write after it (setImmediate). A file is appended to
 * with a plain write(2) on that turn, as Node writes stdout to a file: an fs stream would hand
 * every batch to the thread pool, and the hop there and back (two thread wake-ups and one more
 * event-loop turn per batch) cost more than the write itself, on every request's path.
 */
export class AccessLog {
  private readonly out: NodeJS.WritableStream | undefined;
  private fd: number | undefined;
  private readonly direct: ((line: string) => void) | undefined;
  private readonly format: (entry: AccessLogEntry) => string;
  private pending = '';
  private flushScheduled = false;
  /** Lines are written somewhere (not "off"). */
  readonly writes: boolean;
  /** Lines in the TEXT format are written somewhere (writeLines() may be given them). */
  readonly writesText: boolean;

  /**
   * `target`: a file path, "-" for stdout, "off", or a function receiving each line (tests).
   * A file is opened here (before the proxy drops its privileges); one that cannot be opened
   * for appending is refused with the flag's name.
   */
  constructor(
    target: string | ((line: string) => void),
    encoding: AccessLogEncoding,
  ) {
    this.format = encoding === 'JSON' ? formatJson : formatText;
    this.writes = target !== 'off' && target !== '';
    this.writesText = encoding === 'TEXT' && this.writes;
    if (typeof target === 'function') this.direct = target;
    else if (target === 'off' || target === '') this.out = undefined;
    else if (target === '-') this.out = process.stdout;
    else {
      try {
        this.fd = openSync(target, 'a');
      } catch (err) {
        const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new ValidationError('--access-log', target, `a file the proxy can append to (${reason}), "-" for stdout or "off"`);
      }
    }
  }

  write(entry: AccessLogEntry): void {
    if (this.direct) {
      this.direct(this.format(entry));
      return;
    }
    if (!this.out && this.fd === undefined) return;
    this.pending += this.format(entry) + '\n';
    // Bounded: a busy loop turn still writes at 64 KiB.
    if (this.pending.length >= 65_536) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushLater);
    }
  }

  /**
   * Lines formatted elsewhere as formatText() formats them (the native fast path's), UTF-8,
   * each ending in a newline: written after the lines before them, at once.
   */
  writeLines(lines: Buffer): void {
    if (!this.writesText) return;
    if (this.direct) {
      for (const line of lines.toString('utf8').split('\n')) if (line !== '') this.direct(line);
      return;
    }
    this.flush();
    this.emit(lines);
  }

  private readonly flushLater = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private flush(): void {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.emit(text);
  }

  private emit(data: string | Buffer): void {
    if (this.fd === undefined) {
      this.out?.write(data);
      return;
    }
    try {
      // writeSync's string and Buffer forms are two overloads: one call each.
      if (typeof data === 'string') writeSync(this.fd, data);
      else writeSync(this.fd, data);
    } catch {
      // A full disk or a revoked file loses these lines, never the request: Envoy's access
      // log drops lines the same way when it cannot write them.
    }
  }

  close(): Promise<void> {
    this.flush();
    // Forgotten at once: a line logged after close() must not land in whatever file reuses the number.
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    return Promise.resolve();
  }
}
