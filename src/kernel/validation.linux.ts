/**
 * `--run-validation`: proves, after rules are applied, that the kernel really redirects, the
 * way istio-iptables' validator does. Listeners bind the redirect ports on loopback; a client
 * dials a probe address and port that only the redirect rules can deliver (127.0.0.6 / ::6 on
 * the probe port, where nothing listens); a connection counts only when it arrives on a
 * listener and SO_ORIGINAL_DST reports exactly the probe address and port. Istio retries
 * once a second for a fixed time; here the client retries every 200 ms until --probe-timeout.
 *
 * Runs in the caller's network namespace (the CLI enters the target namespace first).
 */
import net from 'node:net';
import { InterceptError } from '../errors/intercept-error.js';
import { ValidationError } from '../errors/validation-error.js';
import { NativeError } from '../errors/native-error.js';
import { originalDst } from '../native.js';

/**
 * What istio-iptables prints when its validation fails (tools/istio-iptables/pkg/cmd/root.go),
 * kept so that people and tools that know istio's failure recognise this one.
 */
export const ISTIO_VALIDATION_FAILED =
  'iptables validation failed; workload is not ready for Istio.\n' +
  'When using Istio CNI, this can occur if a pod is scheduled before the node is ready.\n\n' +
  "If installed with 'cni.repair.deletePods=true', this pod should automatically be deleted and retry.\n" +
  'Otherwise, this pod will need to be manually removed so that it is scheduled on a node with istio-cni running, ' +
  'allowing iptables rules to be established.';

/**
 * The redirect was not observed in time. Exit code 126, as istio-iptables: istio-cni's repair
 * controller acts on an istio-validation container that ended with it.
 */
export class RedirectValidationError extends InterceptError {
  override name = 'RedirectValidationError';
  override readonly exitCode = 126;

  /**
   * @param detail what was (not) seen; istio's explanation follows it unless `explained` (a
   *   child process has printed it already).
   */
  constructor(
    readonly detail: string,
    explained = false,
  ) {
    super(explained ? detail : `${detail}\n${ISTIO_VALIDATION_FAILED}`);
  }
}

export interface RedirectValidationOptions {
  /** Outbound capture port (--proxy-port, istio 15001). */
  outboundPort: number;
  /** Inbound capture port (--inbound-capture-port, istio 15006). */
  inboundPort: number;
  /** Port the client dials (--iptables-probe-port, istio 15002). */
  probePort: number;
  /** How long to keep trying (--probe-timeout), in milliseconds. */
  timeoutMs: number;
  /** IPv4 probe destination; default 127.0.0.6, which istio's rules redirect like any peer. */
  probeAddress4?: string;
  /** Also prove the IPv6 redirect (probe ::6, listeners on ::1). */
  ipv6: boolean;
}

const RETRY_MS = 200;

interface FamilyProbe {
  family: 4 | 6;
  loopback: string;
  target: string;
  confirmed: boolean;
  lastClientError?: string;
  lastObservation?: string;
}

function checkPort(field: string, flag: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 65535) throw new ValidationError(`${flag} (${field})`, v, 'a port 1-65535');
}

/**
 * Resolves when every requested family's probe connection arrived redirected with the
 * expected original destination; otherwise throws RedirectValidationError (exit code 126).
 */
export async function validateRedirect(opts: RedirectValidationOptions): Promise<void> {
  checkPort('outboundPort', '--proxy-port', opts.outboundPort);
  checkPort('inboundPort', '--inbound-capture-port', opts.inboundPort);
  checkPort('probePort', '--iptables-probe-port', opts.probePort);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw new ValidationError('--probe-timeout (timeoutMs)', opts.timeoutMs, 'a positive duration');
  }
  const probeAddress4 = opts.probeAddress4 ?? '127.0.0.6';
  if (net.isIPv4(probeAddress4) === false) {
    throw new ValidationError('probeAddress4', probeAddress4, 'an IPv4 address such as 127.0.0.6');
  }

  const probes: FamilyProbe[] = [{ family: 4, loopback: '127.0.0.1', target: probeAddress4, confirmed: false }];
  if (opts.ipv6) probes.push({ family: 6, loopback: '::1', target: '::6', confirmed: false });
  const ports = [...new Set([opts.outboundPort, opts.inboundPort])];

  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const timers: NodeJS.Timeout[] = [];
  let finish: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const allConfirmed = () => probes.every((p) => p.confirmed);

  const onConnection = (probe: FamilyProbe) => (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    try {
      const dst = originalDst(socket);
      if (dst.address === probe.target && dst.port === opts.probePort) {
        probe.confirmed = true;
        if (allConfirmed()) finish!();
      } else {
        probe.lastObservation = `a connection on port ${socket.localPort} had original destination ${dst.address}:${dst.port}`;
      }
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      probe.lastObservation = `a connection on port ${socket.localPort} was not redirected (${err.code})`;
    }
    socket.end();
  };

  try {
    for (const probe of probes) {
      let listening = 0;
      for (const port of ports) {
        const server = net.createServer(onConnection(probe));
        servers.push(server);
        const ok = await new Promise<boolean>((resolve) => {
          server.once('error', (err: NodeJS.ErrnoException) => {
            probe.lastObservation = `could not listen on ${probe.loopback} port ${port}: ${err.code}`;
            resolve(false);
          });
          server.listen({ port, host: probe.loopback, ipv6Only: probe.family === 6 }, () => resolve(true));
        });
        if (ok) listening++;
      }
      if (listening === 0) {
        throw new RedirectValidationError(
          `redirect validation failed: could not listen on any redirect port (${ports.join(', ')}) on ${probe.loopback}: ${probe.lastObservation}`,
        );
      }
    }

    const dial = (probe: FamilyProbe) => {
      if (probe.confirmed) return;
      const client = net.connect({ host: probe.target, port: opts.probePort, localAddress: probe.loopback });
      sockets.add(client);
      client.on('error', (err: NodeJS.ErrnoException) => {
        probe.lastClientError = err.code ?? err.message;
      });
      client.on('connect', () => client.end());
      client.on('close', () => sockets.delete(client));
      timers.push(setTimeout(() => dial(probe), RETRY_MS));
    };
    for (const probe of probes) dial(probe);

    let timedOut = false;
    await Promise.race([
      done,
      new Promise<void>((resolve) =>
        timers.push(
          setTimeout(() => {
            timedOut = true;
            resolve();
          }, opts.timeoutMs),
        ),
      ),
    ]);
    if (timedOut && !allConfirmed()) {
      const missing = probes.filter((p) => !p.confirmed);
      const details = missing.map((p) => {
        const where = p.family === 6 ? `[${p.target}]:${opts.probePort}` : `${p.target}:${opts.probePort}`;
        const seen = [
          p.lastClientError && `client error ${p.lastClientError}`,
          p.lastObservation,
        ].filter(Boolean);
        return `IPv${p.family}: no connection to ${where} arrived redirected on ${p.loopback} port ${ports.join(' or ')}${seen.length ? ` (${seen.join('; ')})` : ''}`;
      });
      throw new RedirectValidationError(
        `redirect validation failed after ${opts.timeoutMs} ms: ${details.join('; ')}. ` +
          'Check that the nat OUTPUT rules are installed in this network namespace and redirect the probe port.',
      );
    }
  } finally {
    for (const t of timers) clearTimeout(t);
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}
