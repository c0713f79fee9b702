/**
 * Table-driven bad input: every case must exit non-zero with one message naming the flag (or
 * variable), and leave the kernel exactly as it was. Runs against a namespace that already
 * holds interpose's rules plus foreign ones, so "unchanged" is a real check.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { ISTIO_BASE } from '../helpers/istio-config.js';
import { Netns, kernelTest } from '../helpers/kernel.js';
import { netfilterState, policyRouting } from '../helpers/netfilter.js';

interface BadCase {
  args: string[];
  env?: Record<string, string>;
  /** What the message must name (flag or variable), and part of what it says is accepted. */
  names: RegExp;
  /** What the message must not say (a list file's other lines). */
  absent?: RegExp;
  /** The command, when not istio-iptables (it then gets no base flags). */
  command?: string[];
}

/** Files the @FILE cases read: a FIFO, a file over the 16 MiB limit, and one that is not a CIDR list. */
const files = mkdtempSync(join(tmpdir(), 'interpose-bad-input-'));
process.on('exit', () => rmSync(files, { recursive: true, force: true }));
const FIFO = join(files, 'fifo');
execFileSync('mkfifo', [FIFO]);
const BIG = join(files, 'big');
writeFileSync(BIG, '192.0.2.0/24\n'.repeat(1_400_000));
const SECRET = join(files, 'shadow');
writeFileSync(SECRET, '192.0.2.0/24\nroot:$6$saltsalt$hashhashhashhashhashhashhashhashhashhashhashhash:19000:0:99999:7:::\nsecond-line-secret\n');

const cases: BadCase[] = [
  { args: ['-p', '0'], names: /-p\/--envoy-port.*"0".*1 to 65535/ },
  { args: ['-p', '65536'], names: /-p\/--envoy-port.*"65536"/ },
  { args: ['-p', 'abc'], names: /-p\/--envoy-port.*"abc"/ },
  { args: ['-p', '-1'], names: /-p\/--envoy-port|option '-p, --envoy-port <port>' argument missing/ },
  { args: ['-z', '15006x'], names: /-z\/--inbound-capture-port.*"15006x"/ },
  { args: ['-e', ''], names: /-e\/--inbound-tunnel-port.*""/ },
  { args: ['-b', '80,http'], names: /-b\/--istio-inbound-ports.*bad item "http"/ },
  { args: ['-b', '70000'], names: /-b\/--istio-inbound-ports.*70000/ },
  { args: ['-d', '22,*'], names: /-d\/--istio-local-exclude-ports.*bad item "\*"/ },
  { args: ['-q', '1-100'], names: /-q\/--istio-outbound-ports.*bad item "1-100"/ },
  { args: ['-o', '0'], names: /-o\/--istio-local-outbound-ports-exclude.*"0"/ },
  { args: ['-i', '10.0.0.0/33'], names: /-i\/--istio-service-cidr.*bad item "10\.0\.0\.0\/33"/ },
  { args: ['-i', '10.0.0/8'], names: /-i\/--istio-service-cidr.*bad item/ },
  { args: ['-i', '300.1.1.1/32'], names: /-i\/--istio-service-cidr/ },
  { args: ['-i', '2001:db8::/129'], names: /-i\/--istio-service-cidr.*2001:db8::\/129/ },
  { args: ['-i', '192.0.2.0/24,*'], names: /-i\/--istio-service-cidr.*bad item "\*"/ },
  { args: ['-x', '*'], names: /-x\/--istio-service-exclude-cidr.*"\*" is not allowed/ },
  { args: ['-x', 'example.com'], names: /-x\/--istio-service-exclude-cidr.*example\.com/ },
  { args: ['-c', 'this-name-is-way-too-long'], names: /-c\/--istio-exclude-interfaces.*1-15 printable/ },
  { args: ['-k', 'eth0/1'], names: /-k\/--kube-virt-interfaces.*eth0\/1/ },
  { args: ['-k', 'a b'], names: /-k\/--kube-virt-interfaces/ },
  { args: ['-u', 'no-such-user-xyz'], names: /-u\/--proxy-uid.*does not resolve/ },
  { args: ['-u', '1337,-5'], names: /-u\/--proxy-uid.*bad item "-5"/ },
  { args: ['-g', 'no_such_group_xyz'], names: /-g\/--proxy-gid.*does not resolve/ },
  { args: ['-m', 'tproxy'], names: /-m\/--istio-inbound-interception-mode.*REDIRECT or TPROXY/ },
  { args: ['-m', 'DNAT'], names: /-m\/--istio-inbound-interception-mode.*"DNAT"/ },
  { args: ['-t', '0'], names: /-t\/--istio-inbound-tproxy-mark.*packet mark/ },
  { args: ['-t', '4294967296'], names: /-t\/--istio-inbound-tproxy-mark/ },
  { args: ['-r', '254'], names: /-r\/--istio-inbound-tproxy-route-table.*main \(254\)/ },
  { args: ['-r', 'main'], names: /-r\/--istio-inbound-tproxy-route-table.*"main"/ },
  { args: ['--probe-timeout', '5 seconds'], names: /--probe-timeout.*duration/ },
  { args: ['--probe-timeout', '0s'], names: /--probe-timeout.*positive duration/ },
  { args: ['--iptables-probe-port', '99999'], names: /--iptables-probe-port.*99999/ },
  { args: ['--redirect-dns=maybe'], names: /--redirect-dns.*"maybe".*boolean/ },
  { args: ['--force-iptables-binary', 'iptables-foo'], names: /--force-iptables-binary.*iptables-legacy or iptables-nft/ },
  { args: ['--network-namespace', 'no-such-ns-xyz'], names: /--network-namespace.*existing network namespace/ },
  { args: ['--network-namespace', '../etc'], names: /--network-namespace.*namespace name/ },
  { args: ['--no-such-flag'], names: /unknown option '--no-such-flag'/ },
  { args: ['-Z', '1'], names: /unknown option '-Z'/ },
  { args: ['stray-positional'], names: /unexpected argument "stray-positional" for 'istio-iptables'/ },
  { args: ['-x', '203.0.113.0/24/24'], names: /-x\/--istio-service-exclude-cidr.*bad item "203\.0\.113\.0\/24\/24"/ },
  { args: ['-i', '192.0.2.0/24/'], names: /-i\/--istio-service-cidr.*bad item "192\.0\.2\.0\/24\/"/ },
  { args: ['-i', '@/dev/zero'], names: /-i\/--istio-service-cidr.*at most 16 MiB \(\/dev\/zero: not a regular file \(a character device\)\)/ },
  { args: ['-x', `@${FIFO}`], names: /-x\/--istio-service-exclude-cidr.*not a regular file \(a FIFO\)/ },
  { args: ['-x', `@${files}`], names: /-x\/--istio-service-exclude-cidr.*not a regular file \(a directory\)/ },
  { args: ['-i', `@${BIG}`], names: /-i\/--istio-service-cidr.*larger than 16 MiB/ },
  { args: ['-i', `@${SECRET}`], names: /-i\/--istio-service-cidr \(.*shadow line 2\): "root:\$6\$saltsalt… \(\d+ characters\)"/, absent: /second-line-secret|hashhash|192\.0\.2\.0/ },
  { args: ['--native-nftables', '--force-iptables-binary', 'iptables-nft'], names: /--force-iptables-binary: "iptables-nft".*--native-nftables/ },
  { command: ['verify'], args: ['--cleanup-only'], names: /--cleanup-only.*`interpose verify`, which changes nothing/ },
  { command: ['verify'], args: ['--reconcile'], names: /--reconcile.*`interpose verify`/ },
  { command: ['trace', '--dst', '192.0.2.1', '--dport', '80'], args: ['--run-validation'], names: /--run-validation.*`interpose trace`/ },
  { command: ['trace', '--dst', '192.0.2.1', '--dport', '80'], args: ['--dry-run'], names: /-n\/--dry-run.*`interpose trace`/ },
  { args: [], env: { ISTIO_SERVICE_CIDR: '10.0.0.0/99' }, names: /\$ISTIO_SERVICE_CIDR.*10\.0\.0\.0\/99/ },
  { args: [], env: { ENVOY_PORT: 'x' }, names: /\$ENVOY_PORT.*"x"/ },
  { args: [], env: { INVALID_DROP: 'yes' }, names: /\$INVALID_DROP.*"yes".*boolean/ },
  { args: [], env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'no_such_group_xyz' }, names: /\$ISTIO_OUTBOUND_OWNER_GROUPS.*does not resolve/ },
  { args: [], env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '10.0.0.0/8' }, names: /\$ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR.*127\.0\.0\.0\/8/ },
];

kernelTest(`bad input (${cases.length} cases): non-zero exit, a message naming the flag, kernel unchanged`, async (t) => {
  const ns = await Netns.create(t);
  await ns.exec(['iptables-restore', '--noflush'], { input: '*nat\n:FOREIGN - [0:0]\n-A FOREIGN -j RETURN\nCOMMIT\n' });
  const installed = await runCli(['istio-iptables', ...ISTIO_BASE, '--network-namespace', ns.name, '-m', 'TPROXY', '-b', '*', '-i', '*']);
  t.is(installed.exitCode, 0, installed.stderr);
  const before = await netfilterState(ns);
  const routesBefore = await policyRouting(ns);

  for (const c of cases) {
    // The namespace flag goes first so a bad value later cannot be mistaken for "no namespace".
    const args = c.args[0] === '--network-namespace' ? c.args : ['--network-namespace', ns.name, ...c.args];
    // Env cases run without the base flags, which would otherwise win over the variables.
    const base = c.env || c.command ? [] : ISTIO_BASE;
    const r = await runCli([...(c.command ?? ['istio-iptables']), ...base, ...args], { env: c.env ?? {} });
    const label = `${[...(c.command ?? []), ...c.args].join(' ')} ${JSON.stringify(c.env ?? {})}`;
    t.not(r.exitCode, 0, `${label}: must fail`);
    t.is(r.exitCode, 1, `${label}: bad input exits 1`);
    t.regex(r.stderr, c.names, `${label}: message`);
    if (c.absent) t.notRegex(r.stderr, c.absent, `${label}: says nothing else from the file`);
    t.notRegex(r.stderr, /internal error|\n\s+at /, `${label}: no stack trace`);
    t.is(r.stdout, '', `${label}: nothing on stdout`);
  }
  t.is(await netfilterState(ns), before, 'no case changed the rules');
  t.is(await policyRouting(ns), routesBefore, 'no case changed policy routing');
});
