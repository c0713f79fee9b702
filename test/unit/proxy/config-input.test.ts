/**
 * `interpose proxy --config`: no file and no YAML makes the loader fail with anything but a
 * configuration error naming the file (or the resource and field). An alias bomb, an oversized
 * file, a FIFO, and resources the loader once crashed on (VirtualService redirect/directResponse
 * without route, ServiceEntry without ports: `internal error: TypeError` from ValidationError
 * quoting `undefined`) each get a message instead. Start and reload both read through
 * loadProxyConfig; the CLI case checks start ends with exit 1 and no stack trace.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../../src/errors/validation-error.js';
import { PROXY_CONFIG_MAX_BYTES, loadProxyConfig, parseProxyConfig } from '../../../src/proxy/istio-yaml.js';
import { runCli } from '../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'interpose-proxy-config-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Nine levels of nine aliases each: 9^9 (387 million) strings once expanded. */
const BILLION_LAUGHS = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
  .concat('bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`))
  .join('\n');

const resource = (kind: string, spec: string, namespace = '') =>
  `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata:\n  name: r1\n${namespace ? `  namespace: ${namespace}\n` : ''}spec:\n${spec}`;

function rejects(t: import('ava').ExecutionContext, yaml: string, message: RegExp): void {
  const err = t.throws(() => parseProxyConfig(yaml, 'mesh.yaml'), { instanceOf: ValidationError }, message.source);
  t.regex(err!.message, message);
}

test('an alias bomb is a configuration error naming the file and the alias limit', (t) => {
  rejects(t, BILLION_LAUGHS, /^invalid value for mesh\.yaml document 1: "Excessive alias count.*": expected YAML whose aliases expand at most 100 times/);
  // Aliases as people use them (a shared port list) still work.
  const ok = parseProxyConfig(resource('ServiceEntry', '  hosts: [a.example]\n  ports: &p [{number: 443, name: https, protocol: TLS}]\n  resolution: DNS\n'));
  t.is(ok.serviceEntries[0]!.ports[0]!.number, 443);
});

test('a VirtualService http route without a destination, redirect or directResponse is an error naming the resource and the field; unimplemented actions are named', (t) => {
  // redirect and directResponse answer by themselves: no route needed (these used to crash the loader).
  t.is(parseProxyConfig(resource('VirtualService', '  hosts: [a.example]\n  http:\n  - redirect: {uri: /x}\n', 'ns1')).virtualServices[0]!.http[0]!.redirect?.uri, '/x');
  t.is(parseProxyConfig(resource('VirtualService', '  hosts: [a.example]\n  http:\n  - directResponse: {status: 503}\n')).virtualServices[0]!.http[0]!.directResponse?.status, 503);
  rejects(t, resource('VirtualService', '  hosts: [a.example]\n  http:\n  - mirror: {host: b.example}\n    route: [{destination: {host: a.example}}]\n', 'ns1'), /^mesh\.yaml: VirtualService ns1\/r1 spec\.http\[0\]\.mirror: valid Istio, but interpose proxy does not implement it/);
  rejects(t, resource('VirtualService', '  hosts: [a.example]\n  http:\n  - name: nothing\n'), /^invalid value for mesh\.yaml: VirtualService default\/r1 spec\.http\[0\]\.route: \(not set\): expected at least one route destination$/);
});

test('mappings whose keys shadow Object.prototype (constructor: null, toString: null) are errors naming the field, not crashes', (t) => {
  rejects(t, resource('ServiceEntry', '  hosts: [a.example]\n  ports: [{number: 80, name: {constructor: null}, protocol: HTTP}]\n'), /^mesh\.yaml: ServiceEntry default\/r1 spec\.ports\[0\]\.name\.constructor: a key named "constructor"/);
  rejects(t, resource('ServiceEntry', '  hosts: [a.example]\n  ports: [{number: 80, name: {toString: null}, protocol: HTTP}]\n'), /spec\.ports\[0\]\.name/);
  // An unknown kind is listed as ignored, by its JSON text (String() of it threw).
  t.deepEqual(parseProxyConfig('kind: {toString: null}\n', 'mesh.yaml').ignored, ['{"toString":null} (no metadata.name)']);
});

test('a ServiceEntry without ports (or hosts) is an error naming the resource and the field', (t) => {
  rejects(t, resource('ServiceEntry', '  hosts: [a.example]\n  resolution: DNS\n', 'egress'), /^invalid value for mesh\.yaml: ServiceEntry egress\/r1 spec\.ports: \(not set\): expected at least one port$/);
  rejects(t, resource('ServiceEntry', '  ports: [{number: 80}]\n'), /^invalid value for mesh\.yaml: ServiceEntry default\/r1 spec\.hosts: \(not set\): expected at least one host$/);
});

test('a config file over the size limit, a FIFO and a directory are refused, naming --config, the file and the limit', (t) => {
  const big = join(dir, 'big.yaml');
  writeFileSync(big, `# ${'x'.repeat(PROXY_CONFIG_MAX_BYTES)}\n`);
  const tooBig = t.throws(() => loadProxyConfig(big), { instanceOf: ValidationError });
  t.is(tooBig!.message, `invalid value for --config: ${JSON.stringify(big)}: expected a readable file (larger than 8 MiB, the limit for this file): a regular file of at most 8 MiB`);
  const fifo = join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]);
  t.regex(t.throws(() => loadProxyConfig(fifo), { instanceOf: ValidationError })!.message, /--config: .*fifo\.yaml.*not a regular file \(a FIFO\)/);
  t.regex(t.throws(() => loadProxyConfig(dir), { instanceOf: ValidationError })!.message, /not a regular file \(a directory\)/);
});

test('interpose proxy: an alias bomb at start is exit 1 with one message, no stack trace', async (t) => {
  const bomb = join(dir, 'bomb.yaml');
  writeFileSync(bomb, BILLION_LAUGHS);
  const r = await runCli(['proxy', '--config', bomb]);
  t.is(r.exitCode, 1, r.stderr);
  t.regex(r.stderr, new RegExp(`^interpose: invalid value for ${bomb} document 1: .*aliases expand at most 100 times`));
  t.notRegex(r.stderr, /internal error|\n\s+at /);
});
