/**
 * DNS capture, Istio's "DNS Proxying" task: with `istio-iptables --redirect-dns` the pod's
 * queries reach the proxy's DNS proxy on port 15053, which answers ServiceEntry hosts itself —
 * from `addresses`, or from an address auto-allocated in 240.240.0.0/16 that the proxy then
 * claims for the ServiceEntry, so a TCP service without a stable IP works under REGISTRY_ONLY.
 */
import { HTTPBIN } from './world/addresses.js';
import { httpOutcome, type LabStep } from './lab-step.js';
import { docs, meshMode } from './seed-resources.js';

const DB_ADDRESS = '192.0.2.50';

const dbInternal = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: db-internal
spec:
  hosts: [db.internal]
  addresses: [${DB_ADDRESS}]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: ${DB_ADDRESS}}]
`;

/** No addresses: auto-allocation gives it one; its endpoint is the httpbin stand-in. */
const tcpInternal = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: tcp-internal
spec:
  hosts: [tcp.internal]
  ports: [{number: 80, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: ${HTTPBIN.address}}]
`;

export const dnsSteps: readonly LabStep[] = [
  {
    id: 'dns-capture',
    title: 'DNS capture: ServiceEntry hosts resolve in the pod',
    explain:
      'With --redirect-dns the pod\'s DNS goes to the proxy on port 15053. It answers db.internal from the ServiceEntry\'s addresses, ' +
      'and tcp.internal (no addresses) with one auto-allocated from 240.240.0.0/16 that it then routes to that ServiceEntry, even under REGISTRY_ONLY.',
    async run(s) {
      const rules = await s.reinstallRules(['-i', '*', '--redirect-dns']);
      const applied = await s.apply(docs(meshMode('REGISTRY_ONLY'), dbInternal, tcpInternal));
      const dig = await s.inPod(['dig', '+short', '+time=2', '+tries=1', 'db.internal']);
      const getent = await s.inPod(['getent', 'hosts', 'db.internal']);
      const allocated = await s.inPod(['dig', '+short', '+time=2', '+tries=1', 'tcp.internal']);
      const curl = await s.curl(['-o', '/dev/null', '-w', '%{http_code}', 'http://tcp.internal/headers']);
      const routed = await s.waitForLog(/outbound\|80\|\|tcp\.internal/);
      const getentAddress = getent.exitCode === 0 ? getent.output.split(/\s+/)[0] : `getent exit ${getent.exitCode}`;
      const observed =
        `db.internal → ${dig.output || 'no answer'} (dig), ${getentAddress} (getent); ` +
        `tcp.internal → ${allocated.output || 'no answer'}, curl ${httpOutcome(curl)}${routed ? ' via outbound|80||tcp.internal' : ''}`;
      const ok =
        dig.output === DB_ADDRESS &&
        getentAddress === DB_ADDRESS &&
        /^240\.240\.\d+\.\d+$/.test(allocated.output) &&
        httpOutcome(curl) === 'HTTP 200' &&
        routed;
      return {
        expected: `db.internal → ${DB_ADDRESS} (dig and getent); tcp.internal → 240.240.x.y, curl HTTP 200 via outbound|80||tcp.internal`,
        observed,
        ok,
        commands: [...rules, applied, dig, getent, allocated, curl],
      };
    },
  },
];
