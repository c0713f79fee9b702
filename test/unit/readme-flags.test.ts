/** The README's flag reference must name every istio-iptables flag and variable the code accepts. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ISTIO_ENV_ONLY, ISTIO_FLAGS } from '../../src/config/istio-flags.js';
import { istioIptablesCommand } from '../../src/cli/istio-iptables.js';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

test('README documents every istio-iptables flag and environment variable', (t) => {
  for (const f of ISTIO_FLAGS) {
    t.true(readme.includes(`--${f.long}`), `README lacks --${f.long}`);
    for (const e of f.env) t.true(readme.includes(e), `README lacks ${e}`);
  }
  for (const f of ISTIO_ENV_ONLY) t.true(readme.includes(f.env[0]!), `README lacks ${f.env[0]}`);
});

test('--help documents every flag, its short letter and its environment variables', (t) => {
  const help = istioIptablesCommand().helpInformation();
  for (const f of ISTIO_FLAGS) {
    t.true(help.includes(`--${f.long}`), `help lacks --${f.long}`);
    if (f.short) t.true(help.includes(`-${f.short}, --${f.long}`), `help lacks -${f.short}`);
    for (const e of f.env) t.true(help.includes(`$${e}`), `help lacks $${e}`);
  }
});
