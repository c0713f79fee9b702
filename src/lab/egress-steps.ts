/**
 * The first seed, Istio's "Accessing External Services", step by step with interpose in place
 * of istio-init and Envoy.
 */
import { GOOGLE, HTTPBIN } from './world/addresses.js';
import { httpOutcome, type LabStep, type StepResult } from './lab-step.js';
import type { CommandRecord } from './lab-session.js';
import { docs, googleServiceEntry, httpbinServiceEntry, httpbinTimeout, meshMode } from './seed-resources.js';

const status = ['-o', '/dev/null', '-w', '%{http_code}'];
const HTTPS = `https://${GOOGLE.host}`;
const HTTP_HEADERS = `http://${HTTPBIN.host}/headers`;

/** A step that expects the request to answer 200 and the proxy to log the line `logLine` describes. */
function loggedOk(applied: CommandRecord, request: CommandRecord, logged: boolean, logLine: string): Omit<StepResult, 'accessLog'> {
  const outcome = httpOutcome(request);
  return {
    expected: `HTTP 200, ${logLine}`,
    observed: `${outcome}, ${logged ? logLine : 'no matching log line'}`,
    ok: outcome === 'HTTP 200' && logged,
    commands: [applied, request],
  };
}

export const egressSteps: readonly LabStep[] = [
  {
    id: 'allow-any',
    title: 'ALLOW_ANY: unknown destinations pass through',
    explain: 'With the default outboundTrafficPolicy ALLOW_ANY, the proxy passes traffic to unknown services through (PassthroughCluster).',
    async run(s) {
      const https = await s.curl(['-I', ...status, HTTPS]);
      const http = await s.curl([...status, HTTP_HEADERS]);
      await s.waitForLog(/PassthroughCluster/);
      const observed = `https → ${httpOutcome(https)}; http → ${httpOutcome(http)}`;
      const expected = 'https → HTTP 200; http → HTTP 200';
      return { expected, observed, ok: observed === expected, commands: [https, http] };
    },
  },
  {
    id: 'registry-only',
    title: 'REGISTRY_ONLY: unknown destinations are refused',
    explain: 'outboundTrafficPolicy REGISTRY_ONLY blocks anything without a ServiceEntry (BlackHoleCluster): TLS is closed (curl exit 35), HTTP gets 502.',
    async run(s) {
      const applied = await s.apply(meshMode('REGISTRY_ONLY'));
      const https = await s.curl(['-I', ...status, HTTPS]);
      const http = await s.curl([...status, HTTP_HEADERS]);
      // Lines are written when connections close; wait for both so they show in this step.
      await s.waitForLog(/"- - -" .* BlackHoleCluster /);
      await s.waitForLog(/"GET \/headers HTTP\/1\.1" 502 .*BlackHoleCluster/);
      const observed = `https → ${httpOutcome(https)}; http → ${httpOutcome(http)}`;
      const expected = 'https → curl exit 35; http → HTTP 502';
      return { expected, observed, ok: observed === expected, commands: [applied, https, http] };
    },
  },
  {
    id: 'service-entry-http',
    title: 'ServiceEntry for httpbin.org:80 (HTTP)',
    explain: 'A ServiceEntry makes httpbin.org known: the request is proxied at HTTP level and logged with method, path, status, authority and upstream.',
    async run(s) {
      const applied = await s.apply(docs(meshMode('REGISTRY_ONLY'), httpbinServiceEntry));
      const http = await s.curl([...status, HTTP_HEADERS]);
      const logged = await s.waitForLog(/"GET \/headers HTTP\/1\.1" 200 .*"httpbin\.org" "203\.0\.113\.10:80" outbound\|80\|\|httpbin\.org/);
      return loggedOk(applied, http, logged, 'log line GET /headers 200 httpbin.org → outbound|80||httpbin.org');
    },
  },
  {
    id: 'service-entry-https',
    title: 'ServiceEntry for www.google.com:443 (HTTPS)',
    explain: 'TLS is not terminated: the proxy reads the SNI from the ClientHello, matches the ServiceEntry and relays bytes, logging SNI and byte counts.',
    async run(s) {
      const applied = await s.apply(docs(meshMode('REGISTRY_ONLY'), httpbinServiceEntry, googleServiceEntry));
      const https = await s.curl(['-I', ...status, HTTPS]);
      const logged = await s.waitForLog(/"- - -" 0 \S+ \d+ \d+ .*outbound\|443\|\|www\.google\.com .* www\.google\.com$/);
      return loggedOk(applied, https, logged, 'log line with SNI www.google.com and byte counts');
    },
  },
  {
    id: 'timeout',
    title: 'VirtualService timeout 3s on httpbin.org',
    explain: 'A VirtualService with timeout: 3s ends /delay/5 (which answers after 5 s) with 504 after about 3 s.',
    async run(s) {
      const applied = await s.apply(docs(meshMode('REGISTRY_ONLY'), httpbinServiceEntry, googleServiceEntry, httpbinTimeout));
      const slow = await s.curl([...status, `http://${HTTPBIN.host}/delay/5`]);
      await s.waitForLog(/"GET \/delay\/5 HTTP\/1\.1" 504/);
      const inTime = slow.seconds >= 2.5 && slow.seconds < 4.9;
      const observed = `${httpOutcome(slow)} after ${slow.seconds.toFixed(1)} s`;
      return { expected: 'HTTP 504 after ≈3 s', observed, ok: httpOutcome(slow) === 'HTTP 504' && inTime, commands: [applied, slow] };
    },
  },
  {
    id: 'bypass',
    title: 'Direct access with includeIPRanges',
    explain: 'With global.proxy.includeIPRanges set to the cluster ranges only, external traffic never reaches the proxy: it works even under REGISTRY_ONLY, and nothing is logged.',
    async run(s) {
      const rules = await s.reinstallRules(['-i', '10.96.0.0/12,10.244.0.0/16']);
      s.newAccessLog();
      const http = await s.curl([...status, HTTP_HEADERS]);
      const logged = await s.waitForLog(/./, 500);
      const observed = `${httpOutcome(http)}, ${logged ? 'logged by the proxy' : 'no log line'}`;
      const expected = 'HTTP 200, no log line';
      return { expected, observed, ok: observed === expected, commands: [...rules, http] };
    },
  },
];
