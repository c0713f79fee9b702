/**
 * Prometheus metrics with Envoy's names where Envoy has one (so existing Istio dashboards
 * find them), served on `/stats/prometheus` like the sidecar's 15090 port.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly upstreamConnections = counter(this.registry, 'envoy_cluster_upstream_cx_total', 'Upstream connections opened, per cluster', ['cluster_name']);
  readonly upstreamConnectFailures = counter(this.registry, 'envoy_cluster_upstream_cx_connect_fail_total', 'Upstream connection attempts that failed, per cluster', ['cluster_name']);
  readonly upstreamActive = gauge(this.registry, 'envoy_cluster_upstream_cx_active', 'Upstream connections open now, per cluster', ['cluster_name']);
  readonly bytesSent = counter(this.registry, 'envoy_cluster_upstream_cx_tx_bytes_total', 'Bytes sent to the upstream, per cluster', ['cluster_name']);
  readonly bytesReceived = counter(this.registry, 'envoy_cluster_upstream_cx_rx_bytes_total', 'Bytes received from the upstream, per cluster', ['cluster_name']);
  readonly requests = counter(this.registry, 'envoy_cluster_upstream_rq_total', 'HTTP responses sent downstream, per cluster and response code', ['cluster_name', 'response_code', 'response_code_class']);
  readonly retries = counter(this.registry, 'envoy_cluster_upstream_rq_retry_total', 'Requests sent again by a retry policy, per cluster', ['cluster_name']);
  readonly retryLimitExceeded = counter(this.registry, 'envoy_cluster_upstream_rq_retry_limit_exceeded_total', 'Requests whose retries ran out on a retriable outcome (URX), per cluster', ['cluster_name']);
  readonly retryAbandoned = counter(this.registry, 'envoy_cluster_retry_or_shadow_abandoned_total', 'Requests no longer retried because their body outgrew the replay buffer, per cluster', ['cluster_name']);
  readonly downstreamActive = gauge(this.registry, 'interpose_downstream_cx_active', 'Accepted connections open now, per listener', ['listener']);
  readonly downstreamTotal = counter(this.registry, 'interpose_downstream_cx_total', 'Connections accepted, per listener', ['listener']);
  readonly overflow = counter(this.registry, 'interpose_downstream_cx_overflow_total', 'Connections refused because --max-connections was reached');
  readonly configReloads = counter(this.registry, 'interpose_config_reloads_total', 'Configuration reloads, by result', ['result']);

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'interpose_' });
  }

  // The label set of each cluster and code, built once rather than as a new object and two
  // strings on every response.
  private readonly responseLabels = new Map<string, Map<number, { cluster_name: string; response_code: string; response_code_class: string }>>();

  private readonly clusterLabelSets = new Map<string, { cluster_name: string }>();

  /** The `cluster_name` label set of a cluster, one object per cluster rather than per request. */
  clusterLabels(cluster: string): { cluster_name: string } {
    let labels = this.clusterLabelSets.get(cluster);
    if (!labels) this.clusterLabelSets.set(cluster, (labels = { cluster_name: cluster }));
    return labels;
  }

  /** Counts one HTTP response for a cluster (or `count` of them with the same code). */
  response(cluster: string, code: number, count = 1): void {
    let byCode = this.responseLabels.get(cluster);
    if (!byCode) this.responseLabels.set(cluster, (byCode = new Map()));
    let labels = byCode.get(code);
    if (!labels) byCode.set(code, (labels = { cluster_name: cluster, response_code: String(code), response_code_class: `${Math.floor(code / 100)}xx` }));
    this.requests.inc(labels, count);
  }

  /** Serves the registry on `http://address:port/stats/prometheus`. */
  listen(port: number, address: string): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url?.split('?')[0] !== '/stats/prometheus') {
        res.writeHead(404).end('not found; metrics are at /stats/prometheus\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(String(err.message)),
      );
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve(server));
    });
  }
}

// Every metric lives in the proxy's own registry (never prom-client's global one), with the
// label names given: their values are then type-checked at each inc()/dec().
function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  return new Counter({ name, help, labelNames, registers: [registry] });
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
  return new Gauge({ name, help, labelNames, registers: [registry] });
}
