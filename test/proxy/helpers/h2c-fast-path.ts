/**
 * What the h2c fast-path tests (test/proxy/http2-fast-path-*.test.ts) share: an HTTP/1.1
 * origin that answers by path and records what it receives, and an HTTP/2 client exchange
 * reduced to what can be compared between the native path and the JS path (times, ids, dates
 * and ephemeral ports left out). The mesh and log normalisation are fast-path-differential.ts'.
 */
import type { ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { listenOnLoopback } from './loopback-upstream.js';

/** What the origin saw of one request. */
export interface Seen {
  method: string;
  url: string;
  host: string;
  rawHeaders: string[];
  body: string;
  complete: boolean;
}

export interface Origin {
  port: number;
  seen: Seen[];
  /** Bytes the origin's answers to /huge have been able to write so far. */
  hugeWritten(): number;
  reset(): void;
}

/** The origin: answers by path, records every request it receives. */
export async function h2cOrigin(t: ExecutionContext): Promise<Origin> {
  const seen: Seen[] = [];
  let flaky = 0;
  /** Bytes of /huge that left the origin's Node buffers (each write waits for 'drain'). */
  let hugeWritten = 0;
  const server = createServer((req: IncomingMessage, res) => {
    const entry: Seen = { method: req.method!, url: req.url!, host: req.headers.host ?? '', rawHeaders: req.rawHeaders, body: '', complete: false };
    seen.push(entry);
    req.on('data', (d: Buffer) => (entry.body += d.toString('latin1')));
    req.on('end', () => {
      entry.complete = true;
      answer(req.url!, res, entry);
    });
  });
  const answer = (url: string, res: ServerResponse, entry: Seen) => {
    if (url === '/cl') {
      res.writeHead(200, 'OK', { 'Content-Length': '5', 'X-Up': 'one', 'Set-Cookie': ['a=1', 'b=2'] });
      res.end('hello');
    } else if (url === '/chunked') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first,');
      setTimeout(() => res.end('second'), 20);
    } else if (url === '/echo') {
      res.writeHead(201, 'Created', { 'Content-Length': String(Buffer.byteLength(entry.body, 'latin1')) });
      res.end(entry.body, 'latin1');
    } else if (url === '/big') {
      // Larger than HTTP/2's initial flow-control windows (64 KiB): WINDOW_UPDATEs needed.
      const body = Buffer.alloc(300_000, 'x');
      res.writeHead(200, { 'Content-Length': String(body.length) });
      res.end(body);
    } else if (url === '/huge') {
      // 64 MiB, written as fast as the proxy takes it (a client that never reads must stall it).
      res.writeHead(200, { 'Content-Length': String(64 << 20) });
      const chunk = Buffer.alloc(1 << 16, 'y');
      let left = 1024;
      const pump = () => {
        while (left > 0) {
          left--;
          const more = res.write(chunk);
          hugeWritten += chunk.length;
          if (!more) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (url === '/flaky') {
      flaky++;
      res.writeHead(flaky % 2 === 1 ? 503 : 200, { 'Content-Length': '4' });
      res.end(flaky % 2 === 1 ? 'busy' : 'okay');
    } else if (url === '/always503') {
      res.writeHead(503, { 'Content-Length': '4' });
      res.end('busy');
    } else if (url === '/slow') {
      const timer = setTimeout(() => res.end('late'), 2000);
      res.on('close', () => clearTimeout(timer));
    } else if (url === '/midclose') {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('0123456789');
      setTimeout(() => res.socket?.destroy(), 50);
    } else if (url === '/notmodified') {
      res.writeHead(304, { ETag: '"v1"', 'Cache-Control': 'max-age=60' });
      res.end();
    } else if (url === '/nocontent') {
      res.writeHead(204, { 'X-Empty': 'yes' });
      res.end();
    } else {
      res.writeHead(404, { 'Content-Length': '0' });
      res.end();
    }
  };
  const port = await listenOnLoopback(t, server);
  return {
    port,
    seen,
    hugeWritten: () => hugeWritten,
    reset: () => ((seen.length = 0), (flaky = 0)),
  };
}

/** One stream's outcome as the client saw it. */
export interface StreamOutcome {
  status?: number;
  headers?: string[];
  body: string;
  /** RST_STREAM code, or an error's code, when the stream did not end normally. */
  error?: string;
}

const VOLATILE = /^(date|x-envoy-upstream-service-time|x-request-id)$/;

/** One request on `session`: its answer with volatile header values masked. */
export function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: string | string[],
  options: { cancelAfterMs?: number } = {},
): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const out: StreamOutcome = { body: '' };
    const stream = session.request(headers, { endStream: body === undefined });
    stream.on('response', (h) => {
      out.status = Number(h[':status']);
      out.headers = Object.entries(h)
        .filter(([n]) => n !== ':status')
        .map(([n, v]) => `${n}: ${VOLATILE.test(n) ? '*' : Array.isArray(v) ? v.join(' | ') : String(v)}`);
    });
    stream.on('data', (d: Buffer) => (out.body += d.toString('latin1')));
    stream.on('error', (e: NodeJS.ErrnoException) => (out.error ??= e.code));
    stream.on('close', () => {
      if (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR) out.error = `rst ${stream.rstCode}`;
      resolve(out);
    });
    if (Array.isArray(body)) {
      stream.write(body[0]);
      setTimeout(() => stream.end(body[1]), 50);
    } else if (body !== undefined) stream.end(body);
    if (options.cancelAfterMs !== undefined) setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), options.cancelAfterMs);
  });
}

/** A prior-knowledge h2c session to the proxy. */
export async function h2Session(port: number): Promise<ClientHttp2Session> {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  await new Promise<void>((resolve) => {
    session.once('connect', () => resolve());
    session.once('close', () => resolve());
  });
  return session;
}

/** What the origin received, comparable between runs (ids masked, sorted: streams run concurrently). */
export function normalizeSeen(seen: Seen[]): string[] {
  return seen
    .map((s) => {
      const headers: string[] = [];
      for (let i = 0; i < s.rawHeaders.length; i += 2) {
        const name = s.rawHeaders[i]!;
        const value = /^(x-request-id|x-b3-traceid|x-b3-spanid)$/i.test(name) ? '*' : s.rawHeaders[i + 1]!;
        headers.push(`${name}: ${value}`);
      }
      return `${s.method} ${s.url}\n${headers.join('\n')}\n\n${s.body.length > 200 ? `${s.body.length} bytes` : s.body}${s.complete ? '' : ' [INCOMPLETE]'}`;
    })
    .sort();
}
