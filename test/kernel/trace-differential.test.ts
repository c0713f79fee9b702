/**
 * `interpose trace` against the kernel: random configurations × random packets, both families,
 * several users and ports. For each packet, the verdict trace gives — for the configuration
 * (flags → IR) and for the rules read back from the kernel (iptables-save / nft -j) — must
 * name where a real connection lands: the outbound proxy (15001), the inbound/TPROXY listener
 * (15006), the DNS proxy (15053), the pod's own server, or the world. Among the packets are
 * connections to the unspecified address (0.0.0.0, [::]) and to IPv4-mapped IPv6 addresses,
 * which the kernel rewrites before the rules see them.
 *
 * TRACE_SEED=N reproduces a run; TRACE_CONFIGS=N changes the number of configurations per
 * backend (12 by default: about 1100 connections in all, well under a minute).
 */
import type { ExecutionContext } from 'ava';
import { randomInt } from 'node:crypto';
import { resolveSettings } from '../../src/config/istio-flags.js';
import { buildIstioOptions } from '../../src/config/istio-options.js';
import { NamespacedExecutor, SystemExecutor } from '../../src/kernel/executor.js';
import { LinuxSystemLookups } from '../../src/kernel/system-lookups.linux.js';
import { parseCidr } from '../../src/net/cidr.js';
import { buildIstioRuleset } from '../../src/rules/istio-ruleset.js';
import { programFromRulesetIptables, programFromRulesetNft } from '../../src/trace/from-ruleset.js';
import { findNft } from '../../src/kernel/nftables-backend.linux.js';
import { programFromDumps, readKernelDumps } from '../../src/kernel/trace-program.linux.js';
import { buildPacket, type PacketOptions } from '../../src/trace/packet.js';
import type { TraceProgram } from '../../src/trace/program.js';
import { tracePacket } from '../../src/trace/walker.js';
import { runCli } from '../helpers/cli.js';
import { parseArgv } from '../helpers/istio-config.js';
import { kernelTest, type Netns } from '../helpers/kernel.js';
import { SeededRandom } from '../helpers/seeded-random.js';
import { createPodAndWorld, probeAs, startAgent, startInNamespace } from '../helpers/topology.js';

const WORLD_PORTS = [80, 443, 5000, 8080, 53];
const APP_PORTS = [80, 443, 5000, 8080, 15008, 15090];
const POD_V4 = '100.64.0.1';
const POD_V6 = '2001:db8:ffff::1';
const WORLD_V4 = '100.64.0.2';
const WORLD_V6 = '2001:db8:ffff::2';
const DNS_V4 = '192.0.2.53';
const DNS_V6 = '2001:db8:100::53';
/** Which agent answers on each redirect port. */
const TAG_BY_PORT = new Map([
  [15001, 'proxy'],
  [15006, 'inbound'],
  [15053, 'dns'],
]);
const IDENTITIES = [
  { uid: 0, gid: 0 },
  { uid: 1000, gid: 1000 },
  { uid: 1337, gid: 1337 },
  { uid: 1337, gid: 4000 },
  { uid: 3000, gid: 1337 },
  { uid: 3000, gid: 2000 },
];
/** Keeps `nft` the system's one: under npm, node_modules/.bin (with an unrelated `nft`) leads PATH. */
const SYSTEM_PATH = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
const CONFIGS_PER_BACKEND = Number(process.env.TRACE_CONFIGS ?? 12);

/**
 * A transparent (IP_TRANSPARENT / IPV6_TRANSPARENT) listener on 15006 answering "inbound":
 * TPROXY delivers only to transparent sockets, and REDIRECT works with one just as well.
 */
const TRANSPARENT_LISTENER = `
import select, socket
socks = []
for fam, host in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(socket.IPPROTO_IPV6, 75, 1)
    else:
        s.setsockopt(socket.SOL_IP, 19, 1)
    s.bind((host, 15006))
    s.listen(1024)
    socks.append(s)
print('ready', flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        c, _ = s.accept()
        try:
            c.sendall(b'inbound\\n')
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        c.close()
`;

async function startTransparentListener(t: ExecutionContext, ns: Netns): Promise<void> {
  await startInNamespace(t, ns, ['python3', '-c', TRANSPARENT_LISTENER], 'transparent listener');
}

function randomPrefix(rnd: SeededRandom, family: 4 | 6): string {
  if (family === 6) return `2001:db8:100:${rnd.int(0, 15).toString(16)}${rnd.int(0, 15).toString(16)}00::/${rnd.pick([52, 56, 60, 64])}`;
  return `${rnd.pick(['192.0.2', '198.51.100', '203.0.113'])}.${rnd.int(0, 255)}/${rnd.pick([24, 25, 26, 27, 28])}`;
}

function randomWorldAddress(rnd: SeededRandom, family: 4 | 6): string {
  if (family === 6) return `2001:db8:100:${rnd.int(0, 15).toString(16)}${rnd.int(0, 15).toString(16)}${rnd.int(0, 255).toString(16)}::${rnd.int(1, 0xffff).toString(16)}`;
  return `${rnd.pick(['192.0.2', '198.51.100', '203.0.113'])}.${rnd.int(1, 254)}`;
}

/** An address inside a prefix (its network address + 1), so include/exclude lists get hit. */
function inside(prefix: string): string {
  const c = parseCidr(prefix)!;
  const bytes = c.address.toByteArray();
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! | 1;
  if (c.family === 4) return bytes.join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return words.join(':');
}

interface Config {
  args: string[];
  env: Record<string, string>;
  include: string[];
  exclude: string[];
  tproxy: boolean;
  dns: boolean;
}

function randomConfig(rnd: SeededRandom, veth: string, index: number): Config {
  const fam = () => rnd.pick([4, 6] as const);
  const include = index % 4 === 0 ? [] : Array.from({ length: rnd.int(1, 4) }, () => randomPrefix(rnd, fam()));
  const exclude = Array.from({ length: rnd.int(0, 3) }, () => randomPrefix(rnd, fam()));
  const tproxy = rnd.int(0, 3) === 0;
  const dns = rnd.int(0, 2) === 0;
  const inbound = rnd.pick(['*', '*', '', 'list']);
  const args = [
    '-p', '15001', '-z', '15006', '-e', '15008', '-u', '1337',
    '-g', rnd.pick(['1337', '1337', '2000', '1337,2000']),
    '-m', tproxy ? 'TPROXY' : 'REDIRECT',
    '-i', index % 4 === 0 ? '*' : include.join(','),
    '-x', exclude.join(','),
    '-q', rnd.int(0, 2) === 0 ? String(rnd.pick(WORLD_PORTS.slice(0, 4))) : '',
    '-o', rnd.int(0, 2) === 0 ? String(rnd.pick(WORLD_PORTS.slice(0, 4))) : '',
    '-b', inbound === 'list' ? [rnd.pick(APP_PORTS), rnd.pick(APP_PORTS)].join(',') : inbound,
    '-d', inbound === '*' && rnd.int(0, 1) === 1 ? rnd.pick(APP_PORTS).toString() : '',
    '-c', rnd.pick(['', '', '', 'lo', 'va+', veth]),
    '-k', rnd.int(0, 5) === 0 ? veth : '',
    ...(dns ? ['--redirect-dns', ...(rnd.int(0, 1) === 1 ? ['--capture-all-dns'] : [])] : []),
    '--enable-ipv6',
  ];
  const env: Record<string, string> = {};
  const groups = rnd.int(0, 5);
  if (groups === 0) env.ISTIO_OUTBOUND_OWNER_GROUPS = rnd.pick(['2000', '4000,1000']);
  if (groups === 1) env.ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE = rnd.pick(['2000', '1000']);
  return { args, env, include, exclude, tproxy, dns };
}

interface Probe {
  label: string;
  from: 'pod' | 'world';
  owner?: { uid: number; gid: number };
  target: [string, number];
  packet: PacketOptions;
}

function probesFor(rnd: SeededRandom, cfg: Config, veth: string): Probe[] {
  const probes: Probe[] = [];
  const identities = [...IDENTITIES].sort(() => rnd.next() - 0.5).slice(0, 4);
  for (const owner of identities) {
    const dsts: Array<[string, number]> = [];
    for (const p of [...cfg.include, ...cfg.exclude]) dsts.push([inside(p), rnd.pick(WORLD_PORTS.slice(0, 4))]);
    while (dsts.length < 7) {
      const f = rnd.pick([4, 6] as const);
      dsts.push([randomWorldAddress(rnd, f), rnd.pick(WORLD_PORTS)]);
    }
    if (cfg.dns) dsts.push([rnd.pick([DNS_V4, DNS_V6]), 53]);
    // The pod's own addresses: out over lo.
    dsts.push([POD_V4, rnd.pick(APP_PORTS.slice(0, 4))], [POD_V6, rnd.pick(APP_PORTS.slice(0, 4))]);
    for (const [dst, dport] of dsts.slice(0, 11)) {
      const own = dst === POD_V4 || dst === POD_V6;
      const v6 = dst.includes(':');
      probes.push({
        label: `uid ${owner.uid} gid ${owner.gid} -> ${dst}:${dport}`,
        from: 'pod',
        owner,
        target: [dst, dport],
        packet: { dst, dport, uid: owner.uid, gid: owner.gid, out: own ? 'lo' : veth, src: own ? dst : v6 ? POD_V6 : POD_V4 },
      });
    }
    // Addresses the kernel rewrites before OUTPUT: the unspecified address (a connection to
    // self, by lo, wherever the rules say it goes) and an IPv4-mapped one from an IPv6 socket
    // (IPv4 on the wire, the IPv4 rules decide; the socket's own address reads ::ffff:100.64.0.1).
    const v4 = dsts.map(([d]) => d).filter((d) => !d.includes(':') && d !== POD_V4 && d !== DNS_V4);
    // The third element adds to the packet; the destination is always the edge's own.
    const edges: Array<[string, number, Omit<PacketOptions, 'dst' | 'dport'>]> = [
      ['0.0.0.0', rnd.pick(APP_PORTS.slice(0, 4)), {}],
      ['::', rnd.pick(APP_PORTS.slice(0, 4)), {}],
      [`::ffff:${rnd.pick(v4.length > 0 ? v4 : [randomWorldAddress(rnd, 4)])}`, rnd.pick(WORLD_PORTS.slice(0, 4)), { out: veth, src: `::ffff:${POD_V4}` }],
    ];
    for (const [dst, dport, extra] of edges) {
      probes.push({
        label: `uid ${owner.uid} gid ${owner.gid} -> ${dst.includes(':') ? `[${dst}]` : dst}:${dport}`,
        from: 'pod',
        owner,
        target: [dst, dport],
        packet: { dst, dport, uid: owner.uid, gid: owner.gid, ...extra },
      });
    }
  }
  for (let i = 0; i < 8; i++) {
    const v6 = i % 2 === 1;
    const dport = rnd.pick(APP_PORTS);
    const dst = v6 ? POD_V6 : POD_V4;
    probes.push({
      label: `inbound ${dst}:${dport}`,
      from: 'world',
      target: [dst, dport],
      packet: { dst, dport, in: veth, src: v6 ? WORLD_V6 : WORLD_V4 },
    });
  }
  return probes;
}

/** Where trace says the connection lands, in the agents' words. */
function expectedLanding(program: TraceProgram, probe: Probe): string {
  const { packet } = buildPacket(probe.packet);
  const v = tracePacket(program, packet).verdict;
  switch (v.kind) {
    case 'redirect':
    case 'dns-redirect':
    case 'tproxy':
      return TAG_BY_PORT.get(v.port) ?? `port ${v.port}`;
    case 'untouched':
      // By lo: one of the pod's own addresses, or the unspecified address turned loopback.
      return packet.outInterface === 'lo' || packet.direction === 'inbound' ? 'local' : 'world';
    case 'drop':
      return 'dropped';
  }
}

function differential(backend: 'iptables' | 'nftables'): void {
  kernelTest(`trace's verdict is where real connections land (${backend}, random configurations)`, async (t) => {
    const seed = Number(process.env.TRACE_SEED ?? randomInt(1, 2 ** 31));
    t.log(`seed ${seed} (rerun with TRACE_SEED=${seed})`);
    const rnd = new SeededRandom(seed);
    const { pod, world } = await createPodAndWorld(t, WORLD_PORTS);
    pod.writeEtc('resolv.conf', `nameserver ${DNS_V4}\nnameserver ${DNS_V6}\n`);
    await startAgent(t, pod, 'tag-server.mjs', ['dns', '15053']);
    await startAgent(t, pod, 'tag-server.mjs', ['local', ...APP_PORTS.map(String)]);
    await startTransparentListener(t, pod);
    const links = String((await pod.exec(['ip', '-o', 'link', 'show'])).stdout);
    const veth = /^\d+: (va[0-9a-f]+)@/m.exec(links)![1]!;
    const lookups = new LinuxSystemLookups(new SystemExecutor());
    const podExec = new NamespacedExecutor(new SystemExecutor(), pod.name);

    let packets = 0;
    for (let i = 0; i < CONFIGS_PER_BACKEND; i++) {
      const cfg = randomConfig(rnd, veth, i);
      // A fresh netfilter state per configuration: `--reconcile` is not what is under test here.
      await pod.exec([findNft(), 'flush', 'ruleset']);
      const args = [...cfg.args, '--network-namespace', pod.name, ...(backend === 'nftables' ? ['--native-nftables'] : [])];
      const applied = await runCli(['istio-iptables', ...args], { env: { ...cfg.env, ...SYSTEM_PATH } });
      t.is(applied.exitCode, 0, `${args.join(' ')}\n${applied.stderr}`);
      if (applied.exitCode !== 0) return;

      const { config } = await buildIstioOptions(resolveSettings(parseArgv(args), cfg.env), lookups);
      const ruleset = buildIstioRuleset(config);
      const fromFlags = backend === 'nftables' ? programFromRulesetNft(ruleset) : programFromRulesetIptables(ruleset);
      const fromKernel = programFromDumps(await readKernelDumps(podExec), pod.name);

      const probes = probesFor(rnd, cfg, veth);
      const groups = new Map<string, Probe[]>();
      for (const p of probes) {
        const key = p.from === 'world' ? 'world' : `${p.owner!.uid}:${p.owner!.gid}`;
        groups.set(key, [...(groups.get(key) ?? []), p]);
      }
      const landed = new Map<Probe, string>();
      await Promise.all(
        [...groups.values()].map(async (group) => {
          const from = group[0]!.from === 'world' ? world : pod;
          const answers = await probeAs(from, group.map((p) => p.target), group[0]!.owner);
          group.forEach((p, k) => landed.set(p, answers[k]!));
        }),
      );
      // TRACE_DEBUG=1 prints what the kernel held, for a failing configuration.
      if (process.env.TRACE_DEBUG) t.log(String((await pod.exec(['iptables-save'])).stdout), String((await pod.exec(['ip6tables-save'])).stdout), String((await pod.exec([findNft(), 'list', 'ruleset'])).stdout));
      const label = `config ${i}: ${backend} ${cfg.args.join(' ')} env ${JSON.stringify(cfg.env)}`;
      t.deepEqual(
        probes.map((p) => `${p.label} -> ${expectedLanding(fromFlags, p)}`),
        probes.map((p) => `${p.label} -> ${landed.get(p)}`),
        `${label} (trace of the configuration)`,
      );
      t.deepEqual(
        probes.map((p) => `${p.label} -> ${expectedLanding(fromKernel, p)}`),
        probes.map((p) => `${p.label} -> ${landed.get(p)}`),
        `${label} (trace of the kernel's rules)`,
      );
      packets += probes.length;
    }
    t.log(`${packets} connections across ${CONFIGS_PER_BACKEND} configurations, each traced twice`);
    t.true(packets >= 500);
  });
}

differential('iptables');
differential('nftables');
