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
    this.requests = new Counter({
      name: 'istio_agent_dns_requests_total',
      help: 'DNS queries answered, by transport and by where the answer came from (local, cache, upstream, servfail, refused)',
      labelNames: ['protocol', 'answer'],
      registers,
    });
    this.upstreamRequests = new Counter({
      name: 'istio_agent_dns_upstream_requests_total',
      help: 'Queries sent to a resolv.conf nameserver, by transport',
      labelNames: ['protocol'],
      registers,
    });
    this.upstreamFailures = new Counter({
      name: 'istio_agent_dns_upstream_failures_total',
      help: 'Queries to a nameserver that got no usable answer, by transport and reason',
      labelNames: ['protocol', 'reason'],
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: 'istio_agent_dns_upstream_request_duration_seconds',
      help: 'Time a nameserver took to answer (or fail)',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.malformed = new Counter({
      name: 'interpose_dns_malformed_total',
      help: 'DNS messages dropped as malformed (undecodable, not a query, oversized), by transport',
      labelNames: ['protocol'],
      registers,
    });
  }
}
