/**
 * Envoy's outlier detection for one cluster, as Istio configures it from a DestinationRule's
 * `outlierDetection`: an endpoint answering `consecutive5xxErrors` 5xx in a row (default 5), or
 * `consecutiveGatewayErrors` 502/503/504 in a row (off unless set), is ejected for
 * baseEjectionTime × the number of times it has been ejected (capped at Envoy's 300 s), and
 * comes back at the first `interval` tick after that. A connect failure counts as a 503 for
 * both (Envoy without split_external_local_origin_errors). At most maxEjectionPercent of the
 * endpoints are ejected at once (default 10), but always at least one, as Envoy does.
 */
import type { OutlierDetection } from './istio-types.js';

const MAX_EJECTION_MS = 300_000;

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejections: number;
  ejectedUntil?: number;
}

/** `connect-failure`: no answer at all (refused, reset, TLS handshake failed). */
export type Outcome = number | 'connect-failure';

export class OutlierDetector {
  private readonly hosts = new Map<string, HostState>();
  private readonly started: number;
  readonly settings: { c5: number; cg: number; intervalMs: number; baseMs: number; maxPercent: number };

  constructor(
    od: OutlierDetection,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
    this.settings = {
      c5: od.consecutive5xxErrors ?? 5,
      cg: od.consecutiveGatewayErrors ?? 0,
      intervalMs: od.intervalMs ?? 10_000,
      baseMs: od.baseEjectionTimeMs ?? 30_000,
      maxPercent: od.maxEjectionPercent ?? 10,
    };
  }

  /** True while `host` is ejected. */
  isEjected(host: string): boolean {
    const s = this.hosts.get(host);
    if (s?.ejectedUntil === undefined) return false;
    if (this.now() < s.ejectedUntil) return true;
    s.ejectedUntil = undefined;
    return false;
  }

  /** Records one request's outcome on `host`, one of `poolSize` endpoints of the cluster. */
  report(host: string, outcome: Outcome, poolSize: number): void {
    let s = this.hosts.get(host);
    if (!s) this.hosts.set(host, (s = { consecutive5xx: 0, consecutiveGateway: 0, ejections: 0 }));
    const code = outcome === 'connect-failure' ? 503 : outcome;
    const is5xx = code >= 500 && code <= 599;
    const isGateway = code === 502 || code === 503 || code === 504;
    s.consecutive5xx = is5xx ? s.consecutive5xx + 1 : 0;
    s.consecutiveGateway = isGateway ? s.consecutiveGateway + 1 : 0;
    if (this.isEjected(host)) return;
    const { c5, cg } = this.settings;
    const tripped = (c5 > 0 && s.consecutive5xx >= c5) || (cg > 0 && s.consecutiveGateway >= cg);
    if (tripped && this.mayEject(poolSize)) this.eject(s);
  }

  private mayEject(poolSize: number): boolean {
    const ejected = [...this.hosts.keys()].filter((h) => this.isEjected(h)).length;
    return ejected === 0 || (100 * (ejected + 1)) / Math.max(poolSize, 1) <= this.settings.maxPercent;
  }

  private eject(s: HostState): void {
    s.ejections += 1;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    const { intervalMs, baseMs } = this.settings;
    const back = this.now() + Math.min(baseMs * s.ejections, Math.max(baseMs, MAX_EJECTION_MS));
    // Envoy un-ejects on its interval timer, which runs from the cluster's creation.
    const ticks = Math.ceil((back - this.started) / intervalMs);
    s.ejectedUntil = this.started + ticks * intervalMs;
  }
}
