/**
 * Prometheus metrics with Envoy's names where Envoy has one (so existing Istio dashboards
 * find them), served on `/stats/prometheus` like the sidecar's 15090 port.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly upstreamConnections = new Counter({
    name: 'envoy_cluster_upstream_cx_total',
    help: 'Upstream connections opened, per cluster',
    labelNames: ['cluster_name'],
    registers: [this.registry],
  });
  readonly upstreamConnectFailures = new Counter({
    name: 'envoy_cluster_upstream_cx_connect_fail_total',
    help: 'Upstream connection attempts that failed, per cluster',
    labelNames: ['cluster_name'],
    registers: [this.registry],
  });
  readonly upstreamActive = new Gauge({
    name: 'envoy_cluster_upstream_cx_active',
    help: 'Upstream connections open now, per cluster',
    labelNames: ['cluster_name'],
    registers: [this.registry],
  });
  readonly bytesSent = new Counter({
    name: 'envoy_cluster_upstream_cx_tx_bytes_total',
    help: 'Bytes sent to the upstream, per cluster',
    labelNames: ['cluster_name'],
    registers: [this.registry],
  });
  readonly bytesReceived = new Counter({
    name: 'envoy_cluster_upstream_cx_rx_bytes_total',
    help: 'Bytes received from the upstream, per cluster',
    labelNames: ['cluster_name'],
    registers: [this.registry],
  });
  readonly requests = new Counter({
    name: 'envoy_cluster_upstream_rq_total',
    help: 'HTTP responses sent downstream, per cluster and response code',
    labelNames: ['cluster_name', 'response_code', 'response_code_class'],
    registers: [this.registry],
  });
  readonly downstreamActive = new Gauge({
    name: 'interpose_downstream_cx_active',
    help: 'Accepted connections open now, per listener',
    labelNames: ['listener'],
    registers: [this.registry],
  });
  readonly downstreamTotal = new Counter({
    name: 'interpose_downstream_cx_total',
    help: 'Connections accepted, per listener',
    labelNames: ['listener'],
    registers: [this.registry],
  });
  readonly overflow = new Counter({
    name: 'interpose_downstream_cx_overflow_total',
    help: 'Connections refused because --max-connections was reached',
    registers: [this.registry],
  });
  readonly configReloads = new Counter({
    name: 'interpose_config_reloads_total',
    help: 'Configuration reloads, by result',
    labelNames: ['result'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'interpose_' });
  }

  /** Counts one HTTP response for a cluster. */
  response(cluster: string, code: number): void {
    this.requests.inc({ cluster_name: cluster, response_code: String(code), response_code_class: `${Math.floor(code / 100)}xx` });
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
