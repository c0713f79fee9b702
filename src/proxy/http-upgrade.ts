/**
 * HTTP/1.1 Upgrade (WebSocket and any other protocol) through the HTTP layer: the handshake
 * was routed and policy-checked like any request; here it goes upstream, and on the upstream's
 * 101 the two connections are relayed both ways (splice relay when there is one). An upstream
 * that declines (any other status) has its answer passed back and the connection closed.
 * Also what Envoy does with `Upgrade: h2c` (drops it) and its raw local replies.
 */
import { request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { AccessLogEntry } from './access-log.js';
import { formatHostPort } from './address-format.js';
import { recordRelayEnd, relayConnected, upstreamJoined, type TcpSessionDeps } from './tcp-session.js';
import type { Upstream } from './upstream-resolver.js';

/** True for an HTTP/1.1 request asking to switch to cleartext HTTP/2 (and nothing else). */
export function isH2cUpgrade(req: IncomingMessage): boolean {
  return req.method !== 'CONNECT' && tokens(req.headers.upgrade).join(',') === 'h2c';
}

function tokens(value: string | undefined): string[] {
  return (value ?? '').split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
}

/**
 * Puts the request back on `socket` as it came, minus the h2c upgrade (Upgrade, HTTP2-Settings
 * and their Connection tokens), so the HTTP server parses it again as a plain request. These
 * are the headers Envoy's HTTP/1 codec removes before serving such a request in HTTP/1.1
 * (onHeadersCompleteBase in source/common/http/http1/codec_impl.cc, envoyproxy/envoy#7981);
 * it never answers 101 to h2c (downstream h2c upgrade is the open envoyproxy/envoy#7161).
 */
export function replayWithoutH2cUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade' || lower === 'http2-settings') continue;
    let value = req.rawHeaders[i + 1]!;
    if (lower === 'connection') {
      value = tokens(value).filter((t) => t !== 'upgrade' && t !== 'http2-settings').join(', ');
      if (!value) continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  socket.unshift(Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]));
}

/** Writes a complete local reply on a raw socket and closes it; returns the body length. */
export function writeRawResponse(socket: Socket | import('node:stream').Duplex, code: number, body: string): number {
  const length = Buffer.byteLength(body);
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\ncontent-length: ${length}\r\ncontent-type: text/plain\r\n` +
      `server: envoy\r\nconnection: close\r\n\r\n${body}`,
  );
  return length;
}

export type UpgradeDeps = Omit<TcpSessionDeps, 'splice'> & { splice: TcpSessionDeps['splice'] };

export interface UpgradeRequest {
  socket: Socket;
  /** Bytes the client sent after the request head (already read by Node's parser). */
  head: Buffer;
  method: string;
  path: string;
  headers: [string, string][];
  log: AccessLogEntry;
  t0: number;
  timeoutMs: number | undefined;
  upstream: Upstream;
  external: boolean;
}

/** Sends the handshake upstream and relays after a 101; resolves when the connection has ended. */
export function forwardUpgrade(deps: UpgradeDeps, u: UpgradeRequest): Promise<void> {
  const { socket: down, log, upstream } = u;
  const cluster = { cluster_name: upstream.cluster };
  const { metrics } = deps;
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve();
    };
    const local = (code: number, flag: string, body: string) => {
      log.responseCode = code;
      log.responseFlags = flag;
      log.bytesSent = writeRawResponse(down, code, body);
      down.once('close', done);
      if (down.closed) done();
    };
    const upReq = httpRequest({
      host: upstream.address,
      port: upstream.port,
      method: u.method,
      path: u.path,
      headers: u.headers as unknown as Record<string, string>,
      agent: false,
      setHost: false,
    });
    upReq.on('socket', (s: Socket) => {
      metrics.upstreamConnections.inc(cluster);
      const connectTimer = setTimeout(
        () => upReq.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
        deps.connectTimeoutMs,
      );
      s.once('connect', () => {
        clearTimeout(connectTimer);
        log.upstreamLocalAddress = formatHostPort(s.localAddress, s.localPort);
      });
      s.once('close', () => clearTimeout(connectTimer));
    });
    // Until the upstream answers, a client going away cancels the attempt.
    down.on('error', () => {});
    const onDownClose = () => {
      log.responseFlags = 'DC';
      upReq.destroy();
      done();
    };
    down.once('close', onDownClose);
    if (u.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        down.off('close', onDownClose);
        upReq.destroy();
        local(504, 'UT', 'upstream request timeout');
      }, u.timeoutMs);
    }
    upReq.on('error', (err: NodeJS.ErrnoException) => {
      if (settled || log.responseCode !== 0) return;
      down.off('close', onDownClose);
      clearTimeout(timer);
      metrics.upstreamConnectFailures.inc(cluster);
      local(503, err.code === 'ECONNRESET' ? 'UC' : 'UF', `upstream connect error or disconnect/reset before headers. reset reason: ${err.code ?? err.message}`);
    });
    // The upstream declined the upgrade: its answer goes back, then the connection closes.
    upReq.on('response', (upRes) => {
      down.off('close', onDownClose);
      clearTimeout(timer);
      log.responseCode = upRes.statusCode ?? 502;
      log.upstreamServiceTimeMs = Math.round(performance.now() - u.t0);
      const kept = rawHeaderLines(upRes, new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade']));
      down.write(`HTTP/1.1 ${log.responseCode} ${upRes.statusMessage ?? ''}\r\n${kept}connection: close\r\n\r\n`);
      upRes.on('data', (chunk: Buffer) => (log.bytesSent += chunk.length));
      upRes.pipe(down);
      down.once('close', () => {
        upReq.destroy();
        done();
      });
    });
    upReq.on('upgrade', (upRes, up: Socket, upHead: Buffer) => {
      down.off('close', onDownClose);
      clearTimeout(timer);
      log.responseCode = upRes.statusCode ?? 101;
      log.upstreamServiceTimeMs = Math.round(performance.now() - u.t0);
      const extra = u.external ? `x-envoy-upstream-service-time: ${log.upstreamServiceTimeMs}\r\n` : '';
      const responseHead = `HTTP/1.1 ${log.responseCode} ${upRes.statusMessage ?? ''}\r\n${rawHeaderLines(upRes, new Set())}${extra}\r\n`;
      up.on('error', () => {});
      if (!upstreamJoined(metrics, cluster, log, down, up)) {
        done();
        return;
      }
      // What the client already sent after its request head flows upstream first.
      if (u.head.length > 0) down.unshift(u.head);
      // The response head and whatever the upstream sent after it reach the client before the
      // relay takes over (the splice relay starts from the sockets, not Node's buffers).
      let early = upHead.length;
      const handOver = () => {
        const more = drain(up);
        if (more.length > 0) {
          early += more.length;
          down.write(more, handOver);
          return;
        }
        void relayConnected(deps, down, up, u.head).then((r) => {
          recordRelayEnd(metrics, cluster, log, r, early);
          done();
        });
      };
      down.write(Buffer.concat([Buffer.from(responseHead, 'latin1'), upHead]), handOver);
    });
    upReq.end();
  });
}

/** Bytes Node has read from `socket` and holds (taken out of its buffer). */
function drain(socket: Socket): Buffer {
  const chunks: Buffer[] = [];
  for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function rawHeaderLines(res: IncomingMessage, drop: Set<string>): string {
  let out = '';
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (!drop.has(res.rawHeaders[i]!.toLowerCase())) out += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
  }
  return out;
}
