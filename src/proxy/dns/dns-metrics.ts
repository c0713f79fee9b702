/**
 * The DNS proxy's Prometheus metrics, registered on the proxy's registry (/stats/prometheus).
 * Names follow istio-agent's DNS proxy where it has one, so its dashboards find them.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export class DnsMetrics {
  readonly requests: Counter<'protocol' | 'answer'>;
  readonly upstreamRequests: Counter<'protocol'>;
  readonly upstreamFailures: Counter<'protocol' | 'reason'>;
  readonly upstreamDuration: Histogram;
  readonly malformed: Counter<'protocol'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    this.requests = counter(
      'istio_agent_dns_requests_total',
      'DNS queries answered, by transport and by where the answer came from (local, cache, upstream, servfail, refused)',
      ['protocol', 'answer'],
    );
    this.upstreamRequests = counter(
      'istio_agent_dns_upstream_requests_total',
      'Queries sent to a resolv.conf nameserver, by transport',
      ['protocol'],
    );
    this.upstreamFailures = counter(
      'istio_agent_dns_upstream_failures_total',
      'Queries to a nameserver that got no usable answer, by transport and reason',
      ['protocol', 'reason'],
    );
    this.upstreamDuration = new Histogram({
      name: 'istio_agent_dns_upstream_request_duration_seconds',
      help: 'Time a nameserver took to answer (or fail)',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.malformed = counter(
      'interpose_dns_malformed_total',
      'DNS messages dropped as malformed (undecodable, not a query, oversized), by transport',
      ['protocol'],
    );
  }
}
