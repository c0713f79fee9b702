/**
 * Hostile command lines against the built CLI (dist/interpose.js), each a bug once found:
 * a 120 KB value echoed whole in the error, `--dry-run` output cut short in a pipe, a manifest
 * whose kind is an Object.prototype name crashing annotations-to-flags, and a manifest read
 * that never ended (/dev/zero, an endless stdin). No root and no kernel change: istio-iptables
 * runs only with --dry-run or with a value refused before anything is applied.
 */
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, STATE_DIR, runCli } from '../../helpers/cli.js';

const LONG = 'A'.repeat(120_000);
const files = mkdtempSync(join(tmpdir(), 'interpose-hostile-argv-'));
process.on('exit', () => rmSync(files, { recursive: true, force: true }));
const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', INTERPOSE_STATE_DIR: STATE_DIR };

/** `sh -c SCRIPT` with $CLI set: for pipes, which runCli does not build. */
async function shell(script: string, timeout = 60_000) {
  const r = await execa('sh', ['-c', script], { reject: false, env: { ...env, CLI }, extendEnv: false, timeout, maxBuffer: 64 << 20 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), timedOut: r.timedOut };
}

const longValues: { name: string; args: string[]; names: RegExp }[] = [
  { name: 'a user list item', args: ['istio-iptables', '-u', `1,${LONG}`], names: /-u\/--proxy-uid/ },
  { name: 'a port list item', args: ['istio-iptables', '-b', `80,${LONG}`], names: /-b\/--istio-inbound-ports.*bad item "AAA/ },
  { name: 'a CIDR list item', args: ['istio-iptables', '-i', `10.0.0.0/8,${LONG}`], names: /-i\/--istio-service-cidr.*bad item "AAA/ },
  { name: 'an interface list item', args: ['istio-iptables', '-c', `eth0,${LONG}`], names: /-c\/--istio-exclude-interfaces.*bad item "AAA/ },
  { name: 'a log level', args: ['istio-iptables', '--log_output_level', LONG], names: /--log_output_level.*is not a level/ },
  { name: 'a stray argument', args: ['istio-iptables', LONG], names: /unexpected argument "AAA/ },
  { name: "a value commander's choices refuse", args: ['proxy', '--relay', LONG], names: /--relay <engine>.*Allowed choices/ },
  { name: 'a trace address', args: ['trace', '--dst', LONG, '--dport', '80'], names: /--dst/ },
];

for (const c of longValues) {
  test(`a 120 KB value as ${c.name}: refused naming the flag, quoted by its start and length`, async (t) => {
    const r = await runCli(c.args);
    t.is(r.exitCode, 1, r.stderr.slice(0, 500));
    t.regex(r.stderr, c.names);
    t.regex(r.stderr, /… \(1200\d\d characters\)/);
    t.true(r.stderr.length < 2000, `the message is ${r.stderr.length} characters`);
    t.notRegex(r.stderr, /internal error|\n\s+at /);
  });
}

test('--dry-run output larger than a pipe buffer arrives whole through a slow pipe', async (t) => {
  // 4096 CIDRs: about 210 KB of iptables-restore text, more than the 64 KiB a pipe holds.
  const cidrs = Array.from({ length: 4096 }, (_, i) => `10.${i >> 4}.${(i & 15) << 4}.0/28`).join(',');
  writeFileSync(join(files, 'cidrs'), cidrs);
  const toFile = await shell(`node "$CLI" istio-iptables --dry-run -i "$(cat ${files}/cidrs)" > ${files}/dry.txt && wc -c < ${files}/dry.txt`);
  t.is(toFile.exitCode, 0, toFile.stderr);
  const size = Number(toFile.stdout.trim());
  t.true(size > 150_000, `only ${size} bytes`);
  // The reader sleeps before reading: the CLI must not exit with its output still queued.
  const piped = await shell(`node "$CLI" istio-iptables --dry-run -i "$(cat ${files}/cidrs)" | (sleep 0.5; wc -c)`);
  t.is(Number(piped.stdout.trim()), size);
  // A reader that stops early (| head -1) is no error: no EPIPE stack, exit 0.
  const head = await shell(`node "$CLI" istio-iptables --dry-run -i "$(cat ${files}/cidrs)" 2>${files}/head.err | head -1; s=$?; cat ${files}/head.err; exit $s`);
  t.is(head.stdout.split('\n')[0], '# iptables-restore --noflush');
  t.notRegex(head.stdout, /EPIPE|\n\s+at /);
});

for (const kind of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
  test(`annotations-to-flags: a manifest of kind ${kind} holds no workload (was an internal error)`, async (t) => {
    writeFileSync(join(files, `${kind}.json`), JSON.stringify({ kind, metadata: { annotations: {} } }));
    const r = await runCli(['annotations-to-flags', join(files, `${kind}.json`)]);
    t.is(r.exitCode, 1);
    t.regex(r.stderr, /"\(no workload\)": expected a manifest holding a Pod or a workload/);
    t.notRegex(r.stderr, /internal error|\n\s+at /);
  });
}

const unreadable: { name: string; script: string; names: RegExp }[] = [
  { name: 'a manifest that never ends (/dev/zero)', script: 'node "$CLI" annotations-to-flags /dev/zero', names: /\[manifest\]: "\/dev\/zero": .*16 MiB \(larger than 16 MiB/ },
  { name: 'an endless stdin', script: 'cat /dev/zero | node "$CLI" annotations-to-flags -', names: /stdin: "-": .*16 MiB \(larger than 16 MiB/ },
  { name: 'a directory', script: 'node "$CLI" annotations-to-flags /', names: /\[manifest\]: "\/": expected a readable file .*EISDIR/ },
];

for (const c of unreadable) {
  test(`annotations-to-flags: ${c.name} is refused, not read forever`, async (t) => {
    const r = await shell(c.script);
    t.false(r.timedOut, 'still reading after 60 s');
    t.is(r.exitCode, 1, r.stderr.slice(0, 500));
    t.regex(r.stderr, c.names);
    t.notRegex(r.stderr, /internal error|\n\s+at /);
  });
}

test('annotations-to-flags still reads a manifest from a pipe path (process substitution)', async (t) => {
  writeFileSync(join(files, 'pod.yaml'), 'kind: Pod\nmetadata:\n  annotations:\n    traffic.sidecar.istio.io/excludeOutboundPorts: "5432"\n');
  const r = await execa('bash', ['-c', `node "$CLI" annotations-to-flags <(cat ${files}/pod.yaml) --format json`], { reject: false, env: { ...env, CLI }, extendEnv: false, timeout: 60_000 });
  t.is(r.exitCode, 0, String(r.stderr));
  t.deepEqual((JSON.parse(String(r.stdout)) as string[]).slice(-2), ['-o', '5432']);
});

const proxyConfig = join(files, 'proxy.yaml');
writeFileSync(proxyConfig, 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\nspec:\n  hosts: [a.example]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: NONE\n');
/** Ports of this test's own, on 127.0.0.1: the listeners that do bind must not collide with other tests'. */
const ports = (base: number) => ['--bind-address', '127.0.0.1', '--outbound-port', String(base), '--inbound-port', String(base + 1), '--dns-port', String(base + 2)];

const badAddresses: { name: string; args: string[]; names: RegExp }[] = [
  { name: '--bind-address that is not an IP (was an internal error in the relay)', args: [...ports(31_121), '--metrics-port', '0', '--bind-address', 'constructor'], names: /--bind-address: "constructor": expected an IPv4 or IPv6 address/ },
  { name: '--metrics-address that does not resolve (was getaddrinfo\'s internal error)', args: [...ports(31_101), '--metrics-port', '31104', '--metrics-address', 'bogus.invalid'], names: /--metrics-address: "bogus\.invalid": expected an IPv4 or IPv6 address/ },
  { name: '--gateway-address that is not an IP', args: [...ports(31_131), '--metrics-port', '0', '--gateway-address', '1e999'], names: /--gateway-address: "1e999"/ },
  { name: '--metrics-address this host does not hold (was EADDRNOTAVAIL with a stack)', args: [...ports(31_111), '--metrics-address', '192.0.2.254', '--metrics-port', '31114'], names: /--metrics-port \/ --metrics-address: "192\.0\.2\.254 port 31114": expected an address of this host .*\(EADDRNOTAVAIL\)/ },
];

for (const c of badAddresses) {
  test(`interpose proxy: ${c.name}`, async (t) => {
    const r = await runCli(['proxy', '--config', proxyConfig, ...c.args]);
    t.is(r.exitCode, 1, r.stderr.slice(0, 500));
    t.regex(r.stderr, c.names);
    t.notRegex(r.stderr, /internal error|\n\s+at /);
  });
}

for (const seed of ['toString', '__proto__', '']) {
  test(`interpose lab ${JSON.stringify(seed)}: a usage error, not an internal error from the compiled lab's own copy of the errors`, async (t) => {
    const r = await runCli(['lab', seed]);
    t.is(r.exitCode, 1, r.stderr);
    t.is(r.stderr.trim(), `interpose: invalid value for [seed]: ${JSON.stringify(seed)}: expected egress, gateway or tls-origination`);
  });
}
