/**
 * Hostile YAML, read the way every user-facing YAML input is read (src/config/yaml-input.ts):
 * a recursive alias, nesting in the thousands, an alias bomb, two documents where one is
 * expected. Each used to end in `RangeError: Maximum call stack size exceeded` somewhere
 * downstream (the Istio schema walk, JSON quoting); now each is a YamlInputError saying why,
 * and the CLIs that read YAML (proxy --config, annotations-to-flags) exit 1 with one line.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { YAML_MAX_DEPTH, yamlDocument, yamlDocuments, YamlInputError } from '../../../src/config/yaml-input.js';
import { ValidationError } from '../../../src/errors/validation-error.js';
import { parseProxyConfig } from '../../../src/proxy/istio-yaml.js';
import { runCli } from '../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'interpose-yaml-input-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const SERVICE_ENTRY = 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: [a.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n';
const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

const refused = (t: import('ava').ExecutionContext, text: string, reason: RegExp, document = 1) => {
  const err = t.throws(() => yamlDocuments(text), { instanceOf: YamlInputError }, text.slice(0, 60));
  t.regex(err!.reason, reason);
  t.is(err!.document, document);
};

test('a recursive alias is refused as a cycle; the same node aliased twice is fine', (t) => {
  refused(t, 'a: &x [*x]\n', /alias refers to a node that contains it/);
  refused(t, 'a: &m {b: {c: *m}}\n', /cycle/);
  refused(t, 'ok: 1\n---\nmetadata: &m {name: x, labels: *m}\n', /cycle/, 2);
  const shared = yamlDocument('p: &p [{number: 443}]\nq: *p\nr: *p\n') as Record<string, unknown>;
  t.deepEqual(shared['q'], [{ number: 443 }]);
  t.is(shared['q'], shared['r']);
});

test(`nesting is accepted to ${YAML_MAX_DEPTH} levels; deeper, and deeper than the parser can follow, is refused`, (t) => {
  t.notThrows(() => yamlDocuments(nested(YAML_MAX_DEPTH)));
  refused(t, nested(YAML_MAX_DEPTH + 1), new RegExp(`deeper than ${YAML_MAX_DEPTH} levels`));
  refused(t, `a: ${nested(20_000)}\n`, /too deep|deeper than/);
  refused(t, `a: ${'{b: '.repeat(5000)}1${'}'.repeat(5000)}\n`, /too deep|deeper than/);
});

test('an alias bomb, a syntax error, and two documents where one is expected', (t) => {
  const bomb = ['a: &a [1,1,1,1,1,1,1,1,1]', ...'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`)].join('\n');
  refused(t, bomb, /Excessive alias count/);
  refused(t, 'a: [1\n', /./);
  t.regex(t.throws(() => yamlDocument('a: 1\n---\nb: 2\n'), { instanceOf: YamlInputError })!.reason, /2 documents where one was expected/);
  t.is(yamlDocument(''), null);
});

test('Istio config: a recursive alias anywhere is a ValidationError naming the document, never a RangeError', (t) => {
  for (const tail of ['  exportTo: &a [*a]\n', '  workloadSelector: &m {labels: *m}\n', `  exportTo: ${nested(5000)}\n`]) {
    const err = t.throws(() => parseProxyConfig(SERVICE_ENTRY + tail, 'mesh.yaml'), { instanceOf: ValidationError }, tail);
    t.regex(err!.message, /^invalid value for mesh\.yaml document 1: .*(cycle|deep)/);
  }
  // The mesh config inside a ConfigMap is YAML within YAML: read the same way.
  const configMap = 'kind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: "a: &x [*x]"\n';
  t.regex(t.throws(() => parseProxyConfig(configMap, 'cm.yaml'), { instanceOf: ValidationError })!.message, /data\.mesh.*cycle/);
});

test('CLI: proxy --config and annotations-to-flags refuse a recursive alias with exit 1 and one line', async (t) => {
  const config = join(dir, 'cycle.yaml');
  writeFileSync(config, `${SERVICE_ENTRY}  exportTo: &a [*a]\n`);
  const manifest = join(dir, 'pod.yaml');
  writeFileSync(manifest, 'kind: Pod\nmetadata: &m {name: p, annotations: {a: b}, labels: *m}\n');
  const [proxy, annotations] = await Promise.all([runCli(['proxy', '--config', config]), runCli(['annotations-to-flags', manifest])]);
  for (const r of [proxy, annotations]) {
    t.is(r.exitCode, 1, r.stderr);
    t.regex(r.stderr, /^interpose: invalid value for .*document 1: "an alias refers to a node that contains it \(a cycle\)"/);
    t.notRegex(r.stderr, /internal error|RangeError|\n\s+at /);
  }
});
