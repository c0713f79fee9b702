import { Command, Option } from 'commander';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { destination, pino } from 'pino';
import { ValidationError } from '../errors/index.js';
import { goDurationMs } from '../config/value-parsers.js';
import { portFromText } from '../net/port.js';
import { ProxyServer, type ProxyServerOptions } from '../proxy/proxy-server.js';
import { helpText } from './help-layout.js';

function portFlag(flag: string, allowZero = false) {
  return (value: string): number => {
    const port = portFromText(value, allowZero ? 0 : 1);
    if (port === undefined) throw new ValidationError(flag, value, allowZero ? 'a port number 0-65535 (0 = off)' : 'a port number 1-65535');
    return port;
  };
}

/** An IP literal, naming `flag`: the listeners bind it as given (the splice relay takes nothing else). */
function addressFlag(flag: string, examples = '0.0.0.0, :: or 127.0.0.1') {
  return (value: string): string => {
    if (isIP(value) === 0) throw new ValidationError(flag, value, `an IPv4 or IPv6 address such as ${examples}`);
    return value;
  };
}

/**
 * A listener that could not bind (address not on this host, port taken, no permission) as the
 * error naming the flag that chose it, not an internal error with a stack.
 */
function listenFailure(err: unknown, flags: ProxyFlags): ValidationError | undefined {
  const e = err as { syscall?: unknown; code?: unknown; address?: unknown; port?: unknown };
  if (e?.syscall !== 'listen' || typeof e.code !== 'string') return undefined;
  const byPort: [number | undefined, string][] = [
    [flags.outboundPort, '--outbound-port'],
    [flags.inboundPort, '--inbound-port'],
    [flags.metricsPort, '--metrics-port / --metrics-address'],
    [flags.dnsPort, '--dns-port'],
  ];
  const flag = byPort.find(([port]) => port === e.port)?.[1] ?? '--gateway-address (a Gateway server port)';
  return new ValidationError(flag, `${String(e.address)} port ${String(e.port)}`, `an address of this host and a free port interpose may listen on (${e.code})`);
}

function idFlag(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) > 0xfffffffe) throw new ValidationError(flag, value, 'a numeric id 0-4294967294');
    return Number(value);
  };
}

function durationFlag(flag: string) {
  return (value: string): number => {
    const ms = goDurationMs(value);
    if (ms === undefined) throw new ValidationError(flag, value, 'a duration such as 10s, 500ms, 1m or 1h');
    return ms;
  };
}

function positiveInt(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new ValidationError(flag, value, 'a positive integer');
    return Number(value);
  };
}

/**
 * A boolean proxy setting from its flags, else from istio-agent's environment variable (read
 * as Go's strconv.ParseBool, the way istio-agent reads it), else false.
 */
function flagOrEnv(flag: boolean | undefined, env: string): boolean {
  if (flag !== undefined) return flag;
  const value = process.env[env];
  if (value === undefined || value === '') return false;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new ValidationError(env, value, 'true or false');
}

/** The flags as commander parses them: those that pass to the server unchanged keep its types. */
interface ProxyFlags
  extends Pick<
    ProxyServerOptions,
    | 'outboundPort'
    | 'inboundPort'
    | 'bindAddress'
    | 'interceptionMode'
    | 'uid'
    | 'gid'
    | 'accessLogEncoding'
    | 'metricsAddress'
    | 'gatewayAddress'
    | 'maxConnections'
    | 'watch'
  > {
  config: string;
  accessLog: string;
  metricsPort: number;
  connectTimeout: number;
  idleTimeout: number;
  sniffTimeout: number;
  drainTimeout: number;
  relay: 'splice' | 'streams';
  dnsRefreshRate: number;
  dnsCapture?: boolean;
  dnsPort: number;
  dnsAutoAllocate?: boolean;
  nativeHttp: boolean;
  logLevel: string;
}

/** `interpose proxy`: the in-process redirect target (Istio's egress model without Envoy). */
export function proxyCommand(): Command {
  return new Command('proxy')
    .summary('the redirect target: passes, refuses or proxies each redirected connection per Istio YAML')
    .description(
      'Redirect target for the rules istio-iptables installs: reads each redirected connection\'s ' +
        'original destination and passes it through, refuses it, or proxies it per Istio ' +
        'ServiceEntry / VirtualService / DestinationRule / Gateway YAML and outboundTrafficPolicy, ' +
        'logging every connection and request in Envoy\'s access log format.',
    )
    .requiredOption('--config <file>', 'multi-document Istio YAML (resources and outboundTrafficPolicy); reloaded on change and SIGHUP')
    .option('--outbound-port <port>', 'outbound listener, the target of istio-iptables -p', portFlag('--outbound-port'), 15001)
    .option('--inbound-port <port>', 'inbound listener, the target of istio-iptables -z', portFlag('--inbound-port'), 15006)
    .option('--bind-address <address>', 'address of the outbound and inbound listeners ("::" takes IPv4 too)', addressFlag('--bind-address', ':: (all, dual stack), 0.0.0.0 or 127.0.0.1'), '::')
    .addOption(
      new Option('-m, --interception-mode <mode>', 'how inbound traffic arrives, as istio-iptables -m')
        .choices(['REDIRECT', 'TPROXY'])
        .default('REDIRECT'),
    )
    .option('--uid <uid>', 'drop to this uid after binding (istio-iptables -u; the rules let its traffic out)', idFlag('--uid'))
    .option('--gid <gid>', 'drop to this gid after binding (istio-iptables -g)', idFlag('--gid'))
    .option('--access-log <path>', 'access log destination: a file, "-" for stdout, "off"', '-')
    .addOption(new Option('--access-log-encoding <encoding>', 'access log encoding').choices(['TEXT', 'JSON']).default('TEXT'))
    .option('--metrics-port <port>', 'Prometheus endpoint /stats/prometheus (0 = off)', portFlag('--metrics-port', true), 15090)
    .option('--metrics-address <address>', 'address of the metrics endpoint', addressFlag('--metrics-address'), '0.0.0.0')
    .option('--gateway-address <address>', 'address the Gateway servers\' listeners bind', addressFlag('--gateway-address'), '0.0.0.0')
    .option('--max-connections <n>', 'refuse (RST) connections beyond this many open ones, with a log line', positiveInt('--max-connections'), 65536)
    .addOption(new Option('--connect-timeout <duration>', 'upstream connect timeout').argParser(durationFlag('--connect-timeout')).default(10_000, '10s'))
    .addOption(new Option('--idle-timeout <duration>', 'close TCP connections idle this long in both directions').argParser(durationFlag('--idle-timeout')).default(3_600_000, '1h'))
    .addOption(new Option('--sniff-timeout <duration>', 'how long to wait for a client\'s first bytes (SNI/Host) before deciding without them').argParser(durationFlag('--sniff-timeout')).default(0, '0s: wait for the client, bounded by --idle-timeout'))
    .addOption(new Option('--drain-timeout <duration>', 'on SIGTERM, how long open connections may finish before being closed').argParser(durationFlag('--drain-timeout')).default(5_000, '5s'))
    .addOption(new Option('--dns-refresh-rate <duration>', 'how long resolution: DNS answers are reused (getaddrinfo reports no TTL)').argParser(durationFlag('--dns-refresh-rate')).default(5_000, '5s'))
    .addOption(
      new Option('--relay <engine>', 'TCP/TLS byte relay: "splice" (zero-copy, in the native addon\'s relay thread) or "streams" (Node streams)')
        .choices(['splice', 'streams'])
        .default('splice'),
    )
    .option('--dns-capture', 'run the DNS proxy, as istio-agent does when ISTIO_META_DNS_CAPTURE=true (the default then); use with istio-iptables --redirect-dns')
    .option('--no-dns-capture', 'no DNS proxy, whatever ISTIO_META_DNS_CAPTURE says')
    .option('--dns-port <port>', 'DNS proxy port on 127.0.0.1 and ::1, UDP and TCP (the target of --redirect-dns)', portFlag('--dns-port'), 15053)
    .option('--dns-auto-allocate', 'answer address-less ServiceEntry hosts with addresses from 240.240.0.0/16 and 2001:2::/48 (default: ISTIO_META_DNS_AUTO_ALLOCATE)')
    .option('--no-dns-auto-allocate', 'no auto-allocated addresses, whatever ISTIO_META_DNS_AUTO_ALLOCATE says')
    .option('--no-native-http', 'serve every HTTP/1.1 request and h2c connection with Node\'s HTTP servers instead of the native fast path (see docs/proxy.md)')
    .option('--no-watch', 'reload only on SIGHUP, not when the file changes')
    .addOption(new Option('--log-level <level>', 'operational log level (stderr, JSON)').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addHelpText(
      'after',
      helpText(
        '\nSignals: SIGHUP reloads the config (an invalid file is logged and the old config stays); ' +
          'SIGTERM/SIGINT stop accepting, let open connections finish (--drain-timeout) and exit 0.\n' +
          '\nExample (with rules from `interpose istio-iptables -p 15001 -z 15006 -u 1337 -g 1337`):\n' +
          '  interpose proxy --config egress.yaml --uid 1337 --gid 1337\n',
      ),
    )
    .action(async (flags: ProxyFlags) => {
      const dnsCapture = flagOrEnv(flags.dnsCapture, 'ISTIO_META_DNS_CAPTURE');
      const dnsAutoAllocate = flagOrEnv(flags.dnsAutoAllocate, 'ISTIO_META_DNS_AUTO_ALLOCATE');
      if (dnsAutoAllocate && !dnsCapture && flags.dnsAutoAllocate) {
        throw new ValidationError('--dns-auto-allocate', true, 'only with the DNS proxy on (--dns-capture or ISTIO_META_DNS_CAPTURE=true): allocated addresses mean nothing unless DNS answers with them');
      }
      const log = pino({ name: 'interpose-proxy', level: flags.logLevel }, destination({ dest: 2, sync: true }));
      if (dnsAutoAllocate && !dnsCapture) log.warn('ISTIO_META_DNS_AUTO_ALLOCATE has no effect without DNS capture (as in Istio): no DNS proxy runs');
      const server = await ProxyServer.start({
        configFile: resolve(flags.config),
        outboundPort: flags.outboundPort,
        inboundPort: flags.inboundPort,
        bindAddress: flags.bindAddress,
        interceptionMode: flags.interceptionMode,
        ...(flags.uid !== undefined ? { uid: flags.uid } : {}),
        ...(flags.gid !== undefined ? { gid: flags.gid } : {}),
        accessLog: flags.accessLog,
        accessLogEncoding: flags.accessLogEncoding,
        ...(flags.metricsPort > 0 ? { metricsPort: flags.metricsPort } : {}),
        metricsAddress: flags.metricsAddress,
        gatewayAddress: flags.gatewayAddress,
        maxConnections: flags.maxConnections,
        connectTimeoutMs: flags.connectTimeout,
        idleTimeoutMs: flags.idleTimeout,
        sniffTimeoutMs: flags.sniffTimeout,
        drainTimeoutMs: flags.drainTimeout,
        relay: flags.relay,
        dnsRefreshMs: flags.dnsRefreshRate,
        ...(dnsCapture ? { dns: { port: flags.dnsPort, resolvConf: '/etc/resolv.conf', autoAllocate: dnsAutoAllocate } } : {}),
        nativeHttp: flags.nativeHttp,
        watch: flags.watch,
        log,
      }).catch((err: unknown) => {
        throw listenFailure(err, flags) ?? err;
      });
      await new Promise<void>((done) => {
        const stop = (signal: string) => {
          log.info({ signal, open: server.openConnections }, `${signal}: draining ${server.openConnections} open connections`);
          void server.stop().then(({ remaining }) => {
            log.info({ remaining }, remaining ? `closed ${remaining} connections still open after the drain timeout` : 'drained');
            done();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      process.exit(0);
    });
}
