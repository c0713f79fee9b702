/**
 * What the fast-path differential tests (HTTP/1.1 and h2c, test/proxy/*fast-path*.test.ts)
 * share: the mesh they route through, access-log lines reduced to what the native path and
 * the JS path must have alike, and the cluster counters both must have counted alike.
 */
import type { TestProxy } from './in-process-proxy.js';

/** REGISTRY_ONLY with api/slow/dead on the origin's port (dead's target refuses connections). */
export function fastPathMesh(originPort: number, refusedPort: number): string {
  const se = (name: string, host: string, target = originPort) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}}
spec:
  hosts: [${host}]
  ports: [{number: ${originPort}, name: http, protocol: HTTP, targetPort: ${target}}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`;
  return `outboundTrafficPolicy: {mode: REGISTRY_ONLY}
${se('api', 'api.example.com')}${se('slow', 'slow.example.com')}${se('dead', 'dead.example.com', refusedPort)}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: slow}
spec:
  hosts: [slow.example.com]
  http:
  - timeout: 300ms
    route: [{destination: {host: slow.example.com}}]
`;
}

const ID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g;

/** An access-log line without its times, ids and ephemeral ports. */
export function normalizeLog(line: string): string {
  return line
    .replace(/^\[[^\]]+\]/, '[T]')
    .replace(ID, 'ID')
    // duration and upstream service time
    .replace(/^(\[T\] "[^"]*" \d+ \S+ \d+ \d+) \d+ (\d+|-)/, (_m, head: string, svc: string) => `${head} D ${svc === '-' ? '-' : 'S'}`)
    // ephemeral ports of the upstream local and downstream remote addresses
    .replace(/ 127\.0\.0\.1:\d+ (127\.0\.0\.1:\d+) 127\.0\.0\.1:\d+ /, ' 127.0.0.1:P $1 127.0.0.1:P ')
    .replace(/ - (127\.0\.0\.1:\d+) 127\.0\.0\.1:\d+ /, ' - $1 127.0.0.1:P ');
}

const COUNTERS = ['upstream_rq_total', 'upstream_rq_retry_total', 'upstream_rq_retry_limit_exceeded_total', 'upstream_cx_connect_fail_total'];

/**
 * Responses by code, retries, retries run out and connect failures (and the `more` cluster
 * counters named), as the metrics endpoint has them.
 */
export async function clusterCounters(p: TestProxy, more: readonly string[] = []): Promise<string[]> {
  const names = new RegExp(`^envoy_cluster_(${[...COUNTERS, ...more].join('|')})\\{`);
  return (await (await fetch(`http://127.0.0.1:${p.server.ports['metrics']}/stats/prometheus`)).text())
    .split('\n')
    .filter((l) => names.test(l))
    .sort();
}
