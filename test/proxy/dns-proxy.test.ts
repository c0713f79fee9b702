/**
 * The DNS proxy in network namespaces with real clients (dig, getent): a pod whose rules come
 * from `interpose istio-iptables --redirect-dns`, `interpose proxy --dns-capture` as uid 1337,
 * and a world running a stand-in nameserver on 192.0.2.53 (the pod's only resolv.conf
 * nameserver). What the stand-in logs tells which questions reached the upstream.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { isRoot, kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import { HTTPBIN, NOWHERE } from '../../src/lab/world/addresses.js';
import { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { installIstioRules, removeIstioRules } from './helpers/rules.js';

const NAMESERVER = '192.0.2.53';
const SEARCH = 'ns1.svc.cluster.local svc.cluster.local';

let world: World;
let proxy: ProxyProcess;
let standIn: ResultPromise | undefined;
const upstreamLog: string[] = [];
let configFile: string;

/**
 * A STATIC TCP ServiceEntry for HOST (named after it) on PORT, whose one endpoint is ENDPOINT;
 * with ADDRESS as its address, without one when ADDRESS is undefined (auto-allocation gives it
 * one).
 */
const tcpEntry = (host: string, port: number, endpoint: string, address?: string) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${host.replaceAll('.', '-')}
spec:
  hosts: [${host}]
${address === undefined ? '' : `  addresses: [${address}]\n`}  ports: [{number: ${port}, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: ${endpoint}}]
`;

const dbInternal = tcpEntry('db.internal', 5432, '192.0.2.50', '192.0.2.50');
// No addresses: auto-allocation gives it one, and its endpoint is the httpbin stand-in.
const tcpInternal = tcpEntry('tcp.internal', 80, HTTPBIN.address);
// Another address-less TCP entry on the same port, first in the file: without allocated
// addresses it would own port 80 whole (Istio's 0.0.0.0:80 listener) and take tcp.internal's
// connections to an address where nothing listens.
const otherInternal = tcpEntry('other.internal', 80, NOWHERE.address);
const newInternal = tcpEntry('new.internal', 5432, '192.0.2.51', '192.0.2.51');
const mesh = 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n';

async function startProxy(): Promise<ProxyProcess> {
  return ProxyProcess.start(world.pod.name, [
    '--config', configFile, '--uid', '1337', '--gid', '1337', '--metrics-port', '15090', '--dns-capture', '--dns-auto-allocate',
  ]);
}

test.before(async () => {
  if (!isRoot) return;
  world = await World.create({ prefix: 'dns' });
  await world.inWorld(['ip', 'addr', 'add', `${NAMESERVER}/32`, 'dev', 'lo']);
  // Written before the rules: --redirect-dns captures the nameservers resolv.conf names.
  world.pod.writeEtc('resolv.conf', `nameserver ${NAMESERVER}\nsearch ${SEARCH}\noptions ndots:5 timeout:1 attempts:1\n`);
  await installIstioRules(world.pod.name, ['-i', '*', '--redirect-dns']);
  const script = join(import.meta.dirname, '..', 'helpers', 'agents', 'dns-stand-in.mjs');
  standIn = execa('ip', ['netns', 'exec', world.world.name, 'node', script, NAMESERVER], { reject: false, buffer: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the stand-in nameserver did not start')), 10_000);
    let partial = '';
    standIn!.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') {
          clearTimeout(timer);
          resolve();
        } else upstreamLog.push(line);
      }
    });
  });
  configFile = `${world.dir}/mesh.yaml`;
  writeFileSync(configFile, mesh + dbInternal + otherInternal + tcpInternal);
  proxy = await startProxy();
});

test.after.always(async () => {
  await proxy?.stop();
  standIn?.kill('SIGKILL');
  if (world) await removeIstioRules(world.pod.name).catch(() => undefined);
  await world?.destroy();
});

async function dig(args: string[]) {
  const r = await world.inPod(['dig', '+time=2', '+tries=1', ...args], { reject: false });
  return { exitCode: r.exitCode, stdout: String(r.stdout) };
}

const upstreamSaw = (name: string) => upstreamLog.filter((l) => l.split(' ')[2] === name);

async function metric(name: string, labels: string): Promise<number> {
  const r = await world.inPod(['curl', '-sS', 'http://127.0.0.1:15090/stats/prometheus']);
  const line = String(r.stdout).split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

kernelTest('a ServiceEntry host resolves in the pod from its addresses, with no upstream record (dig and getent)', async (t) => {
  const r = await dig(['+short', 'db.internal']);
  t.is(r.stdout.trim(), '192.0.2.50');
  // getent walks the search list first (ndots:5): the expansions are answered with a CNAME.
  const g = await world.inPod(['getent', 'hosts', 'db.internal'], { reject: false });
  t.is(g.exitCode, 0);
  t.regex(String(g.stdout), /^192\.0\.2\.50\s+db\.internal/);
  const expanded = await dig(['+short', 'db.internal.ns1.svc.cluster.local']);
  t.deepEqual(expanded.stdout.trim().split('\n'), ['db.internal.', '192.0.2.50']);
  // A host with only IPv4 addresses has no AAAA: NOERROR and no answer, not NXDOMAIN.
  const aaaa = await dig(['AAAA', 'db.internal']);
  t.regex(aaaa.stdout, /status: NOERROR/);
  t.regex(aaaa.stdout, /ANSWER: 0/);
  t.deepEqual(upstreamLog.filter((l) => l.includes('db.internal')), []);
});

kernelTest('an address-less TCP ServiceEntry gets an auto-allocated address the proxy routes to it', async (t) => {
  const a = await dig(['+short', 'tcp.internal']);
  t.regex(a.stdout.trim(), /^240\.240\.\d+\.\d+$/);
  const aaaa = await dig(['+short', 'AAAA', 'tcp.internal']);
  t.regex(aaaa.stdout.trim(), /^2001:2::f0f0:[0-9a-f]+$/);
  // REGISTRY_ONLY: only the registry's claim on the allocated address lets this through.
  const mark = proxy.accessLog.length;
  const curl = await world.inPod(['curl', '-sS', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', 'http://tcp.internal/headers'], { reject: false });
  t.is(String(curl.stdout), '200', String(curl.stderr));
  const line = await proxy.nextAccessLog(/outbound\|80\|\|tcp\.internal/, mark);
  t.true(line.includes(`"${HTTPBIN.address}:80"`), line);
  t.true(line.includes(`${a.stdout.trim()}:80`), line);
});

kernelTest('other names are forwarded to the resolv.conf nameserver and cached for their TTL', async (t) => {
  const first = await dig(['www.example.org']);
  t.regex(first.stdout, /^www\.example\.org\.\s+\d+\s+IN\s+A\s+192\.0\.2\.80$/m);
  const second = await dig(['www.example.org']);
  const ttl = Number(/^www\.example\.org\.\s+(\d+)/m.exec(second.stdout)?.[1]);
  t.true(ttl > 0 && ttl <= 60, `TTL ${ttl}`);
  t.deepEqual(upstreamSaw('www.example.org'), ['query udp www.example.org A']);
  const missing = await dig(['nowhere.example.org']);
  t.regex(missing.stdout, /status: NXDOMAIN/);
});

kernelTest('TCP queries are answered; a truncated upstream answer is fetched over TCP and truncated again for a small UDP client', async (t) => {
  const tcp = await dig(['+tcp', '+short', 'www.example.org']);
  t.is(tcp.stdout.trim(), '192.0.2.80');
  // The upstream truncates over UDP; the proxy asks it again over TCP and, since the answer fits
  // the client's EDNS size, replies over UDP in full (+ignore: dig must not retry over TCP itself).
  const whole = await dig(['+ignore', 'big.example.org']);
  t.regex(whole.stdout, /flags: qr rd ra; QUERY: 1, ANSWER: 30,/);
  const truncated = await dig(['+noedns', '+ignore', 'big.example.org']);
  t.regex(truncated.stdout, /flags: qr tc/);
  // dig retries over TCP on TC, as resolvers do: the whole answer then arrives.
  const full = await dig(['+noedns', '+short', 'big.example.org']);
  t.is(full.stdout.trim().split('\n').length, 30);
  t.true(upstreamSaw('big.example.org').includes('query tcp big.example.org A'));
});

kernelTest('malformed messages are dropped, counted and logged; the proxy goes on answering', async (t) => {
  const udpBefore = await metric('interpose_dns_malformed_total', 'protocol="udp"');
  const tcpBefore = await metric('interpose_dns_malformed_total', 'protocol="tcp"');
  // To the nameserver's address, as a workload would send it: the rules bring it to the proxy.
  await world.inPod(['bash', '-c', `printf 'not a dns message' > /dev/udp/${NAMESERVER}/53`]);
  // A TCP length prefix of 65535 announces more than any query: the connection is closed.
  // inPod has no timeout of its own: timeout(1) bounds the call (its process group, cat
  // included, is killed after 5 s) should the proxy keep the connection open.
  await world.inPod(['timeout', '-k', '1', '5', 'bash', '-c', `exec 3<>/dev/tcp/${NAMESERVER}/53; printf '\\xff\\xff' >&3; cat <&3 >/dev/null`], { reject: false });
  let udpAfter = udpBefore;
  for (let i = 0; i < 20 && udpAfter === udpBefore; i++) {
    await new Promise((r) => setTimeout(r, 100));
    udpAfter = await metric('interpose_dns_malformed_total', 'protocol="udp"');
  }
  t.is(udpAfter, udpBefore + 1);
  t.is(await metric('interpose_dns_malformed_total', 'protocol="tcp"'), tcpBefore + 1);
  t.true(proxy.logs.some((l) => l.includes('dropped a malformed message')));
  t.is((await dig(['+short', 'db.internal'])).stdout.trim(), '192.0.2.50');
});

kernelTest('a reload picks up a new ServiceEntry host', async (t) => {
  const before = await dig(['new.internal']);
  t.regex(before.stdout, /status: NXDOMAIN/);
  writeFileSync(configFile, mesh + dbInternal + otherInternal + tcpInternal + newInternal);
  t.true(await proxy.reload());
  t.is((await dig(['+short', 'new.internal'])).stdout.trim(), '192.0.2.51');
});

kernelTest('with the DNS proxy stopped, DNS in the pod fails: the rules send it nowhere else', async (t) => {
  t.is((await dig(['+short', 'db.internal'])).stdout.trim(), '192.0.2.50');
  await proxy.stop();
  const r = await dig(['+short', 'www.example.org']);
  // dig exit 9: no reply from any server.
  t.is(r.exitCode, 9, r.stdout);
  const g = await world.inPod(['getent', 'hosts', 'db.internal'], { reject: false });
  t.not(g.exitCode, 0);
  proxy = await startProxy();
  t.is((await dig(['+short', 'db.internal'])).stdout.trim(), '192.0.2.50');
});
