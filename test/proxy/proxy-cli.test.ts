/**
 * `interpose proxy` as a command: bad input is rejected before anything is bound, with the
 * flag (or resource and field), the value and what is accepted; exit code 1.
 */
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as seed from '../../src/lab/seed-resources.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = (args: string[]) =>
  execa(process.execPath, ['--import', 'tsx', `${root}src/cli/main.ts`, 'proxy', ...args], { reject: false, cwd: root });

test('bad flags name the flag, the value and what is accepted', async (t) => {
  const port = await run(['--config', 'x.yaml', '--outbound-port', '99999']);
  t.is(port.exitCode, 1);
  t.regex(port.stderr, /--outbound-port: "99999": expected a port number 1-65535/);
  const duration = await run(['--config', 'x.yaml', '--connect-timeout', 'soon']);
  t.is(duration.exitCode, 1);
  t.regex(duration.stderr, /--connect-timeout: "soon": expected a duration/);
  const mode = await run(['--config', 'x.yaml', '-m', 'MAGIC']);
  t.is(mode.exitCode, 1);
  t.regex(mode.stderr, /MAGIC.*REDIRECT.*TPROXY|REDIRECT.*TPROXY.*MAGIC/s);
});

test('a missing or invalid config file is refused at start, naming the file, resource and field', async (t) => {
  const missing = await run(['--config', '/nonexistent/mesh.yaml', '--metrics-port', '0']);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /--config: "\/nonexistent\/mesh\.yaml": expected a readable file \(ENOENT\)/);
  const dir = mkdtempSync(join(tmpdir(), 'interpose-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'mesh.yaml');
  writeFileSync(file, seed.httpbinServiceEntry.replace('resolution: DNS', 'resolution: SOMETIMES'));
  const invalid = await run(['--config', file, '--metrics-port', '0', '--outbound-port', '1', '--inbound-port', '2']);
  t.is(invalid.exitCode, 1);
  t.regex(invalid.stderr, /mesh\.yaml: ServiceEntry default\/httpbin-ext spec\.resolution: "SOMETIMES": expected one of NONE, STATIC, DNS/);
});

test('--help documents every option and the signals', async (t) => {
  const help = await run(['--help']);
  t.is(help.exitCode, 0);
  for (const flag of ['--config', '--outbound-port', '--inbound-port', '--interception-mode', '--uid', '--gid', '--access-log',
    '--access-log-encoding', '--metrics-port', '--gateway-address', '--max-connections', '--connect-timeout', '--idle-timeout',
    '--sniff-timeout', '--drain-timeout', '--dns-refresh-rate', '--no-watch', 'SIGHUP', 'SIGTERM']) {
    t.true(help.stdout.includes(flag), flag);
  }
});
