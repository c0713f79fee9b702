/**
 * Istio's "Egress TLS Origination" task: the pod speaks plain HTTP to port 80, and a
 * DestinationRule with tls.mode SIMPLE makes the proxy originate TLS to the service's port 443
 * (the ServiceEntry's targetPort), verifying the server against the system store — in the lab
 * the pod's /etc/ssl, which holds only the lab's test CA. With a CA that did not sign the
 * server's certificate, the proxy answers 503 UF,URX (the connection fails, and so do the two
 * retries of Istio's default policy), as Envoy does.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GOOGLE } from './world/addresses.js';
import { createTestCa } from './world/test-ca.js';
import { httpOutcome, type LabStep } from './lab-step.js';
import { docs, meshMode } from './seed-resources.js';

/** The task's ServiceEntry: port 80 (HTTP) is served by the service's port 443. */
export const googleTlsOriginationEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: google
spec:
  hosts:
  - ${GOOGLE.host}
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
    targetPort: 443
  - number: 443
    name: https-port
    protocol: HTTPS
  resolution: DNS
`;

/** The task's DestinationRule; `caCertificates` set only for the wrong-CA step. */
export const googleOriginateTls = (caCertificates?: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: google
spec:
  host: ${GOOGLE.host}
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: SIMPLE # initiates HTTPS when accessing ${GOOGLE.host}
${caCertificates ? `        caCertificates: ${caCertificates}\n` : ''}`;

const status = ['-w', '\\n%{http_code}'];

export const tlsOriginationSteps: readonly LabStep[] = [
  {
    id: 'plain-http-to-tls-port',
    title: 'Without the DestinationRule: plain HTTP reaches the TLS port',
    explain: `The ServiceEntry sends port 80 to the service's port 443 (targetPort). Without TLS origination the proxy speaks plain HTTP to a TLS server, which cannot answer: 503.`,
    async run(s) {
      const applied = await s.apply(docs(meshMode('REGISTRY_ONLY'), googleTlsOriginationEntry));
      const http = await s.curl(['-o', '/dev/null', ...status, `http://${GOOGLE.host}/`]);
      await s.waitForLog(/"GET \/ HTTP\/1\.1" 503/);
      return { expected: 'HTTP 503', observed: httpOutcome(http), ok: httpOutcome(http) === 'HTTP 503', commands: [applied, http] };
    },
  },
  {
    id: 'tls-origination',
    title: 'DestinationRule tls.mode SIMPLE: the proxy originates TLS',
    explain:
      `curl sends plain HTTP to http://${GOOGLE.host}; the proxy connects with TLS to ${GOOGLE.address}:443, verifies the certificate ` +
      `against the system store (the pod's, holding the lab CA) with SNI ${GOOGLE.host}, and returns the page.`,
    async run(s) {
      const applied = await s.apply(docs(meshMode('REGISTRY_ONLY'), googleTlsOriginationEntry, googleOriginateTls()));
      const http = await s.curl([...status, `http://${GOOGLE.host}/`]);
      const logged = await s.waitForLog(new RegExp(`"GET / HTTP/1\\.1" 200 - .*"${GOOGLE.address}:443" outbound\\|80\\|\\|www\\.google\\.com`));
      const page = http.output.includes(`stand-in for ${GOOGLE.host}`);
      const observed = `${httpOutcome(http)}${page ? ', the page' : ', not the page'}${logged ? `, logged to ${GOOGLE.address}:443 via outbound|80||www.google.com` : ', no matching log line'}`;
      const expected = `HTTP 200, the page, logged to ${GOOGLE.address}:443 via outbound|80||www.google.com`;
      return { expected, observed, ok: observed === expected, commands: [applied, http] };
    },
  },
  {
    id: 'tls-origination-wrong-ca',
    title: 'A CA that did not sign the server certificate: 503 UF,URX',
    explain: 'With caCertificates naming another CA, the proxy cannot verify the server: Envoy answers 503 with flags UF,URX (upstream connection failure, and the default Istio retries on connect-failure used up) and logs the TLS failure (CERTIFICATE_VERIFY_FAILED).',
    async run(s) {
      const dir = join(s.world.dir, 'wrong-ca');
      mkdirSync(dir, { recursive: true });
      const wrong = await createTestCa(dir, []);
      const applied = await s.apply(docs(meshMode('REGISTRY_ONLY'), googleTlsOriginationEntry, googleOriginateTls(wrong.caCert)));
      const http = await s.curl([...status, `http://${GOOGLE.host}/`]);
      const logged = await s.waitForLog(/"GET \/ HTTP\/1\.1" 503 UF,URX .*CERTIFICATE_VERIFY_FAILED/);
      const observed = `${httpOutcome(http)}${logged ? ', UF,URX with CERTIFICATE_VERIFY_FAILED in the log' : ', no matching log line'}`;
      const expected = 'HTTP 503, UF,URX with CERTIFICATE_VERIFY_FAILED in the log';
      return { expected, observed, ok: observed === expected, commands: [applied, http] };
    },
  },
];
