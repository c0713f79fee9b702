/**
 * The second seed, Istio's egress gateway for external services: the proxy's Gateway listeners
 * route by Host (HTTP) and by SNI (TLS PASSTHROUGH) to the external services, while the pod's
 * own traffic follows the `mesh` routes, which send it nowhere (localhost.local).
 */
import { GOOGLE, HTTPBIN } from './world/addresses.js';
import { httpOutcome, type LabStep } from './lab-step.js';
import { docs, egressGateway, googleServiceEntry, httpbinServiceEntry, meshMode } from './seed-resources.js';

const status = ['-o', '/dev/null', '-w', '%{http_code}'];

export const gatewaySteps: readonly LabStep[] = [
  {
    id: 'gateway-http',
    title: 'Gateway: HTTP routed by Host to httpbin.org',
    explain: 'The Gateway server on port 80 routes Host httpbin.org to the external service: /status/418 answers 418 I\'m a teapot.',
    async run(s) {
      const applied = await s.apply(docs(meshMode('REGISTRY_ONLY'), httpbinServiceEntry, googleServiceEntry, egressGateway));
      const teapot = await s.curl(['-H', `Host: ${HTTPBIN.host}`, ...status, 'http://127.0.0.1/status/418']);
      const logged = await s.waitForLog(/"GET \/status\/418 HTTP\/1\.1" 418 .*outbound\|80\|\|httpbin\.org/);
      const observed = `${httpOutcome(teapot)}${logged ? ', logged to outbound|80||httpbin.org' : ', no matching log line'}`;
      return { expected: 'HTTP 418, logged to outbound|80||httpbin.org', observed, ok: httpOutcome(teapot) === 'HTTP 418' && logged, commands: [applied, teapot] };
    },
  },
  {
    id: 'gateway-tls',
    title: 'Gateway: TLS passthrough by SNI to www.google.com',
    explain: 'The Gateway server on port 443 (tls.mode PASSTHROUGH) routes by SNI without terminating TLS; curl verifies the real certificate end to end.',
    async run(s) {
      const tls = await s.curl(['-I', ...status, '--resolve', `${GOOGLE.host}:443:127.0.0.1`, `https://${GOOGLE.host}`]);
      const logged = await s.waitForLog(/outbound\|443\|\|www\.google\.com .* www\.google\.com$/);
      const observed = `${httpOutcome(tls)}${logged ? ', logged with SNI www.google.com' : ', no matching log line'}`;
      return { expected: 'HTTP 200, logged with SNI www.google.com', observed, ok: httpOutcome(tls) === 'HTTP 200' && logged, commands: [tls] };
    },
  },
  {
    id: 'mesh-blocked',
    title: 'Mesh traffic follows the mesh routes: blocked',
    explain: 'From inside, the VirtualServices bound to the `mesh` gateway send httpbin.org and www.google.com to localhost.local: HTTP gets 503, TLS is closed (curl exit 35).',
    async run(s) {
      const http = await s.curl([...status, `http://${HTTPBIN.host}/status/418`]);
      const https = await s.curl(['-I', ...status, `https://${GOOGLE.host}`]);
      const observed = `http → ${httpOutcome(http)}; https → ${httpOutcome(https)}`;
      const expected = 'http → HTTP 503; https → curl exit 35';
      return { expected, observed, ok: observed === expected, commands: [http, https] };
    },
  },
];
