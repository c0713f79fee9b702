/**
 * What the HTTP/2-upstream fast-path tests (test/proxy/http2-fast-path-upstream-*.test.ts)
 * share: an h2c origin (node:http2) that answers by path and records what it receives, a
 * gRPC Echo origin (grpc-js) that records its calls, and the mesh routing to them through
 * ServiceEntry ports with protocol HTTP2 and GRPC (the upstream spoken in HTTP/2).
 */
import type { ExecutionContext } from 'ava';
import { constants, createServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { listenOnLoopback } from './loopback-upstream.js';
import { grpcServer, type EchoHandlers } from './grpc-echo.js';

/** What an origin saw of one request: its header fields in order (volatile values masked) and body. */
export interface H2Seen {
  fields: string[];
  body: string;
  complete: boolean;
}

const VOLATILE = /^(x-request-id|x-b3-traceid|x-b3-spanid)$/;

export interface H2Origin {
  port: number;
  seen: H2Seen[];
  /** Bytes the origin's answer to /huge got written (each write waits for the proxy's window). */
  hugeWritten(): number;
  /** Bytes the origin read of the request body of /noread (it reads nothing: stays small). */
  reset(): void;
  /** Streams the origin still has open. */
  open(): number;
  /** Connections (HTTP/2 sessions) the origin accepted. */
  sessions(): number;
}

/** The h2c origin: answers by path, records every stream it receives; `maxConcurrentStreams` as it announces. */
export async function h2Origin(t: ExecutionContext, maxConcurrentStreams?: number): Promise<H2Origin> {
  const seen: H2Seen[] = [];
  let refused = 0;
  let flaky = 0;
  let hugeWritten = 0;
  let open = 0;
  let sessions = 0;
  const server = createServer(maxConcurrentStreams === undefined ? {} : { settings: { maxConcurrentStreams } });
  server.on('session', () => sessions++);
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
    open++;
    stream.once('close', () => open--);
    stream.on('error', () => {});
    const fields: string[] = [];
    for (let i = 0; i < raw.length; i += 2) fields.push(`${raw[i]}: ${VOLATILE.test(raw[i]!) ? '*' : raw[i + 1]}`);
    const entry: H2Seen = { fields, body: '', complete: false };
    const path = String(headers[':path']);
    if (path === '/refuse-once' && refused++ % 2 === 0) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (path === '/noread') {
      stream.pause();
      return;
    }
    seen.push(entry);
    stream.on('data', (d: Buffer) => (entry.body += d.toString('latin1')));
    stream.on('end', () => {
      entry.complete = true;
      answer(path, stream, entry);
    });
  });
  const answer = (path: string, stream: ServerHttp2Stream, entry: H2Seen) => {
    if (stream.destroyed) return;
    if (path === '/cl') {
      stream.respond({ ':status': 200, 'content-length': '5', 'x-up': 'one', 'set-cookie': ['a=1', 'b=2'] });
      stream.end('hello');
    } else if (path === '/echo') {
      stream.respond({ ':status': 201 });
      stream.end(entry.body, 'latin1');
    } else if (path === '/big') {
      stream.respond({ ':status': 200 });
      stream.end(Buffer.alloc(300_000, 'x'));
    } else if (path === '/trailers') {
      stream.respond({ ':status': 200, trailer: 'x-checksum' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      stream.end('body');
    } else if (path === '/flaky') {
      flaky++;
      stream.respond({ ':status': flaky % 2 === 1 ? 503 : 200 });
      stream.end(flaky % 2 === 1 ? 'busy' : 'okay');
    } else if (path === '/refuse-once') {
      stream.respond({ ':status': 200 });
      stream.end('second try');
    } else if (path === '/reset') {
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    } else if (path === '/midreset') {
      stream.respond({ ':status': 200 });
      stream.write('0123456789');
      setTimeout(() => stream.close(constants.NGHTTP2_INTERNAL_ERROR), 50);
    } else if (path === '/goaway') {
      stream.respond({ ':status': 200 });
      stream.write('part');
      setTimeout(() => stream.session?.destroy(), 50);
    } else if (path === '/later') {
      setTimeout(() => !stream.destroyed && (stream.respond({ ':status': 200 }), stream.end('later')), 20);
    } else if (path === '/slow') {
      const timer = setTimeout(() => !stream.destroyed && (stream.respond({ ':status': 200 }), stream.end('late')), 2000);
      stream.once('close', () => clearTimeout(timer));
    } else if (path === '/huge') {
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(1 << 16, 'y');
      let left = 1024;
      const pump = () => {
        while (left > 0 && !stream.destroyed) {
          left--;
          hugeWritten += chunk.length;
          if (!stream.write(chunk)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      pump();
    } else {
      stream.respond({ ':status': 404 });
      stream.end();
    }
  };
  const port = await listenOnLoopback(t, server as unknown as import('node:net').Server);
  return { port, seen, hugeWritten: () => hugeWritten, reset: () => ((seen.length = 0), (flaky = 0), (refused = 0)), open: () => open, sessions: () => sessions };
}

/** One gRPC call as the Echo origin saw it: method, metadata (volatile values masked), messages. */
export interface GrpcSeen {
  method: string;
  metadata: string[];
  messages: string[];
}

function metadataOf(md: grpc.Metadata): string[] {
  return Object.entries(md.getMap())
    .map(([k, v]) => `${k}: ${VOLATILE.test(k) ? '*' : String(v)}`)
    .sort();
}

/** The gRPC Echo origin with handlers that record, fail as asked, and echo large messages. */
export async function grpcOrigin(t: ExecutionContext): Promise<{ port: number; seen: GrpcSeen[]; reset(): void }> {
  const seen: GrpcSeen[] = [];
  let unavailable = 0;
  const record = (method: string, md: grpc.Metadata, messages: string[] = []) => {
    const s = { method, metadata: metadataOf(md), messages };
    seen.push(s);
    return s;
  };
  const handlers: EchoHandlers = {
    unary: (call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => {
      const req = call.request;
      record('Unary', call.metadata, [req.length > 200 ? `${req.length} bytes` : req]);
      if (req === 'not-found') return cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
      if (req === 'unavailable-once' && unavailable++ % 2 === 0) return cb({ code: grpc.status.UNAVAILABLE, details: 'busy' });
      if (req === 'unavailable') return cb({ code: grpc.status.UNAVAILABLE, details: 'always busy' });
      if (req.startsWith('big')) return cb(null, 'z'.repeat(1 << 20));
      cb(null, `hi ${req}`);
    },
    serverStream: (call: grpc.ServerWritableStream<string, string>) => {
      record('ServerStream', call.metadata, [call.request]);
      for (let i = 0; i < 3; i++) call.write(`${call.request} ${i}`);
      call.end();
    },
    clientStream: (call: grpc.ServerReadableStream<string, string>, cb: grpc.sendUnaryData<string>) => {
      const s = record('ClientStream', call.metadata);
      call.on('data', (d: string) => s.messages.push(d));
      call.on('end', () => cb(null, s.messages.join('+')));
    },
    bidi: (call: grpc.ServerDuplexStream<string, string>) => {
      const s = record('Bidi', call.metadata);
      call.on('data', (d: string) => {
        s.messages.push(d);
        call.write(`re ${d}`);
      });
      call.on('end', () => call.end());
    },
    slow: (call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => {
      record('Slow', call.metadata, [call.request]);
      setTimeout(() => cb(null, 'late'), 2000).unref();
    },
  };
  const port = await grpcServer(t, handlers);
  return { port, seen, reset: () => ((seen.length = 0), (unavailable = 0)) };
}

/**
 * REGISTRY_ONLY on listener port `port`: h2.example.com (HTTP2) to the h2c origin, and
 * grpc.example.com / grpc-slow.example.com (GRPC; the latter with a 300 ms route timeout) to
 * the gRPC origin, dead.example.com (HTTP2) to a port that refuses connections.
 */
export function h2UpstreamMesh(port: number, h2Port: number, grpcPort: number, refusedPort: number): string {
  const se = (name: string, host: string, protocol: string, target: number) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}}
spec:
  hosts: [${host}]
  ports: [{number: ${port}, name: ${protocol.toLowerCase()}, protocol: ${protocol}, targetPort: ${target}}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`;
  return `outboundTrafficPolicy: {mode: REGISTRY_ONLY}
${se('h2', 'h2.example.com', 'HTTP2', h2Port)}${se('grpc', 'grpc.example.com', 'GRPC', grpcPort)}${se('grpc-slow', 'grpc-slow.example.com', 'GRPC', grpcPort)}${se('dead', 'dead.example.com', 'HTTP2', refusedPort)}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: grpc-slow}
spec:
  hosts: [grpc-slow.example.com]
  http:
  - timeout: 300ms
    route: [{destination: {host: grpc-slow.example.com}}]
`;
}
