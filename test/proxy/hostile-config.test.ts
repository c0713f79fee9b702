/**
 * Hostile Istio YAML beyond what the schema fuzz reaches (it stops at parsing), each a bug once
 * found: a certificate file that never ends or never opens (a FIFO) stalled `interpose proxy`
 * for good, and a ServiceEntry port named like an Object.prototype member (toString,
 * constructor, __proto__) made the upstream port a function or an object. No root: the proxy
 * refuses these configs before it listens.
 */
import test from 'ava';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CidrTrie } from '../../src/native.js';
import { parseProxyConfig } from '../../src/proxy/istio-yaml.js';
import { Registry } from '../../src/proxy/registry.js';
import { UpstreamResolver } from '../../src/proxy/upstream-resolver.js';
import { CLI, STATE_DIR } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'interpose-hostile-config-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const FIFO = join(dir, 'fifo.pem');
execFileSync('mkfifo', [FIFO]);
mkdirSync(join(dir, 'fifo-credential'));
execFileSync('mkfifo', [join(dir, 'fifo-credential', 'tls.crt')]);
writeFileSync(join(dir, 'fifo-credential', 'tls.key'), '');

const destinationRule = (file: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: upstream-tls}
spec:
  host: a.example
  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: "${file}"}}
`;

const gateway = (credentialName: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example]
    tls: {mode: SIMPLE, credentialName: ${credentialName}}
`;

const unreadable: { name: string; yaml: string; names: RegExp }[] = [
  { name: 'a FIFO as caCertificates', yaml: destinationRule(FIFO), names: /tls\.caCertificates: ".*fifo\.pem": expected a readable PEM file \(not a regular file \(a FIFO\)/ },
  { name: '/dev/zero as caCertificates', yaml: destinationRule('/dev/zero'), names: /tls\.caCertificates: "\/dev\/zero": expected a readable PEM file \(not a regular file \(a character device\)/ },
  { name: 'a directory as caCertificates', yaml: destinationRule(dir), names: /tls\.caCertificates: .*expected a readable PEM file \(not a regular file \(a directory\)/ },
  { name: 'a credentialName whose tls.crt is a FIFO', yaml: gateway('fifo-credential'), names: /credentialName: "fifo-credential\/tls\.crt": expected a readable PEM file \(not a regular file \(a FIFO\)/ },
];

for (const c of unreadable) {
  test(`interpose proxy refuses ${c.name} at once, naming the field`, async (t) => {
    const config = join(dir, `${c.name.replaceAll(/\W+/g, '-')}.yaml`);
    writeFileSync(config, c.yaml);
    // A child, with a deadline: a blocked read would block this worker's event loop too.
    const r = await execa('node', [CLI, 'proxy', '--config', config], {
      reject: false,
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', INTERPOSE_STATE_DIR: STATE_DIR },
      extendEnv: false,
    });
    t.false(r.timedOut, 'still loading the config after 60 s');
    t.is(r.exitCode, 1, String(r.stderr));
    t.regex(String(r.stderr), c.names);
    t.notRegex(String(r.stderr), /internal error|\n\s+at /);
  });
}

for (const name of ['toString', 'constructor', '__proto__', 'valueOf']) {
  test(`a ServiceEntry port named ${name} keeps its upstream port a number`, async (t) => {
    // The endpoint's ports map names another port only: the service port's own number applies.
    const config = parseProxyConfig(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [a.example]
  ports: [{number: 80, name: ${name}, protocol: TCP}]
  resolution: STATIC
  endpoints:
  - {address: 192.0.2.7, ports: {other: 8080}}
  - {address: 192.0.2.8, ports: {${name}: 9090}}
`);
    const registry = new Registry(config, () => new CidrTrie());
    const resolver = new UpstreamResolver(60_000, async () => []);
    const ports = new Map<string, unknown>();
    for (let i = 0; i < 2; i++) {
      const u = await resolver.resolve(registry, { host: 'a.example', port: 80 }, { address: '192.0.2.7', port: 80 });
      ports.set(u.address, u.port);
    }
    t.deepEqual(Object.fromEntries(ports), { '192.0.2.7': 80, '192.0.2.8': 9090 });
  });
}
