/**
 * `interpose proxy`: binds the outbound (15001), inbound (15006), gateway and metrics
 * listeners, drops to the proxy uid/gid, and serves until SIGTERM, reloading the Istio
 * configuration on SIGHUP or file change (an invalid new file is logged and ignored; the old
 * configuration stays in force and live connections are never dropped by a reload).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import type { AddressTableFactory } from './address-table.js';
import { AccessLog, type AccessLogEncoding } from './access-log.js';
import { ConfigWatcher } from './config-watcher.js';
import { ConnectionTracker } from './connection-tracker.js';
import { autoAllocate, type AllocatedAddress } from './dns/auto-allocate.js';
import { DnsProxy, type DnsProxyOptions } from './dns/dns-proxy.js';
import { gatewayPorts, handleGateway } from './gateway-handler.js';
import { HttpProxy } from './http-proxy.js';
import { handleInbound } from './inbound-handler.js';
import { loadProxyConfig } from './istio-yaml.js';
import type { ProxyConfig } from './istio-types.js';
import { ProxyMetrics } from './metrics.js';
import type { Endpoint } from './original-destination.linux.js';
import { unseenPassthroughPorts } from './classify.js';
import { handleAcceptedOutbound, handleOutbound } from './outbound-handler.js';
import type { DetachedAdmission } from './connection-tracker.js';
import type { AcceptedConnection, RelayListener, SpliceRelay } from './splice-relay.linux.js';
import { MAX_CLIENT_HELLO } from './tls-client-hello.js';
import { dropPrivileges } from './privileges.js';
import { Registry } from './registry.js';
import { UpstreamResolver } from './upstream-resolver.js';

export interface ProxyServerOptions {
  configFile: string;
  outboundPort: number;
  inboundPort: number;
  /** Address the outbound and inbound listeners bind ("::" accepts IPv4 too). */
  bindAddress: string;
  interceptionMode: 'REDIRECT' | 'TPROXY';
  uid?: number;
  gid?: number;
  /** A file, "-" (stdout), "off", or a function receiving each line. */
  accessLog: string | ((line: string) => void);
  accessLogEncoding: AccessLogEncoding;
  /** Port of /stats/prometheus; undefined = no metrics listener (0 = any free port). */
  metricsPort?: number;
  metricsAddress: string;
  gatewayAddress: string;
  maxConnections: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  sniffTimeoutMs: number;
  drainTimeoutMs: number;
  /**
   * How TCP/TLS bytes are relayed: "splice" hands each connected pair to the addon's
   * zero-copy relay thread (the default); "streams" pipes them through Node streams.
   */
  relay?: 'splice' | 'streams';
  dnsRefreshMs: number;
  /**
   * Plain HTTP/1.1 requests on eligible routes go through the addon's native fast path
   * (http-fast-path-routes.ts); default true. `--no-native-http` sets false.
   */
  nativeHttp?: boolean;
  /**
   * The DNS proxy (istio-agent's, for `istio-iptables --redirect-dns`); undefined = none.
   * `autoAllocate` gives address-less ServiceEntry hosts addresses in 240.240.0.0/16 and 2001:2::/48.
   */
  dns?: Pick<DnsProxyOptions, 'port' | 'resolvConf' | 'addresses' | 'upstreamPort'> & { autoAllocate: boolean };
  watch: boolean;
  log: Logger;
  /** Test seams; production uses the native addon for both. */
  originalDestination?: (socket: Socket) => Endpoint | undefined;
  addressTableFactory?: AddressTableFactory;
}

export class ProxyServer {
  private registry!: Registry;
  private readonly metrics = new ProxyMetrics();
  private readonly accessLog: AccessLog;
  private readonly tracker: ConnectionTracker;
  private readonly resolver: UpstreamResolver;
  private readonly http: HttpProxy;
  private readonly listeners = new Map<string, Server>();
  private readonly gatewayListeners = new Map<number, Server>();
  /** Listeners whose accepts run on the splice relay's thread. */
  private readonly relayListeners = new Map<string, RelayListener>();
  private metricsServer: HttpServer | undefined;
  private watcher: ConfigWatcher | undefined;
  private tableFactory!: AddressTableFactory;
  private origDst!: (socket: Socket) => Endpoint | undefined;
  private splice: SpliceRelay | undefined;
  private dns: DnsProxy | undefined;
  private stopping = false;

  private constructor(private readonly options: ProxyServerOptions) {
    this.accessLog = new AccessLog(options.accessLog, options.accessLogEncoding);
    this.tracker = new ConnectionTracker(options.maxConnections, options.log, this.metrics);
    this.resolver = new UpstreamResolver(options.dnsRefreshMs);
    this.http = new HttpProxy({
      registry: () => this.registry,
      resolver: this.resolver,
      accessLog: this.accessLog,
      metrics: this.metrics,
      connectTimeoutMs: options.connectTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      splice: () => this.handlerDeps().splice,
      ...(options.nativeHttp !== false ? { nativeHttp: { routeTtlMs: options.dnsRefreshMs } } : {}),
    });
  }

  /** Loads the config, binds everything, drops privileges. Rejects on bad config or bind failure. */
  static async start(options: ProxyServerOptions): Promise<ProxyServer> {
    const server = new ProxyServer(options);
    await server.init();
    return server;
  }

  /** Ports actually bound, by listener name (useful when 0 was asked for). */
  get ports(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, s] of [...this.listeners, ...[...this.gatewayListeners].map(([p, s]) => [`gateway:${p}`, s] as const)]) {
      const a = s.address();
      if (a && typeof a === 'object') out[name] = a.port;
    }
    for (const [name, l] of this.relayListeners) out[name] = l.port;
    if (this.dns) out['dns'] = this.dns.port;
    const m = this.metricsServer?.address();
    if (m && typeof m === 'object') out['metrics'] = m.port;
    return out;
  }

  /** Requests the native HTTP fast path served, connections it handed back and holds (undefined: off). */
  get nativeHttpStats(): { served: number; handedBack: number; open: number } | undefined {
    return this.http.nativeHttpStats;
  }

  get openConnections(): number {
    return this.tracker.size;
  }

  private async init(): Promise<void> {
    const o = this.options;
    const config = loadProxyConfig(o.configFile);
    const needsNative = !o.originalDestination || !o.addressTableFactory || o.interceptionMode === 'TPROXY';
    const native = needsNative ? await import('../native.js') : undefined;
    this.tableFactory = o.addressTableFactory ?? (() => new native!.CidrTrie());
    if (o.originalDestination) this.origDst = o.originalDestination;
    else this.origDst = (await import('./original-destination.linux.js')).originalDestination;
    const allocated = this.allocate(config);
    this.registry = new Registry(config, this.tableFactory, allocated);
    if ((o.relay ?? 'splice') === 'splice') {
      const relay = new (await import('./splice-relay.linux.js')).SpliceRelay();
      this.splice = relay;
      this.tracker.onOwnCountChange = (count) => relay.setOwnerConnections(count);
    }
    this.logIgnored(config.ignored, config.warnings);

    const deps = { ...this.handlerDeps(), originalDestination: (s: Socket) => this.origDst(s) };
    if (this.splice && !o.originalDestination) {
      // Production with the splice relay: it accepts the outbound listener's connections on its
      // own thread, and passthrough ones never become Node sockets (tests that supply the
      // original destination themselves keep Node's listener).
      await this.listenOnRelay('outbound', o.bindAddress, o.outboundPort, (c, admission) =>
        handleAcceptedOutbound(deps, c, admission),
      );
      this.syncRelayPolicy();
    } else {
      await this.listen('outbound', o.bindAddress, o.outboundPort, (s) => handleOutbound(deps, s));
    }
    const inboundDeps = { ...deps, interceptionMode: o.interceptionMode, listenerPort: o.inboundPort };
    const inbound = await this.listen('inbound', o.bindAddress, o.inboundPort, (s) => handleInbound(inboundDeps, s));
    if (o.interceptionMode === 'TPROXY') {
      // TPROXY delivers connections for addresses that are not local; the listening socket
      // must be IP_TRANSPARENT for the kernel to hand them to it (needs CAP_NET_ADMIN, so
      // before the privilege drop).
      const fd = native!.socketFd(inbound);
      const bound = inbound.address();
      const family = bound && typeof bound === 'object' && bound.family === 'IPv6' ? 6 : 4;
      // A dual-stack socket takes IPv4 TPROXY traffic too, which checks IP_TRANSPARENT.
      if (family === 6) native!.setTransparent(fd, 6);
      native!.setTransparent(fd, 4);
    }
    await this.syncGatewayListeners();
    if (o.metricsPort !== undefined) this.metricsServer = await this.metrics.listen(o.metricsPort, o.metricsAddress);
    // Watch before dropping privileges: the directory may not be readable by the proxy uid
    // (the file itself must be, or reloads fail and say so).
    this.watcher = new ConfigWatcher(o.configFile, (reason) => void this.reload(reason));
    try {
      this.watcher.start(o.watch);
    } catch (err) {
      o.log.warn({ err, file: o.configFile }, `cannot watch ${o.configFile} (${(err as Error).message}); reload with SIGHUP`);
    }
    dropPrivileges(o.uid, o.gid);
    if (o.dns) {
      // After the drop: the capture rules tell the proxy's DNS packets by their socket's owner
      // (conntrack zones for its replies, the exemption for its forwarded queries), and a
      // socket keeps the uid of whoever created it.
      this.dns = await DnsProxy.start({ ...o.dns, log: o.log, metrics: this.metrics.registry }, config.serviceEntries, allocated);
      if (o.uid === undefined) o.log.warn('DNS proxy without --uid: unless the rules exempt this process\'s uid, its forwarded queries are redirected back to it');
    }
    o.log.info(
      { ports: this.ports, mode: this.registry.mode, uid: process.getuid?.(), gid: process.getgid?.(), services: config.serviceEntries.length },
      `interpose proxy listening (outbound ${this.ports['outbound']}, inbound ${this.ports['inbound']}, ${this.registry.mode})`,
    );
  }

  /** DNS auto-allocation, when the DNS proxy runs with it (Istio: no capture, no effect). */
  private allocate(config: ProxyConfig): AllocatedAddress[] {
    return this.options.dns?.autoAllocate ? autoAllocate(config.serviceEntries) : [];
  }

  /** What every connection handler needs; the registry is read per connection, so reloads apply. */
  private handlerDeps() {
    const o = this.options;
    return {
      accessLog: this.accessLog,
      metrics: this.metrics,
      connectTimeoutMs: o.connectTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      log: o.log,
      registry: () => this.registry,
      resolver: this.resolver,
      http: this.http,
      sniffTimeoutMs: o.sniffTimeoutMs,
      ...(this.splice
        ? { splice: { relay: this.splice, hold: (down: Socket, abort: () => void) => this.tracker.hold(down, abort) } }
        : {}),
    };
  }

  private logIgnored(ignored: string[], warnings: string[] = []): void {
    for (const what of ignored) this.options.log.info({ ignored: what }, `ignoring ${what}: not a kind interpose acts on`);
    for (const line of warnings) this.options.log.warn(line);
  }

  private async listen(name: string, address: string, port: number, handler: (s: Socket) => unknown): Promise<Server> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      if (this.stopping) {
        socket.destroy();
        return;
      }
      if (!this.tracker.admit(socket, name)) return;
      try {
        Promise.resolve(handler(socket)).catch((err: unknown) => this.connectionFailed(socket, err));
      } catch (err) {
        this.connectionFailed(socket, err);
      }
    });
    await listenDualStack(address, (host) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, ipv6Only: false }, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    );
    server.on('error', (err) => this.options.log.error({ err, listener: name }, 'listener error'));
    this.listeners.set(name, server);
    return server;
  }

  private async listenOnRelay(
    name: string,
    address: string,
    port: number,
    handler: (c: AcceptedConnection, admission: DetachedAdmission) => Promise<void>,
  ): Promise<void> {
    const relay = this.splice!;
    // Refusing one the relay already passes through means aborting it.
    const refuse = (c: AcceptedConnection, reset: boolean) =>
      c.passthrough ? relay.abort(c.id, reset) : relay.closeAccepted(c.id, reset);
    const onAccept = (c: AcceptedConnection) => {
      if (c.refused) {
        this.tracker.refusedByRelay(name);
        return;
      }
      if (this.stopping) {
        refuse(c, false);
        return;
      }
      const admission = this.tracker.admitDetached(name, { byRelayPolicy: c.passthrough });
      if (!admission) {
        refuse(c, true);
        return;
      }
      handler(c, admission).catch((err: unknown) => {
        this.options.log.error({ err }, 'connection handler failed; closing that connection');
        refuse(c, false);
        admission.done();
      });
    };
    this.relayListeners.set(name, await listenDualStack(address, (host) => relay.listen(host, port, onAccept)));
  }

  /** Hands the ports the registry lets through unseen to the relay's outbound listener. */
  private syncRelayPolicy(): void {
    const listener = this.relayListeners.get('outbound');
    if (!listener) return;
    const o = this.options;
    listener.setPassthrough({
      ports: unseenPassthroughPorts(this.registry),
      connectTimeoutMs: o.connectTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      capture: MAX_CLIENT_HELLO,
      maxConnections: o.maxConnections,
    });
  }

  private connectionFailed(socket: Socket, err: unknown): void {
    this.options.log.error({ err }, 'connection handler failed; closing that connection');
    socket.destroy();
  }

  /** Opens listeners for Gateway server ports that appeared, closes those that went away. */
  private async syncGatewayListeners(): Promise<void> {
    const wanted = new Set(gatewayPorts(this.registry));
    for (const [port, server] of this.gatewayListeners) {
      if (!wanted.has(port)) {
        server.close();
        this.gatewayListeners.delete(port);
      }
    }
    const deps = this.handlerDeps();
    for (const port of wanted) {
      if (this.gatewayListeners.has(port)) continue;
      const name = `gateway:${port}`;
      try {
        const server = await this.listen(name, this.options.gatewayAddress, port, (s) => handleGateway(deps, s, port));
        this.listeners.delete(name);
        this.gatewayListeners.set(port, server);
      } catch (err) {
        const hint =
          (err as NodeJS.ErrnoException).code === 'EACCES' && port < 1024
            ? ' (after dropping privileges, ports below 1024 need sysctl net.ipv4.ip_unprivileged_port_start=0, as Istio\'s gateway pods set it; or have the Gateway in the config at start)'
            : '';
        this.options.log.error({ err, port }, `cannot listen on gateway port ${port}: ${(err as Error).message}${hint}`);
      }
    }
  }

  /** Re-reads the config; keeps the current one if the new one is invalid. */
  async reload(reason = 'request'): Promise<boolean> {
    const log = this.options.log;
    let registry: Registry;
    let allocated: AllocatedAddress[];
    try {
      const config = loadProxyConfig(this.options.configFile);
      allocated = this.allocate(config);
      registry = new Registry(config, this.tableFactory, allocated);
      this.logIgnored(config.ignored, config.warnings);
    } catch (err) {
      this.metrics.configReloads.inc({ result: 'rejected' });
      log.error({ reason, file: this.options.configFile }, `config rejected, keeping the previous one: ${(err as Error).message}`);
      return false;
    }
    this.registry = registry;
    this.http.routesChanged();
    this.dns?.update(registry.config.serviceEntries, allocated);
    this.syncRelayPolicy();
    await this.syncGatewayListeners();
    this.metrics.configReloads.inc({ result: 'applied' });
    log.info(
      { reason, mode: registry.mode, services: registry.config.serviceEntries.length },
      `config reloaded (${registry.mode}, ${registry.config.serviceEntries.length} ServiceEntries)`,
    );
    return true;
  }

  /** Stops accepting, waits up to the drain timeout for open connections, then closes all. */
  async stop(): Promise<{ remaining: number }> {
    this.stopping = true;
    this.watcher?.stop();
    for (const s of [...this.listeners.values(), ...this.gatewayListeners.values()]) s.close();
    for (const l of this.relayListeners.values()) l.close();
    this.dns?.close();
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections();
    this.http.closeIdle();
    const result = await this.tracker.drain(this.options.drainTimeoutMs);
    await this.accessLog.close();
    return result;
  }
}

/**
 * Listens through `bind(address)`. "::" takes IPv4 too (dual stack); where IPv6 is off it
 * cannot be bound, and 0.0.0.0 is used instead.
 */
async function listenDualStack<T>(address: string, bind: (host: string) => T | Promise<T>): Promise<T> {
  try {
    return await bind(address);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (address !== '::' || (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL')) throw err;
    return bind('0.0.0.0');
  }
}
