/**
 * `interpose trace`: what the kernel does with one packet under a configuration (istio-iptables
 * flags, exactly as `interpose istio-iptables` would install them) or under the rules the
 * kernel holds now (`--from-kernel`), and which rule decides.
 */
import { executorIn, istioFromCommandLine, type IstioFlagValues } from './cli-settings.js';
import { Command } from 'commander';
import { ISTIO_FLAGS, camel, flagDisplay } from '../config/istio-flags.js';
import { ValidationError } from '../errors/validation-error.js';
import { SystemExecutor, type Executor } from '../kernel/executor.js';
import { LinuxSystemLookups } from '../kernel/system-lookups.linux.js';
import { parseStrictAddress } from '../net/cidr.js';
import { formatTrace, traceJson } from '../trace/format.js';
import { programFromRulesetIptables, programFromRulesetNft } from '../trace/from-ruleset.js';
import { programFromDumps, readKernelDumps, routeFor } from '../kernel/trace-program.linux.js';
import { unmapped } from '../trace/kernel-destination.js';
import { buildPacket, type PacketOptions } from '../trace/packet.js';
import type { TraceProgram } from '../trace/program.js';
import { tracePacket } from '../trace/walker.js';
import { checkNetworkNamespace } from '../config/network-namespace.js';
import { helpText } from './help-layout.js';
import { addIstioFlagOptions } from './istio-flag-option.js';
import { warn } from './log.js';

/** An istio-iptables flag as a commander option (same names and letters as that command). */
const PACKET_OPTIONS = ['src', 'dst', 'dport', 'sport', 'proto', 'uid', 'gid', 'in', 'out', 'direction', 'state', 'mark'] as const;

export function traceCommand(): Command {
  const cmd = new Command('trace')
    .summary('say what the kernel does with a packet, and which rule decides')
    .description(
      'Say what the kernel does with a packet (redirect to the proxy, TPROXY, DNS redirect, untouched or drop) ' +
        'and which rule decides, for a configuration (istio-iptables flags) or for the rules the kernel holds now.',
    )
    .allowExcessArguments(false)
    .requiredOption('--dst <addr>', 'destination address (IPv4 or IPv6)')
    .requiredOption('--dport <port>', 'destination port')
    .option('--src <addr>', 'source address (default: from `ip route get` with --from-kernel/--network-namespace, else a documentation address)')
    .option('--sport <port>', 'source port (default 40000)')
    .option('--proto <tcp|udp>', 'transport protocol (default tcp)')
    .option('--uid <n>', 'uid of the sending process, outbound only (default 0)')
    .option('--gid <n>', 'gid of the sending process, outbound only (default: the uid)')
    .option('--in <iface>', 'interface an inbound packet arrives on (implies --direction inbound)')
    .option('--out <iface>', 'interface an outbound packet leaves by (default: from `ip route get`, else lo for loopback, eth0 otherwise)')
    .option('--direction <outbound|inbound>', 'outbound: sent by a local process (default); inbound: arriving for this host')
    .option('--state <NEW|ESTABLISHED|RELATED|INVALID>', 'conntrack state of the packet (default NEW: the first packet of a connection)')
    .option('--mark <n>', 'packet mark when the trace starts (default 0)')
    .option('--from-kernel', 'trace the rules the kernel holds now (iptables-save / nft -j list) instead of a configuration')
    .option('--json', 'print the result as JSON');
  addIstioFlagOptions(cmd, 'read');
  cmd.addHelpText(
    'after',
    helpText(
      '\nConfiguration: every istio-iptables flag that describes rules (and its environment variable) is accepted ' +
        'and builds the rules exactly as `interpose istio-iptables` would; --native-nftables traces the nftables ' +
        "backend's tables. Flags that only matter when applying (--dry-run, --cleanup-only, --reconcile, " +
        '--force-apply, --run-validation, --skip-rule-apply, --iptables-probe-port, --probe-timeout) are refused. ' +
        'With --from-kernel only --network-namespace applies.\n' +
        "\nVerdicts that involve nat assume a NEW connection: nat rules decide on a connection's first packet only.\n" +
        '\nExamples:\n' +
        '  interpose trace -i 10.96.0.0/12 --dst 203.0.113.5 --dport 443 --uid 1000\n' +
        '  interpose trace --from-kernel --network-namespace pod1 \\\n' +
        '      --dst 10.96.0.10 --dport 80 --uid 1000\n' +
        '  interpose trace -b "*" --in eth0 --dst 192.0.2.10 --dport 8080 --json\n',
    ),
  );
  cmd.action(runTrace);
  return cmd;
}

async function runTrace(opts: IstioFlagValues): Promise<void> {
  const system = new SystemExecutor();
  const lookups = new LinuxSystemLookups(system);
  const fromKernel = opts.fromKernel === true;
  let program: TraceProgram;
  let executor: Executor | undefined;
  const extraNotes: string[] = [];

  if (fromKernel) {
    const given = ISTIO_FLAGS.filter((s) => s.long !== 'network-namespace' && opts[camel(s.long)] !== undefined);
    if (given.length > 0) {
      throw new ValidationError(flagDisplay(given[0]!), opts[camel(given[0]!.long)], 'no configuration flags with --from-kernel (the rules come from the kernel); only --network-namespace');
    }
    const ns = typeof opts.networkNamespace === 'string' && opts.networkNamespace !== '' ? opts.networkNamespace : undefined;
    if (ns) await checkNetworkNamespace(ns, '--network-namespace', lookups);
    executor = executorIn(system, ns);
    program = programFromDumps(await readKernelDumps(executor), ns ? `network namespace ${ns}` : 'this network namespace');
  } else {
    const { config, run, warnings, ruleset, executor: configured } = await istioFromCommandLine(opts, system, lookups);
    for (const w of warnings) warn(w);
    program = run.nativeNftables
      ? programFromRulesetNft(ruleset, 'configuration from flags, as the nftables backend installs it')
      : programFromRulesetIptables(ruleset, 'configuration from flags, as the iptables backend installs it');
    // Without a namespace the packet's route is not asked: the trace is of the configuration alone.
    if (run.networkNamespace) executor = configured;
    if (!run.nativeNftables && !config.enableIPv6 && typeof opts.dst === 'string' && opts.dst.includes(':')) {
      extraNotes.push('this configuration generates no IPv6 rules (IPv6 comes with --enable-ipv6, --dual-stack, or a global IPv6 address in the namespace), so no IPv6 packet is captured');
    }
  }

  const packetOptions: PacketOptions = { dst: String(opts.dst), dport: String(opts.dport) };
  for (const k of PACKET_OPTIONS) {
    const v = opts[k];
    if (typeof v === 'string') (packetOptions as unknown as Record<string, string>)[k] = v;
  }
  const routeNotes: string[] = [];
  const outbound = packetOptions.direction !== 'inbound' && packetOptions.in === undefined;
  if (executor && outbound && (packetOptions.out === undefined || packetOptions.src === undefined)) {
    // Ask the namespace's routing table, as the kernel does before OUTPUT, for the address the
    // kernel really sends to (an IPv4-mapped one is routed as IPv4).
    let family: 4 | 6 = 4;
    let routed = packetOptions.dst;
    try {
      const dst = unmapped(parseStrictAddress(packetOptions.dst));
      family = dst.kind() === 'ipv4' ? 4 : 6;
      routed = dst.toString();
    } catch {
      // buildPacket reports the bad address below.
    }
    const route = await routeFor(executor, routed, family);
    if (packetOptions.out === undefined && route.dev) {
      packetOptions.out = route.dev;
      routeNotes.push(`leaves by ${route.dev}, as the namespace's route to ${packetOptions.dst} says (ip route get)`);
    }
    if (packetOptions.src === undefined && route.src) {
      packetOptions.src = route.src;
      routeNotes.push(`source address ${route.src}, as the namespace's route to ${packetOptions.dst} says (ip route get)`);
    }
  }
  const { packet, assumptions } = buildPacket(packetOptions);
  const result = tracePacket(program, packet);
  const withNotes = { ...result, notes: [...result.notes, ...extraNotes, ...routeNotes] };
  const allAssumptions = assumptions;
  if (opts.json === true) {
    process.stdout.write(JSON.stringify(traceJson(withNotes, packet, program.source, allAssumptions), bigintSafe, 2) + '\n');
  } else {
    process.stdout.write(formatTrace(withNotes, packet, program.source, allAssumptions));
  }
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
