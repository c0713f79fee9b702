/**
 * `interpose proxy` in the test's own process, on loopback, with the original destination
 * supplied by the test instead of the kernel. Needs no root: for everything that is about the
 * proxy's own behaviour (relay, HTTP layer, limits, reload) rather than about interception.
 */
import type { ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { CidrTrie } from '../../../src/native.js';
import type { Endpoint } from '../../../src/proxy/original-destination.linux.js';
import { ProxyServer, type ProxyServerOptions } from '../../../src/proxy/proxy-server.js';
import { parseLogLine } from './access-log-line.js';

export interface TestProxy {
  server: ProxyServer;
  port: number;
  configFile: string;
  accessLog: string[];
  logs: string[];
  /** Where the next accepted connection "was going". */
  setDestination(dst: Endpoint | undefined): void;
}

export async function startTestProxy(
  t: ExecutionContext,
  yaml: string,
  dst: Endpoint | undefined,
  overrides: Partial<ProxyServerOptions> = {},
): Promise<TestProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-proxy-test-'));
  const configFile = join(dir, 'mesh.yaml');
  writeFileSync(configFile, yaml);
  const accessLog: string[] = [];
  const logs: string[] = [];
  let destination = dst;
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
  const server = await ProxyServer.start({
    configFile,
    outboundPort: 0,
    inboundPort: 0,
    bindAddress: '127.0.0.1',
    interceptionMode: 'REDIRECT',
    accessLog: (line) => accessLog.push(line),
    accessLogEncoding: 'TEXT',
    metricsAddress: '127.0.0.1',
    gatewayAddress: '127.0.0.1',
    maxConnections: 1000,
    connectTimeoutMs: 2000,
    idleTimeoutMs: 60_000,
    sniffTimeoutMs: 200,
    drainTimeoutMs: 1000,
    dnsRefreshMs: 1000,
    watch: false,
    log,
    originalDestination: () => destination,
    addressTableFactory: () => new CidrTrie(),
    ...overrides,
  });
  t.teardown(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    server,
    port: server.ports['outbound']!,
    configFile,
    accessLog,
    logs,
    setDestination: (d) => (destination = d),
  };
}

/** A loopback TCP server for the test's lifetime; `onConnection` decides what it does. */
export async function upstreamServer(
  t: ExecutionContext,
  onConnection: (socket: Socket) => void,
  options: { allowHalfOpen?: boolean } = {},
): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: options.allowHalfOpen ?? true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

/** Polls `predicate` every 10 ms up to `timeoutMs`. */
export async function eventually(predicate: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (predicate()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return predicate();
}

/** The proxy's first `n` access-log lines as "REQUEST CODE FLAGS", once it has written them. */
export async function loggedRequests(proxy: TestProxy, n: number): Promise<string[]> {
  await eventually(() => proxy.accessLog.length >= n);
  return proxy.accessLog.slice(0, n).map((line) => {
    const l = parseLogLine(line);
    return `${l.request} ${l.code} ${l.flags}`;
  });
}
