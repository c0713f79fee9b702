/**
 * Where real connections land under random configurations: include/exclude CIDR sets, port
 * lists, the proxy uid, IPv4 and IPv6. The expectation is istio-init's documented semantics,
 * written independently of the rule builder below; the kernel decides the observation.
 */
import { randomInt } from 'node:crypto';
import { parseCidr, type Cidr } from '../../src/net/cidr.js';
import { runCli } from '../helpers/cli.js';
import { ISTIO_BASE } from '../helpers/istio-config.js';
import { kernelTest } from '../helpers/kernel.js';
import { createPodAndWorld, probe, startAgent } from '../helpers/topology.js';
import { SeededRandom } from '../helpers/seeded-random.js';

const PORTS = [80, 443, 5000, 8080];
const PROXY_UID = 1337;
const TUNNEL_PORT = 15008;
const POD_ADDRESSES = ['100.64.0.1', '2001:db8:ffff::1'];

interface Scenario {
  inbound: number[] | '*' | 'none';
  inboundExclude: number[];
  include: string[] | '*';
  exclude: string[];
  portsInclude: number[];
  portsExclude: number[];
  /** Pass --enable-ipv6 explicitly (otherwise auto-detected from the pod's addresses). */
  ipv6: boolean;
}

/** istio-init's outbound decision for a new TCP connection from an ordinary or proxy user. */
function expected(s: Scenario, dst: string, port: number, uid: number | undefined): 'proxy' | 'world' {
  const addr = parseCidr(dst)!;
  // IPv6 is captured with or without --enable-ipv6: the pod has a global IPv6 address, and
  // interpose (like istio, which looks at the pod IP) turns IPv6 rules on for it.
  if (uid === PROXY_UID) return 'world';
  if (s.portsExclude.includes(port)) return 'world';
  const within = (list: string[]) => list.map((c) => parseCidr(c)!).some((c) => contains(c, addr));
  if (within(s.exclude)) return 'world';
  if (s.portsInclude.includes(port)) return 'proxy';
  if (s.include === '*' || within(s.include)) return 'proxy';
  return 'world';
}

/** istio-init's inbound decision for a new TCP connection to the pod on `port`. */
function expectedInbound(s: Scenario, port: number): 'inbound' | 'app' {
  if (port === TUNNEL_PORT || s.inbound === 'none') return 'app';
  if (s.inbound === '*') return s.inboundExclude.includes(port) ? 'app' : 'inbound';
  return s.inbound.includes(port) ? 'inbound' : 'app';
}

function contains(net: Cidr, host: Cidr): boolean {
  if (net.family !== host.family) return false;
  return host.address.match(net.address, net.prefixLength);
}

function randomPrefix(rnd: SeededRandom, family: 4 | 6): string {
  if (family === 6) {
    const len = rnd.pick([52, 56, 60, 64]);
    return `2001:db8:100:${rnd.int(0, 15).toString(16)}${rnd.int(0, 15).toString(16)}00::/${len}`;
  }
  const base = rnd.pick(['192.0.2', '198.51.100', '203.0.113']);
  const len = rnd.pick([24, 25, 26, 27, 28]);
  return `${base}.${rnd.int(0, 255)}/${len}`;
}

function randomDestination(rnd: SeededRandom, family: 4 | 6): string {
  if (family === 6) return `2001:db8:100:${rnd.int(0, 15).toString(16)}${rnd.int(0, 15).toString(16)}${rnd.int(0, 255).toString(16)}::${rnd.int(1, 0xffff).toString(16)}`;
  return `${rnd.pick(['192.0.2', '198.51.100', '203.0.113'])}.${rnd.int(1, 254)}`;
}

kernelTest('connections land on the proxy or bypass it exactly as istio-init semantics say (random configurations)', async (t) => {
  const seed = Number(process.env.LANDING_SEED ?? randomInt(1, 2 ** 31));
  t.log(`seed ${seed} (rerun with LANDING_SEED=${seed})`);
  const rnd = new SeededRandom(seed);
  const { pod, world } = await createPodAndWorld(t, PORTS);
  // In the pod: the workload on its ports, and the inbound capture port's catcher.
  await startAgent(t, pod, 'tag-server.mjs', ['app', ...PORTS.map(String), String(TUNNEL_PORT)]);
  await startAgent(t, pod, 'tag-server.mjs', ['inbound', '15006']);

  const scenarios: Scenario[] = [];
  for (let i = 0; i < 8; i++) {
    const ipv6 = rnd.int(0, 1) === 1;
    const families: Array<4 | 6> = [4, 6];
    const inboundKind = rnd.int(0, 2);
    scenarios.push({
      inbound: inboundKind === 0 ? '*' : inboundKind === 1 ? [rnd.pick(PORTS), rnd.pick(PORTS)] : 'none',
      inboundExclude: rnd.int(0, 1) === 0 ? [rnd.pick(PORTS)] : [],
      include: i % 4 === 0 ? '*' : Array.from({ length: rnd.int(1, 4) }, () => randomPrefix(rnd, rnd.pick(families))),
      exclude: Array.from({ length: rnd.int(0, 3) }, () => randomPrefix(rnd, rnd.pick(families))),
      portsInclude: rnd.int(0, 2) === 0 ? [rnd.pick(PORTS)] : [],
      portsExclude: rnd.int(0, 2) === 0 ? [rnd.pick(PORTS)] : [],
      ipv6,
    });
  }

  let probes = 0;
  for (const s of scenarios) {
    const args = [
      'istio-iptables', ...ISTIO_BASE, '--network-namespace', pod.name, '--reconcile',
      '-i', s.include === '*' ? '*' : s.include.join(','),
      '-x', s.exclude.join(','),
      '-q', s.portsInclude.join(','),
      '-o', s.portsExclude.join(','),
      '-b', s.inbound === '*' ? '*' : s.inbound === 'none' ? '' : s.inbound.join(','),
      '-d', s.inboundExclude.join(','),
      ...(s.ipv6 ? ['--enable-ipv6'] : []),
    ];
    const applied = await runCli(args);
    t.is(applied.exitCode, 0, applied.stderr);

    // Destinations: random ones plus one inside each include and exclude prefix.
    const inside = [...(s.include === '*' ? [] : s.include), ...s.exclude].map((c) => parseCidr(c)!).map((c) => {
      const bytes = c.address.toByteArray();
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! | 1;
      return c.family === 4 ? bytes.join('.') : `${c.address.toString().replace(/::$/, '')}::1`.replace(/:::/, '::');
    });
    const dsts = [...inside, ...Array.from({ length: 14 }, () => randomDestination(rnd, rnd.int(0, 2) === 0 ? 6 : 4))];
    const targets: Array<[string, number]> = dsts.map((d) => [d, rnd.pick(PORTS)]);
    for (const uid of [undefined, PROXY_UID]) {
      const got = await probe(pod, targets, uid);
      const want = targets.map(([d, p]) => expected(s, d, p, uid));
      const label = `config ${JSON.stringify(s)} uid ${uid ?? 0}`;
      t.deepEqual(
        targets.map(([d, p], i) => `${d}:${p} ${got[i]}`),
        targets.map(([d, p], i) => `${d}:${p} ${want[i]}`),
        label,
      );
      probes += targets.length;
    }

    // Inbound: from the world to the pod's own addresses.
    const inboundTargets: Array<[string, number]> = POD_ADDRESSES.flatMap((a) => [...PORTS, TUNNEL_PORT].map((p): [string, number] => [a, p]));
    const gotIn = await probe(world, inboundTargets);
    t.deepEqual(
      inboundTargets.map(([d, p], i) => `${d}:${p} ${gotIn[i]}`),
      inboundTargets.map(([d, p]) => `${d}:${p} ${expectedInbound(s, p)}`),
      `inbound, config ${JSON.stringify(s)}`,
    );
    probes += inboundTargets.length;
  }
  t.log(`${probes} connections across ${scenarios.length} configurations`);
});
